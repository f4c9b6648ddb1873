//! Running ordinary programs through `POST /execute`: output, errors, stdin, limits, the
//! error shape of bad requests, metrics and readiness.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use serde_json::{Value, json};

/// print('hello') comes back on stdout with exit code 0, and a second program runs in a fresh
/// interpreter (nothing carries over).
#[tokio::test]
async fn hello_world_runs_in_a_fresh_interpreter_each_time() {
    let sandbox = common::start().await;
    let first = sandbox
        .run("print('hello')\nx = 41\nopen('left-behind', 'w').write('x')")
        .await;
    assert_eq!(first.stdout, "hello\n");
    assert_eq!(first.stderr, "");
    assert_eq!(first.exit_code, Some(0));
    assert!(first.success && !first.timed_out && !first.truncated && !first.memory_exceeded);
    assert!(first.duration_ms > 0.0);
    let second = sandbox
        .run("import os\nprint('x' in globals(), os.listdir('.'))")
        .await;
    assert_eq!(second.stdout, "False []\n", "no state or files carry over");
}

/// A program that raises is a normal result: exit code 1 and the traceback, with source lines.
#[tokio::test]
async fn exceptions_come_back_as_tracebacks() {
    let sandbox = common::start().await;
    let r = sandbox
        .run("def f(x):\n    return 1 / x\n\nprint('before')\nf(0)\n")
        .await;
    assert_eq!(r.exit_code, Some(1));
    assert!(!r.success);
    assert_eq!(r.stdout, "before\n");
    assert!(
        r.stderr.starts_with("Traceback (most recent call last):"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("File \"main.py\", line 5"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("return 1 / x"),
        "source lines are shown: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .trim_end()
            .ends_with("ZeroDivisionError: division by zero")
    );
    assert!(
        !r.stderr.contains("_sandbox"),
        "the bootstrap frame is hidden"
    );

    let syntax = sandbox.run("print('unclosed'").await;
    assert_eq!(syntax.exit_code, Some(1));
    assert!(syntax.stderr.contains("SyntaxError"), "{}", syntax.stderr);
}

/// stdin is delivered; exit codes and sys.exit messages are kept; exit() works under -S.
#[tokio::test]
async fn stdin_exit_codes_and_unicode() {
    let sandbox = common::start().await;
    let r = sandbox
        .run_with(json!({"code": "import sys\ndata = sys.stdin.read()\nprint(data.upper(), end='')", "stdin": "héllo wörld\nline 2\n"}))
        .await;
    assert_eq!(r.stdout, "HÉLLO WÖRLD\nLINE 2\n");
    assert_eq!(sandbox.run("exit(3)").await.exit_code, Some(3));
    let message = sandbox.run("import sys\nsys.exit('fatal: no input')").await;
    assert_eq!(message.exit_code, Some(1));
    assert_eq!(message.stderr, "fatal: no input\n");
    assert_eq!(sandbox.run("print('日本語 ✓')").await.stdout, "日本語 ✓\n");
}

/// The usual standard library works: threads, subprocesses, multiprocessing, atexit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_subprocesses_and_multiprocessing_work() {
    let sandbox = common::start().await;
    let threads = sandbox
        .run("import threading, time\nt = threading.Thread(target=lambda: (time.sleep(0.02), print('thread')))\nt.start()\nprint('main')")
        .await;
    assert_eq!(
        threads.stdout, "main\nthread\n",
        "non-daemon threads finish first"
    );
    let sub = sandbox
        .run("import subprocess\nprint(subprocess.run(['/bin/echo', 'child'], capture_output=True, text=True).stdout, end='')")
        .await;
    assert_eq!(sub.stdout, "child\n", "{sub:?}");
    let pool = sandbox
        .run("import multiprocessing as mp\nif __name__ == '__main__':\n    with mp.Pool(2) as p:\n        print(p.map(abs, [-1, -2, 3]))")
        .await;
    assert_eq!(pool.stdout, "[1, 2, 3]\n", "{pool:?}");
    let atexit = sandbox
        .run("import atexit\natexit.register(print, 'bye')\nprint('hi')")
        .await;
    assert_eq!(atexit.stdout, "hi\nbye\n");
}

/// A timeout below the default applies; one above the maximum is capped; nonsense is a 400.
#[tokio::test]
async fn timeouts_are_validated() {
    let sandbox = common::start_with(|mut c, _| {
        c.limits.max_timeout = std::time::Duration::from_secs(2);
        c.limits.default_timeout = std::time::Duration::from_secs(1);
        c
    })
    .await;
    let capped = sandbox
        .run_with(json!({"code": "import time\ntime.sleep(30)", "timeout_seconds": 1000}))
        .await;
    assert!(capped.timed_out);
    assert!(
        capped.duration_ms < 10_000.0,
        "capped at the maximum: {}",
        capped.duration_ms
    );
    for bad in [json!(-1), json!(0), json!("soon")] {
        let response = sandbox
            .http
            .post(sandbox.url("/execute"))
            .json(&json!({"code": "print(1)", "timeout_seconds": bad}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(status == 400 || status == 422, "{bad}: {status}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("timeout_seconds"),
            "{body}"
        );
    }
}

/// Malformed requests get the JSON error body and run nothing.
#[tokio::test]
async fn malformed_requests_are_rejected_with_json_errors() {
    let sandbox = common::start().await;
    for body in [
        json!({}),
        json!({"code": 5}),
        json!({"code": "print(1)", "unknown": true}),
    ] {
        let response = sandbox
            .http
            .post(sandbox.url("/execute"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["code"].is_string(), "{error}");
    }
    let not_json = sandbox
        .http
        .post(sandbox.url("/execute"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
}

/// /ready reports the pool and the isolation layers in force; /metrics counts executions.
#[tokio::test]
async fn readiness_and_metrics_describe_the_sandbox() {
    let sandbox = common::start().await;
    sandbox.run("print(1)").await;
    sandbox.run("raise SystemExit(2)").await;
    let ready: Value = sandbox
        .http
        .get(sandbox.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    let isolation = &ready["dependencies"]["isolation"]["detail"];
    assert_eq!(
        isolation["namespaces"],
        json!(["user", "pid", "mount", "net", "ipc", "uts"])
    );
    assert!(isolation["seccomp"].as_str().unwrap().contains("denied"));
    assert!(
        isolation["landlock"].is_string() && isolation["cgroups"].is_object(),
        "{isolation}"
    );
    assert_eq!(ready["dependencies"]["pool"]["detail"]["size"], 4);
    let metrics = sandbox
        .http
        .get(sandbox.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "sandbox_executions_total{",
        "outcome=\"ok\"",
        "outcome=\"error\"",
        "sandbox_execution_duration_seconds_bucket",
        "sandbox_pool_idle_workers",
        "sandbox_pool_size",
        "sandbox_worker_starts_total",
    ] {
        assert!(metrics.contains(needle), "missing {needle}");
    }
}

/// A caller that goes away before the answer (a cancelled call or task closes its connection)
/// takes its program with it: the program and what it started are killed at once, not left
/// to run to their own time limit, and /metrics counts the run as abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_whose_caller_left_is_killed() {
    let sandbox = common::start().await;
    let marker = format!(
        "switchboard-abandoned-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let code = format!(
        r#"import subprocess, sys
subprocess.run([sys.executable, "-c", "import time; time.sleep(120)", "{marker}"])
"#
    );
    let request = sandbox
        .http
        .post(sandbox.url("/execute"))
        .json(&json!({"code": code, "timeout_seconds": 120}))
        .send();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let started = async {
        while common::procs::with_marker(&marker).is_empty() {
            assert!(std::time::Instant::now() < deadline, "the program starts");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    // The request is dropped (its connection closed) once the program is running.
    tokio::select! {
        answer = request => panic!("answered before it was abandoned: {answer:?}"),
        () = started => {}
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !common::procs::with_marker(&marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned program is still running after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    switchboard_testkit::until_contains(
        &sandbox.url("/metrics"),
        "outcome=\"abandoned\"",
        std::time::Duration::from_secs(10),
    )
    .await;
    assert_eq!(sandbox.run("print('next')").await.stdout, "next\n");
}
