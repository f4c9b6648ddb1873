//! Gateway replicas sharing a session key serve each other's sessions: a session initialized
//! on one replica is used on another (as behind a round-robin load balancer), and survives the
//! replica that issued it. Without the key, or with another key, the id is unknown there.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use serde_json::{Value, json};
use switchboard_protocol::mcp_server::sealed::SessionKeys;

use common::{any_port, config, gateway, time_client, upstream};

fn keys(byte: u8) -> SessionKeys {
    SessionKeys::new(&[vec![byte; 32]], std::time::Duration::from_secs(3600)).expect("a key")
}

/// POST one JSON-RPC message to `url`; the status, the session id header and the JSON answer
/// (from a plain JSON body or the first `data:` line of an event stream).
async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    message: Value,
) -> (u16, Option<String>, Value) {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&message);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.expect("body");
    let json = serde_json::from_str(&body).ok().or_else(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
    });
    (status, id, json.unwrap_or(Value::Null))
}

async fn initialize(http: &reqwest::Client, url: &str) -> String {
    let (status, id, answer) = post(
        http,
        url,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "replica-test", "version": "1"}
        }}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let id = id.expect("a session id");
    let (status, _, _) = post(
        http,
        url,
        Some(&id),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);
    id
}

async fn call_time(http: &reqwest::Client, url: &str, session: &str, id: u64) -> (u16, Value) {
    let (status, _, answer) = post(
        http,
        url,
        Some(session),
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}}),
    )
    .await;
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_one_key_serve_each_others_sessions() {
    let time = time_client(any_port()).await;
    let upstreams = || vec![upstream("time", &time.mcp_url())];
    let a = gateway(config(upstreams()).with_session_keys(keys(7))).await;
    let b = gateway(config(upstreams()).with_session_keys(keys(7))).await;
    let other = gateway(config(upstreams()).with_session_keys(keys(8))).await;
    let unsealed = gateway(config(upstreams())).await;
    for g in [&a, &b, &other, &unsealed] {
        g.wait_for("the time tools", |c| !c.tools.is_empty()).await;
    }
    let http = reqwest::Client::new();
    let session = initialize(&http, &a.mcp_url()).await;
    assert!(session.starts_with("s1."), "{session}");

    // Round robin: every request of the session may land on either replica.
    for (n, url) in [a.mcp_url(), b.mcp_url(), b.mcp_url(), a.mcp_url()]
        .iter()
        .enumerate()
    {
        let (status, answer) = call_time(&http, url, &session, n as u64 + 1).await;
        assert_eq!(status, 200, "{url}: {answer}");
        assert!(
            answer["result"]["content"][0]["text"].is_string(),
            "{answer}"
        );
    }
    let (status, _, listed) = post(
        &http,
        &b.mcp_url(),
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 10, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{listed}"
    );

    // Another key, or none: the id is not theirs.
    let (status, _) = call_time(&http, &other.mcp_url(), &session, 11).await;
    assert_eq!(status, 404);
    let (status, _) = call_time(&http, &unsealed.mcp_url(), &session, 12).await;
    assert_eq!(status, 404);
    // A forged id is unknown everywhere.
    let mut forged = session.clone();
    forged.truncate(session.len() - 4);
    forged.push_str("AAAA");
    let (status, _) = call_time(&http, &b.mcp_url(), &forged, 13).await;
    assert_eq!(status, 404);

    // The replica that issued it goes away; the session lives on.
    drop(a);
    let (status, answer) = call_time(&http, &b.mcp_url(), &session, 14).await;
    assert_eq!(status, 200, "{answer}");
    let c = gateway(config(upstreams()).with_session_keys(keys(7))).await;
    c.wait_for("the time tools", |c| !c.tools.is_empty()).await;
    let (status, answer) = call_time(&http, &c.mcp_url(), &session, 15).await;
    assert_eq!(status, 200, "{answer}");
}
