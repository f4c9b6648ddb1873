//! The `/mcp` endpoint over raw HTTP: requests of an initialized session answered directly
//! (plain JSON), the session kept open while it is used that way, and everything the endpoint
//! does not answer itself still answered (or refused) by rmcp.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A client speaking Streamable HTTP by hand.
struct RawSession {
    http: reqwest::Client,
    url: String,
    id: String,
}

impl RawSession {
    async fn open(url: &str) -> Self {
        let http = reqwest::Client::new();
        let init = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(init.status(), 200);
        let id = init.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        init.text().await.unwrap();
        let session = Self {
            http,
            url: url.to_owned(),
            id,
        };
        let initialized = session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(initialized.status(), 202);
        session
    }

    async fn post(&self, body: Value) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `tools/call get_current_time`; the answer's status, content type and JSON body.
    async fn call(&self, id: u64) -> (u16, String, Value) {
        let answer = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}}))
            .await;
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = answer.text().await.unwrap();
        (
            status,
            content_type,
            serde_json::from_str(&body).unwrap_or(Value::Null),
        )
    }
}

async fn time_gateway(idle: Duration) -> (Running, GatewayUnderTest) {
    let time = time_client(any_port()).await;
    let gateway = gateway(
        config(vec![upstream("time-client", &time.mcp_url())]).with_session_idle_timeout(idle),
    )
    .await;
    gateway
        .wait_for("the time-client listed", |c| {
            c.tools.iter().any(|t| t.name == "get_current_time")
        })
        .await;
    (time, gateway)
}

/// A tool call of an initialized session is answered with plain JSON; an unknown tool is a
/// JSON-RPC error in the same form; a request naming an unknown session is refused by rmcp.
#[tokio::test]
async fn calls_of_a_session_are_answered_with_json() {
    let (_time, gateway) = time_gateway(Duration::from_secs(300)).await;
    let session = RawSession::open(&gateway.mcp_url()).await;
    let (status, content_type, body) = session.call(1).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    assert_eq!(body["id"], 1);
    assert_eq!(
        body["result"]["structuredContent"]["timezone"], "UTC",
        "{body}"
    );

    let unknown = session
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "no_such_tool", "arguments": {}}}))
        .await;
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["id"], 2);
    assert_eq!(body["error"]["code"], -32602, "{body}");

    let stranger = RawSession {
        id: "not-a-session".to_owned(),
        ..session
    };
    let (status, _, _) = stranger.call(3).await;
    assert_eq!(status, 404, "rmcp refuses an unknown session");
}

/// rmcp closes a session its worker has not heard from for the idle timeout; a session busy
/// with calls answered by the endpoint stays open well past it.
#[tokio::test]
async fn a_session_busy_with_direct_calls_outlives_the_idle_timeout() {
    let idle = Duration::from_millis(600);
    let (_time, gateway) = time_gateway(idle).await;
    let session = RawSession::open(&gateway.mcp_url()).await;
    let start = Instant::now();
    let mut id = 0;
    while start.elapsed() < idle * 4 {
        id += 1;
        let (status, content_type, body) = session.call(id).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "application/json"),
            "call {id} after {:?}: {body}",
            start.elapsed()
        );
    }
}

/// `DELETE /mcp` ends a session with 200 (the official Python SDK reports rmcp's 202 as a
/// failed termination); the session is gone afterwards.
#[tokio::test]
async fn deleting_a_session_answers_200() {
    let (_time, gateway) = time_gateway(Duration::from_secs(300)).await;
    let session = RawSession::open(&gateway.mcp_url()).await;
    assert_eq!(session.call(1).await.0, 200);
    let deleted = session
        .http
        .delete(&session.url)
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(session.call(2).await.0, 404, "the session is gone");
}

/// Lists come in one page; a cursor the gateway never handed out is invalid params (-32602),
/// not silently answered with the whole list.
#[tokio::test]
async fn an_unknown_list_cursor_is_invalid_params() {
    let (_time, gateway) = time_gateway(Duration::from_secs(300)).await;
    let session = RawSession::open(&gateway.mcp_url()).await;
    for method in [
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
    ] {
        let answer = session
            .post(json!({"jsonrpc": "2.0", "id": 7, "method": method,
                "params": {"cursor": "not-a-cursor"}}))
            .await;
        let text = answer.text().await.unwrap();
        let body: Value = serde_json::from_str(
            text.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or(&text),
        )
        .unwrap();
        assert_eq!(body["error"]["code"], -32602, "{method}: {body}");
    }
    let whole = session
        .post(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}))
        .await;
    let text = whole.text().await.unwrap();
    assert!(
        text.contains("get_current_time") && !text.contains("nextCursor"),
        "{text}"
    );
}
