//! The time-client serves MCP on the endpoint every service shares
//! (`switchboard_protocol::mcp_server::endpoint`): a session's requests are answered on the
//! HTTP request's own task as plain JSON, exactly as rmcp's session loop answers the same bytes.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use serde_json::json;
use switchboard_testkit::{
    raw_mcp::{RawSession, request},
    spawn,
};
use switchboard_time::{Config, TimeService};

#[tokio::test]
async fn session_requests_are_answered_as_rmcp_answers_them() {
    let server = spawn::<TimeService>(Config::default()).await;
    let session = RawSession::open(&server.mcp_url(), None).await;
    let convert = json!({"name": "convert_time", "arguments": {
        "source_timezone": "Europe/Paris", "time": "14:30", "target_timezone": "Asia/Tokyo"}});
    let answers = session
        .assert_one_path(&[
            request(10, "tools/list", json!({})),
            request(11, "tools/call", convert),
            request(12, "ping", json!({})),
            request(
                13,
                "tools/call",
                json!({"name": "no_such_tool", "arguments": {}}),
            ),
            request(
                14,
                "tools/call",
                json!({"name": "convert_time", "arguments": {"time": 5}}),
            ),
            request(15, "prompts/list", json!({})),
            request(16, "resources/list", json!({})),
        ])
        .await;
    let tools = answers[0]["result"]["tools"].as_array().unwrap();
    assert!(
        tools.iter().any(|t| t["name"] == "convert_time"),
        "{tools:?}"
    );
    let converted = &answers[1]["result"]["structuredContent"];
    assert_eq!(
        converted["target"]["timezone"], "Asia/Tokyo",
        "{}",
        answers[1]
    );
    assert!(answers[3]["error"].is_object() || answers[3]["result"]["isError"] == true);
}
