//! Many programs at once: all finish, each with its own output.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use serde_json::json;

/// 50 concurrent executions, each reading its own stdin and printing its own id many times,
/// all complete with correct, unmixed outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_executions_complete_with_their_own_output() {
    let sandbox = common::start_with(|mut c, _| {
        c.pool_size = 6;
        c.limits.max_timeout = std::time::Duration::from_secs(60);
        c
    })
    .await;
    let runs = (0..50).map(|i| {
        let http = sandbox.http.clone();
        let url = sandbox.url("/execute");
        async move {
            let code = "import sys, os\nme = sys.stdin.read().strip()\nfor n in range(200):\n    print(me, n)\nprint('pid', os.getpid(), file=sys.stderr)";
            let response = http
                .post(url)
                .json(&json!({"code": code, "stdin": format!("run-{i}"), "timeout_seconds": 60}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "run {i}: {}", response.status());
            (i, response.json::<switchboard_protocol::sandbox::ExecutionResult>().await.unwrap())
        }
    });
    let results = futures::future::join_all(runs).await;
    assert_eq!(results.len(), 50);
    for (i, r) in results {
        assert!(r.success, "run {i}: {r:?}");
        let expected: String = (0..200).map(|n| format!("run-{i} {n}\n")).collect();
        assert_eq!(
            r.stdout, expected,
            "run {i}: its own output, complete and in order"
        );
        assert_eq!(r.stderr, "pid 1\n", "run {i}: PID 1 of its own namespace");
    }
}
