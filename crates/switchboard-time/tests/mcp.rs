//! The time-client, started on an ephemeral port and called as a real MCP client would.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use switchboard_protocol::mcp_client::{ConnectOptions, McpClient, connect};
use switchboard_testkit::{Running, spawn};
use switchboard_time::{Config, TimeService};

async fn start() -> Running {
    spawn::<TimeService>(Config::default()).await
}

async fn client(server: &Running) -> McpClient {
    connect(&server.mcp_url(), &ConnectOptions::default())
        .await
        .expect("MCP initialize succeeds")
}

async fn call(client: &McpClient, name: &'static str, args: Value) -> rmcp::model::CallToolResult {
    let mut params = CallToolRequestParams::new(name);
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    client.call_tool(params).await.expect("call answered")
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// initialize reports the server, and tools/list has both tools with input and output schemas.
#[tokio::test]
async fn lists_both_tools_with_schemas() {
    let server = start().await;
    let client = client(&server).await;
    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("switchboard-time")
    );
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["convert_time", "get_current_time"]);
    for tool in &tools {
        assert!(
            tool.output_schema.is_some(),
            "{} has an output schema",
            tool.name
        );
        assert!(tool.description.as_ref().is_some_and(|d| d.len() > 40));
    }
    let convert = tools.iter().find(|t| t.name == "convert_time").unwrap();
    let required = convert
        .input_schema
        .get("required")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        required,
        json!(["time", "source_timezone", "target_timezone"])
    );
    // An optional argument is a plain string that is not required (no `["string", "null"]`,
    // which strict validators such as the MCP Inspector's flag).
    let current = tools.iter().find(|t| t.name == "get_current_time").unwrap();
    let schema = serde_json::Value::Object((*current.input_schema).clone());
    assert_eq!(
        schema["properties"]["timezone"]["type"], "string",
        "{schema}"
    );
    assert!(
        schema.get("required").is_none_or(|r| r == &json!([])),
        "{schema}"
    );
}

/// get_current_time returns an ISO 8601 timestamp with offset, as text and structured content.
#[tokio::test]
async fn current_time_in_utc_and_in_a_named_zone() {
    let server = start().await;
    let client = client(&server).await;

    let utc = call(&client, "get_current_time", json!({})).await;
    assert_ne!(utc.is_error, Some(true));
    let s = utc.structured_content.clone().expect("structured content");
    assert_eq!(s["timezone"], "UTC");
    let stamp = s["datetime"].as_str().unwrap();
    assert!(stamp.ends_with("+00:00"), "{stamp}");
    let parsed: jiff::Timestamp = stamp.parse().expect("RFC 3339");
    let skew = jiff::Timestamp::now().as_second() - parsed.as_second();
    assert!(skew.abs() < 60, "timestamp is now, skew {skew}s");
    assert!(
        text_of(&utc).contains(stamp),
        "text content carries the timestamp"
    );

    let kolkata = call(
        &client,
        "get_current_time",
        json!({"timezone": "Asia/Kolkata"}),
    )
    .await;
    let s = kolkata.structured_content.expect("structured");
    assert!(s["datetime"].as_str().unwrap().ends_with("+05:30"));
    assert_eq!(s["is_dst"], false);
}

/// convert_time converts between zones and reports the difference.
#[tokio::test]
async fn converts_between_zones() {
    let server = start().await;
    let client = client(&server).await;
    let r = call(
        &client,
        "convert_time",
        json!({"time": "09:30", "source_timezone": "UTC", "target_timezone": "Asia/Kathmandu"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let s = r.structured_content.unwrap();
    assert_eq!(s["time_difference"], "+5h45m");
    assert!(
        s["target"]["datetime"]
            .as_str()
            .unwrap()
            .contains("T15:15:00+05:45")
    );
}

/// An unknown zone is a tool error (isError) whose message says what is accepted.
#[tokio::test]
async fn unknown_timezone_is_a_tool_error_naming_the_accepted_form() {
    let server = start().await;
    let client = client(&server).await;
    let r = call(
        &client,
        "get_current_time",
        json!({"timezone": "Mars/Olympus_Mons"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(
        text.contains("unknown time zone 'Mars/Olympus_Mons'"),
        "{text}"
    );
    assert!(text.contains("IANA"), "{text}");

    let r = call(
        &client,
        "convert_time",
        json!({"time": "09:30", "source_timezone": "UTC", "target_timezone": "Paris"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("Europe/Paris"),
        "suggests the IANA name: {}",
        text_of(&r)
    );
}

/// Arguments that do not fit the schema are tool errors the model can read and correct.
#[tokio::test]
async fn bad_arguments_are_tool_errors() {
    let server = start().await;
    let client = client(&server).await;
    let r = call(&client, "convert_time", json!({"time": "09:30"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("source_timezone"), "{}", text_of(&r));

    let r = call(&client, "get_current_time", json!({"timezone": 42})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("invalid type: integer `42`"),
        "{}",
        text_of(&r)
    );

    let r = call(
        &client,
        "convert_time",
        json!({"time": "9.30am", "source_timezone": "UTC", "target_timezone": "UTC"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("HH:MM"));
}

/// An unknown tool is a JSON-RPC protocol error, and the session stays usable.
#[tokio::test]
async fn unknown_tool_is_a_protocol_error() {
    let server = start().await;
    let client = client(&server).await;
    let err = client
        .call_tool(CallToolRequestParams::new("get_weather"))
        .await
        .expect_err("unknown tool");
    match err {
        rmcp::ServiceError::McpError(e) => {
            assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS);
            assert!(
                e.message.contains("get_weather") || e.message.contains("not found"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
    let r = call(&client, "get_current_time", json!({})).await;
    assert_ne!(r.is_error, Some(true));
}

/// DNS-rebinding protection: a foreign Origin or Host is refused with 403 before any MCP work.
#[tokio::test]
async fn foreign_origin_and_host_are_refused() {
    let server = start().await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let post = |origin: Option<&str>, host: Option<&str>| {
        let mut r = http
            .post(server.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(h) = host {
            r = r.header("host", h);
        }
        r.send()
    };
    assert_eq!(
        post(Some("http://evil.example"), None)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(None, Some("evil.example:8003"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(Some("http://localhost:5173"), None)
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Health, readiness, metrics, and the JSON error body for REST errors.
#[tokio::test]
async fn common_endpoints_and_error_shape() {
    let server = start().await;
    let client = client(&server).await;
    call(&client, "get_current_time", json!({})).await;
    let http = reqwest::Client::new();
    let health: Value = http
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = http
        .get(format!("{}/ready", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let metrics = http
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"mcp_tool_calls_total{service="time-client",tool="get_current_time",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"));

    let missing = http
        .get(format!("{}/nope", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let wrong_method = http
        .delete(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

/// The MCP endpoint refuses a body over the limit, without reading it all.
#[tokio::test]
async fn oversized_body_is_refused() {
    let mut config = Config::default();
    config.http = config.http.with_max_body_bytes(1024);
    let server = spawn::<TimeService>(config).await;
    let big = "x".repeat(4096);
    let r = reqwest::Client::new()
        .post(server.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{big}"}}}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// Cancelling the shutdown token stops the server: serve returns and the port stops answering.
#[tokio::test]
async fn shuts_down_on_cancel() {
    let server = start().await;
    let client = client(&server).await;
    let base = server.url();
    let result = server.shutdown().await;
    assert!(result.is_ok());
    drop(client);
    assert!(reqwest::get(format!("{base}/health")).await.is_err());
}
