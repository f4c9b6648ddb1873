//! A client ends its session with `DELETE /mcp`: answered 200 (what the official Python SDK
//! expects; rmcp answers 202), after which the session is gone (404).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use serde_json::json;
use switchboard_testkit::spawn;
use switchboard_time::{Config, TimeService};

#[tokio::test]
async fn deleting_a_session_answers_200_and_ends_it() {
    let server = spawn::<TimeService>(Config::default()).await;
    let url = server.mcp_url();
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value, session: Option<&str>| {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    init.bytes().await.unwrap();
    let initialized = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(initialized.status(), 202);

    let deleted = http
        .delete(&url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    let after = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(after.status(), 404, "the session is gone");
}
