//! Running ordinary programs through `POST /execute`: output, errors, stdin, limits, the pool.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;



/// print('hello') comes back on stdout with exit code 0, and a second program runs in a fresh
/// interpreter (nothing carries over).
#[tokio::test]
async fn hello_world_runs_in_a_fresh_interpreter_each_time() {
    let sandbox = common::start().await;
    let first = sandbox.run("print('hello')\nx = 41").await;
    assert_eq!(first.stdout, "hello\n");
    assert_eq!(first.stderr, "");
    assert_eq!(first.exit_code, Some(0));
    assert!(first.success && !first.timed_out && !first.truncated);
    let second = sandbox.run("print('x' in globals())").await;
    assert_eq!(second.stdout, "False\n", "state does not leak between runs");
}
