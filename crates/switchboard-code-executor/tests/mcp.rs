//! The code-executor in front of a real sandbox (both on ephemeral ports), called as a real
//! MCP client would; and what it says when the sandbox is down or slow.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::os::unix::fs::PermissionsExt;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};
use switchboard_code_executor::{CodeExecutorService, Config, RawConfig};
use switchboard_protocol::mcp_client::{ConnectOptions, McpClient, connect};
use switchboard_runtime::HttpSettings;
use switchboard_sandbox::SandboxService;
use switchboard_testkit::{Running, Spawn, Until, spawn};
use tokio::net::TcpListener;

/// A sandbox, ready (its pool filled), with the directory of its managed packages.
async fn start_sandbox() -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = switchboard_sandbox::Config::with_packages_dir(dir.path().join("site"));
    config.pool_size = 2;
    (spawn::<SandboxService>(config).await, dir)
}

/// A task state directory of this code-executor's own (one code-executor per directory; the
/// default is one per machine).
fn own_state_dir() -> Option<std::path::PathBuf> {
    Some(tempfile::tempdir().unwrap().keep())
}

/// A code-executor; serving is enough, since some tests want its sandbox down (not ready).
async fn start_executor(mut raw: RawConfig) -> Running {
    if raw.state_dir.is_none() {
        raw.state_dir = own_state_dir();
    }
    let config = Config::from_parts(raw, HttpSettings::default()).unwrap();
    Spawn::new()
        .until(Until::Healthy)
        .service::<CodeExecutorService>(config)
        .await
}

async fn executor_for(sandbox_url: &str) -> Running {
    start_executor(RawConfig {
        sandbox_url: Some(vec![sandbox_url.to_owned()]),
        ..Default::default()
    })
    .await
}

async fn client(server: &Running) -> McpClient {
    connect(&server.mcp_url(), &ConnectOptions::default())
        .await
        .unwrap()
}

async fn call(client: &McpClient, name: &'static str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments are an object")
    };
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(map))
        .await
        .unwrap()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An address where nothing listens.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Every tool is listed with input and output schemas and descriptions for a model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_every_tool_with_schemas() {
    let executor = executor_for(&dead_url().await).await;
    let client = client(&executor).await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "close_session",
            "create_session",
            "download_file",
            "execute_code",
            "install_package",
            "list_files",
            "upload_file"
        ]
    );
    for tool in &tools {
        assert!(tool.output_schema.is_some(), "{}", tool.name);
        assert!(tool.description.as_ref().is_some_and(|d| d.len() > 50));
    }
    let execute = tools.iter().find(|t| t.name == "execute_code").unwrap();
    assert_eq!(
        execute.input_schema.get("required").cloned(),
        Some(json!(["code"]))
    );
}

/// A program's output comes back as text and as structured content; a failing program is a
/// tool error whose text carries the traceback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executes_through_the_sandbox() {
    let (sandbox, _dir) = start_sandbox().await;
    let executor = executor_for(&sandbox.url()).await;
    let client = client(&executor).await;

    let ok = call(&client, "execute_code", json!({"code": "print('hello')"})).await;
    assert_eq!(ok.is_error, Some(false));
    let s = ok.structured_content.clone().unwrap();
    assert_eq!(s["stdout"], "hello\n");
    assert_eq!(s["exit_code"], 0);
    for field in [
        "stderr",
        "signal",
        "duration_ms",
        "timed_out",
        "memory_exceeded",
        "truncated",
        "success",
    ] {
        assert!(
            s.get(field).is_some(),
            "structured content has {field}: {s}"
        );
    }
    assert!(text(&ok).contains("hello"), "{}", text(&ok));

    let failed = call(
        &client,
        "execute_code",
        json!({"code": "import json\njson.loads('{bad')"}),
    )
    .await;
    assert_eq!(failed.is_error, Some(true));
    assert!(
        text(&failed).contains("JSONDecodeError"),
        "{}",
        text(&failed)
    );
    assert!(text(&failed).contains("exit code 1"), "{}", text(&failed));
    assert_eq!(failed.structured_content.unwrap()["exit_code"], 1);

    let timed_out = call(
        &client,
        "execute_code",
        json!({"code": "while True: pass", "timeout_seconds": 0.5}),
    )
    .await;
    assert_eq!(timed_out.is_error, Some(true));
    assert!(
        text(&timed_out).contains("time limit"),
        "{}",
        text(&timed_out)
    );

    let refused = call(
        &client,
        "execute_code",
        json!({"code": "print(1)", "timeout_seconds": -3}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("timeout_seconds"),
        "{}",
        text(&refused)
    );

    let rejected = call(&client, "install_package", json!({"package": "not a name"})).await;
    assert_eq!(rejected.is_error, Some(true));
    assert_eq!(rejected.structured_content.unwrap()["status"], "rejected");
}

/// With the sandbox down, tools say so clearly and /ready is 503; with it up, /ready is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_down_is_a_clear_tool_error_and_not_ready() {
    let dead = dead_url().await;
    let executor = executor_for(&dead).await;
    let client = client(&executor).await;
    let result = call(&client, "execute_code", json!({"code": "print(1)"})).await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("not reachable") && message.contains(&dead),
        "{message}"
    );
    assert!(message.contains("nothing was run"), "{message}");
    let install = call(&client, "install_package", json!({"package": "requests"})).await;
    assert_eq!(install.is_error, Some(true));
    assert!(
        text(&install).contains("Nothing was installed"),
        "{}",
        text(&install)
    );

    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/ready", executor.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["dependencies"]["sandbox"]["ready"], false, "{body}");

    let (sandbox, _dir) = start_sandbox().await;
    let healthy = executor_for(&sandbox.url()).await;
    let ready = http
        .get(format!("{}/ready", healthy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

/// A sandbox slower than the configured timeout is a clear tool error, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sandbox_times_out_with_a_clear_error() {
    let (sandbox, _dir) = start_sandbox().await;
    let executor = start_executor(RawConfig {
        sandbox_url: Some(vec![sandbox.url()]),
        execute_timeout_seconds: Some(0.5),
        ..Default::default()
    })
    .await;
    let client = client(&executor).await;
    let result = call(
        &client,
        "execute_code",
        json!({"code": "import time\ntime.sleep(5)", "timeout_seconds": 5}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(message.contains("did not answer within 0.5 s"), "{message}");
}

/// /metrics counts tool calls by outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_outcome() {
    let executor = executor_for(&dead_url().await).await;
    let client = client(&executor).await;
    call(&client, "execute_code", json!({"code": "print(1)"})).await;
    let metrics = reqwest::get(format!("{}/metrics", executor.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mcp_tool_calls_total{") && metrics.contains("outcome=\"unreachable\""),
        "{metrics}"
    );
}

/// The code-executor serves MCP on the endpoint every service shares: a session's requests are
/// answered as plain JSON on the HTTP request's own task, exactly as rmcp's session loop
/// answers the same bytes (behind the tasks front, which completes both alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_requests_take_the_shared_endpoints_path() {
    let executor = executor_for(&dead_url().await).await;
    let session = switchboard_testkit::raw_mcp::RawSession::open(&executor.mcp_url(), None).await;
    use switchboard_testkit::raw_mcp::request;
    let answers = session
        .assert_one_path(&[
            request(10, "tools/list", json!({})),
            request(11, "ping", json!({})),
            request(12, "tools/call", json!({"name": "nope", "arguments": {}})),
            request(
                13,
                "tools/call",
                json!({"name": "execute_code", "arguments": {"code": 5}}),
            ),
        ])
        .await;
    assert_eq!(answers[0]["result"]["tools"].as_array().unwrap().len(), 7);
}
