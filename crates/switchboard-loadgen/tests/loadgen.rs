//! The load generator run as a binary against real servers on ephemeral ports.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use switchboard_testkit::Running;
use switchboard_time::TimeService;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard-loadgen");

/// A time-client served in this process on 127.0.0.1:0; stops when dropped.
async fn time_client() -> Running {
    switchboard_testkit::spawn::<TimeService>(switchboard_time::Config::default()).await
}

/// Run the binary to completion off the async runtime (the server lives on it).
async fn loadgen(args: Vec<String>) -> (Output, Value) {
    let output =
        tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
            .await
            .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A fixed request count over four MCP sessions: exactly that many calls, all answered with
/// the expected content, and a latency summary in order.
#[tokio::test(flavor = "multi_thread")]
async fn mcp_mode_makes_exactly_the_requested_calls() {
    let server = time_client().await;
    let (output, report) = loadgen(args(&[
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
    ]))
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

/// Answers that lack the expected text and tool errors count as errors, the first one is
/// quoted, and the exit status says the run failed.
#[tokio::test(flavor = "multi_thread")]
async fn failures_are_counted_and_explained() {
    let server = time_client().await;
    let (output, report) = loadgen(args(&[
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
    ]))
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
    let (output, _) = loadgen(args(&[
        "mcp",
        "--url",
        &url,
        "--tool",
        "get_current_time",
        "--requests",
        "1",
    ]))
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
    let (output, report) = loadgen(args(&[
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
    ]))
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
    let (output, report) = loadgen(args(&[
        "process",
        "--rate",
        "50",
        "--requests",
        "10",
        "--warmup",
        "0",
        "--",
        "/bin/true",
    ]))
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
    let mut llm = tokio::process::Command::new(BIN)
        .args(["scripted-llm", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(llm.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr = first.strip_prefix("listening on ").unwrap().to_owned();
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
    let (output, report) = loadgen(args(&[
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
    ]))
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
