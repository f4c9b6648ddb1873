//! The load generator run as a binary against real servers on ephemeral ports.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::process::Command;

use common::{BIN, loadgen, serving, time_client};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A fixed request count over four MCP sessions: exactly that many calls, all answered with
/// the expected content, and a latency summary in order.
#[tokio::test(flavor = "multi_thread")]
async fn mcp_mode_makes_exactly_the_requested_calls() {
    let server = time_client().await;
    let (output, report) = loadgen(&[
        "mcp",
        "--url",
        &server.mcp_url(),
        "--tool",
        "get_current_time",
        "--arguments",
        r#"{"timezone":"Europe/Berlin"}"#,
        "-c",
        "4",
        "--requests",
        "200",
        "--warmup",
        "0.1",
        "--expect",
        "Europe/Berlin",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["mode"], "mcp");
    assert_eq!(report["concurrency"], 4);
    assert_eq!(report["requests"], 200);
    assert_eq!(report["errors"], 0);
    assert!(report["throughput_per_second"].as_f64().unwrap() > 0.0);
    let lat = &report["latency_us"];
    let values: Vec<f64> = ["min", "p50", "p90", "p99", "max"]
        .iter()
        .map(|k| lat[*k].as_f64().unwrap())
        .collect();
    assert!(values[0] > 0.0, "{lat}");
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "percentiles ascend: {lat}"
    );
}

/// `--list-tools` sends `tools/list` on one session shared by the workers: the answers carry
/// the server's tools, and the report names the request.
#[tokio::test(flavor = "multi_thread")]
async fn list_tools_mode_lists_on_a_shared_session() {
    let server = time_client().await;
    let (output, report) = loadgen(&[
        "mcp",
        "--url",
        &server.mcp_url(),
        "--list-tools",
        "--shared-session",
        "-c",
        "4",
        "--requests",
        "50",
        "--warmup",
        "0",
        "--expect",
        "convert_time",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["requests"], 50);
    assert_eq!(report["errors"], 0);
    let target = report["target"].as_str().unwrap();
    assert!(target.contains("tools/list"), "{target}");

    // A tool and --list-tools together is a usage error, not a silent choice.
    let both = Command::new(BIN)
        .args([
            "mcp",
            "--url",
            &server.mcp_url(),
            "--tool",
            "x",
            "--list-tools",
        ])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}

/// `--raw` opens the session itself and reads only the answers' envelopes: lists and calls
/// succeed on a shared session and on one session per worker and as 2026-07-28 stateless
/// requests, and a tool error is still an error.
#[tokio::test(flavor = "multi_thread")]
async fn raw_mode_lists_and_calls_and_still_sees_tool_errors() {
    let server = time_client().await;
    let url = server.mcp_url();
    let run = |extra: &[&str]| {
        let mut args = vec!["mcp", "--url", &url, "--raw", "-c", "4", "--requests", "40"];
        args.extend(["--warmup", "0"]);
        args.extend(extra);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            loadgen(&args).await
        }
    };
    // On 2026-07-28 the load generator sends `server/discover`, then stateless requests with
    // their lifecycle `_meta` and standard headers, which the server checks against the body
    // (a mismatch would be refused, and counted as an error here).
    let list = ["--list-tools", "--expect", "convert_time"];
    let call = [
        "--tool",
        "get_current_time",
        "--arguments",
        r#"{"timezone":"UTC"}"#,
        "--expect",
        "UTC",
    ];
    for (protocol, shared, request) in [
        ("2025-11-25", true, &list[..]),
        ("2025-11-25", false, &call[..]),
        ("2026-07-28", false, &list[..]),
        ("2026-07-28", false, &call[..]),
    ] {
        let mut args = vec!["--protocol", protocol];
        if shared {
            args.push("--shared-session");
        }
        args.extend(request);
        let (output, report) = run(&args).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            (report["requests"].as_u64(), report["errors"].as_u64()),
            (Some(40), Some(0)),
            "{args:?}: {report}"
        );
        assert!(
            report["target"].as_str().unwrap().contains("raw JSON-RPC"),
            "{report}"
        );
    }

    for protocol in ["2025-11-25", "2026-07-28"] {
        let (output, report) = run(&[
            "--protocol",
            protocol,
            "--tool",
            "get_current_time",
            "--arguments",
            r#"{"timezone":"Mars/Olympus"}"#,
        ])
        .await;
        assert_eq!(output.status.code(), Some(1), "{protocol}");
        let first = report["first_error"].as_str().unwrap();
        assert!(first.starts_with("tool error:"), "{protocol}: {first}");
    }
}

/// Answers that lack the expected text and tool errors count as errors, the first one is
/// quoted, and the exit status says the run failed.
#[tokio::test(flavor = "multi_thread")]
async fn failures_are_counted_and_explained() {
    let server = time_client().await;
    let (output, report) = loadgen(&[
        "mcp",
        "--url",
        &server.mcp_url(),
        "--tool",
        "get_current_time",
        "--arguments",
        r#"{"timezone":"Mars/Olympus"}"#,
        "--requests",
        "5",
        "--warmup",
        "0",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["requests"], 0);
    assert_eq!(report["errors"], 5);
    let first = report["first_error"].as_str().unwrap();
    assert!(
        first.contains("tool error") && first.contains("Mars/Olympus"),
        "{first}"
    );
}

/// An endpoint that is not there stops the run before it starts, with a message.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_target_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let (output, _) = loadgen(&[
        "mcp",
        "--url",
        &url,
        "--tool",
        "get_current_time",
        "--requests",
        "1",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("opening MCP session 0 failed"), "{stderr}");
}

/// Bad options are refused with the option's name.
#[test]
fn bad_options_name_the_option() {
    let output = Command::new(BIN)
        .args(["process", "-c", "0", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--concurrency 0"));
}

/// Process mode starts the program once per request and checks its stdout.
#[tokio::test(flavor = "multi_thread")]
async fn process_mode_runs_the_program() {
    let (output, report) = loadgen(&[
        "process",
        "-c",
        "2",
        "--requests",
        "10",
        "--warmup",
        "0",
        "--expect",
        "hello",
        "--",
        "/bin/echo",
        "hello",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["mode"], "process");
    assert_eq!(report["requests"], 10);
}

/// A paced run sends at the given rate: 10 requests at 50/s cannot finish before the tenth
/// slot, 180 ms after the first.
#[tokio::test(flavor = "multi_thread")]
async fn paced_run_keeps_to_its_rate() {
    let (output, report) = loadgen(&[
        "process",
        "--rate",
        "50",
        "--requests",
        "10",
        "--warmup",
        "0",
        "--",
        "/bin/true",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["requests"], 10);
    assert_eq!(report["rate_per_second"], 50.0);
    let elapsed = report["elapsed_seconds"].as_f64().unwrap();
    assert!(elapsed >= 0.18, "finished after {elapsed} s");
}

/// The scripted LLM answers a tool request with a tool call, and HTTP mode loads it.
#[tokio::test(flavor = "multi_thread")]
async fn scripted_llm_serves_and_http_mode_loads_it() {
    let (_llm, addr) = serving(&["scripted-llm", "--listen", "127.0.0.1:0"]).await;
    let url = format!("http://{addr}/v1/chat/completions");

    let tools =
        json!([{"type": "function", "function": {"name": "get_current_time", "parameters": {}}}]);
    let ask = json!({"model": "m", "messages": [{"role": "user", "content": "use a tool"}], "tools": tools});
    let answer: Value = reqwest::Client::new()
        .post(&url)
        .json(&ask)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let call = &answer["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_current_time");
    assert_eq!(call["arguments"], r#"{"timezone":"UTC"}"#);
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");

    let body = json!({"messages": [{"role": "user", "content": "hi"}]}).to_string();
    let (output, report) = loadgen(&[
        "http",
        "--url",
        &url,
        "--body",
        &body,
        "-c",
        "2",
        "--requests",
        "20",
        "--warmup",
        "0",
        "--expect",
        "hello",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["requests"], 20);

    let bad = reqwest::Client::new()
        .post(&url)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert!(error["error"]["message"].is_string());
}
