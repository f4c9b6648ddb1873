//! Each client on its own upstream state: behind the gateway, clients of a stateful upstream —
//! the reference "everything" server (npm) over Streamable HTTP — each get a session of their
//! own with it, so what one client makes in its session (a resource, simulated logging) the
//! other neither sees nor hears, exactly as when both talk to the server directly. The clients
//! are the official MCP Python SDK (2.x) and rmcp; the gateway's `/ready` and `/metrics` show
//! the upstream sessions of clients opening and closing with their client sessions.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Run the Python SDK's two-client script (`fixtures/py-client/isolation.py`) against `url`;
/// its JSON report.
async fn two_python_clients(url: &str) -> Value {
    let python = installed().join("py-stdio/bin/python");
    assert!(
        python.exists(),
        "the Python SDK is not installed; run `{INSTALL}`"
    );
    let output = tokio::time::timeout(
        PATIENCE * 2,
        tokio::process::Command::new(python)
            .arg(fixtures().join("py-client/isolation.py"))
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python clients finished")
    .unwrap();
    assert!(
        output.status.success(),
        "the Python clients against {url} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A gateway in front of `everything`, up, with its client sessions per client.
async fn gateway_before(everything: &EverythingHttp, max_sessions: usize) -> GatewayUnderTest {
    let upstream = upstream("everything", &everything.mcp_url()).with_max_sessions(max_sessions);
    let gateway = gateway(config(vec![upstream])).await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "gzip-file-as-resource")
        })
        .await;
    assert!(
        gateway.gateway.upstreams()[0].isolates_clients(),
        "a Streamable HTTP server that gives session ids keeps a session per client"
    );
    gateway
}

/// `/ready`'s `open_client_sessions` of the only upstream.
fn open_sessions(ready: &Value) -> u64 {
    ready["dependencies"]["everything"]["detail"]["open_client_sessions"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// Whether the everything server still knows session `id` (it answers 400 to an unknown one).
async fn upstream_knows(everything: &EverythingHttp, id: &str) -> bool {
    let answer = reqwest::Client::new()
        .post(everything.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    answer.status().is_success()
}

/// Wait (with a deadline) until the server no longer knows session `id`.
async fn until_upstream_forgets(everything: &EverythingHttp, id: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while upstream_knows(everything, id).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream session {id} was not closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The issue's demonstration, both ways: two SDK clients direct to the server, then the same
/// two through the gateway. Each reads the resource it made and hears only its own log
/// messages; the other does neither; each is offered the tools its own capabilities allow.
/// Then both have left (the SDK ends its session with `DELETE`), and so have their upstream
/// sessions.
#[tokio::test]
async fn two_sdk_clients_keep_their_state_apart_through_the_gateway_as_directly() {
    let everything = EverythingHttp::start().await;
    let gateway = gateway_before(&everything, 16).await;

    let direct = two_python_clients(&everything.mcp_url()).await;
    let through = two_python_clients(&gateway.mcp_url()).await;

    for report in [&direct, &through] {
        assert_eq!(report["a_lists_its_resource"], true, "{report}");
        assert_eq!(report["a_reads_its_resource"], true, "{report}");
        assert_eq!(report["b_lists_a_resource"], false, "{report}");
        assert_eq!(report["b_reads_a_resource"], false, "{report}");
        for client in ["a", "b"] {
            assert_eq!(
                report[format!("{client}_logging_started")],
                true,
                "{report}"
            );
            assert_eq!(report[format!("{client}_heard_two_logs")], true, "{report}");
            assert_eq!(
                report[format!("{client}_logs_all_its_own")],
                true,
                "{report}"
            );
        }
        assert_eq!(report["servers_sessions_differ"], true, "{report}");
        assert_eq!(report["b_sampled"], true, "{report}");
        let offered = |client: &str| {
            report[format!("{client}_tools")]
                .as_array()
                .unwrap()
                .contains(&json!("trigger-sampling-request"))
        };
        assert!(!offered("a") && offered("b"), "{report}");
    }
    // Everything a client can see is the same through the gateway as directly.
    let same = |mut report: Value| {
        report.as_object_mut().unwrap().remove("sessions");
        report
    };
    assert_eq!(same(through.clone()), same(direct.clone()));

    // Both clients ended their sessions; their upstream sessions are gone too.
    let ready = ready_until(&gateway.base(), |r| open_sessions(r) == 0).await;
    assert_eq!(
        ready["dependencies"]["everything"]["detail"]["client_sessions"], "per_client",
        "{ready}"
    );
    for id in through["sessions"].as_object().unwrap().values() {
        until_upstream_forgets(&everything, id.as_str().unwrap()).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", gateway.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels = [("upstream", "everything")];
    assert_eq!(
        metric(&metrics, "mcp_upstream_sessions", &labels),
        Some(0.0)
    );
}

/// A client's upstream session opens on its first request and closes when the client ends
/// its session; another client's stays. With a limit of one session per upstream, a second
/// client is refused, with an error that says why, until the first has left.
#[tokio::test]
async fn closing_a_client_session_closes_its_upstream_session() {
    let everything = EverythingHttp::start().await;
    let gateway = gateway_before(&everything, 1).await;
    let base = gateway.base();
    assert_eq!(open_sessions(&ready_until(&base, |_| true).await), 0);

    let (a, _a_events) = client(&gateway.mcp_url()).await;
    let started = a
        .call_tool(params("toggle-simulated-logging", json!({})))
        .await
        .unwrap();
    let text = text_of(&started);
    let a_upstream = text
        .split("for session ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(upstream_knows(&everything, &a_upstream).await);
    ready_until(&base, |r| open_sessions(r) == 1).await;

    let (b, _b_events) = client(&gateway.mcp_url()).await;
    let refused = b
        .call_tool(params("echo", json!({"message": "b"})))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true), "{refused:?}");
    let why = text_of(&refused);
    assert!(
        why.contains("upstream 'everything'") && why.contains("max_sessions"),
        "{why}"
    );

    // A leaves (rmcp's client ends its session with DELETE): its upstream session ends.
    a.cancel().await.unwrap();
    until_upstream_forgets(&everything, &a_upstream).await;
    ready_until(&base, |r| open_sessions(r) == 0).await;

    let echoed = b
        .call_tool(params("echo", json!({"message": "b"})))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "Echo: b");
    ready_until(&base, |r| open_sessions(r) == 1).await;
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels = [("upstream", "everything")];
    assert_eq!(
        metric(&metrics, "mcp_upstream_sessions_refused_total", &labels),
        Some(1.0)
    );
}

/// A client session the gateway expires (no request for the idle timeout) takes its upstream
/// session with it.
#[tokio::test]
async fn an_expired_client_session_closes_its_upstream_session() {
    let everything = EverythingHttp::start().await;
    let upstream = upstream("everything", &everything.mcp_url());
    let gateway =
        gateway(config(vec![upstream]).with_session_idle_timeout(Duration::from_millis(800))).await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let (idle, _events) = client(&gateway.mcp_url()).await;
    idle.call_tool(params("echo", json!({"message": "once"})))
        .await
        .unwrap();
    let base = gateway.base();
    ready_until(&base, |r| open_sessions(r) == 1).await;
    // Nothing more from the client: its session, and then its upstream session, expire.
    ready_until(&base, |r| open_sessions(r) == 0).await;
}

/// One step of a Python SDK client without a session (`fixtures/py-client/identity.py`).
async fn sessionless(url: &str, key: &str, step: &str, argument: &str) -> Value {
    python_fixture("identity.py", &[url, key, step, argument]).await
}

/// Requests without a session (protocol 2026-07-28) go on one upstream session per caller:
/// what alice made in one connection she reads in the next; bob, another API key, cannot, and
/// the other way round.
#[tokio::test]
async fn sessionless_callers_get_an_upstream_session_per_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_entry) = switchboard_runtime::auth::api_keys::new_key("alice");
    let (bob, bob_entry) = switchboard_runtime::auth::api_keys::new_key("bob");
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, format!("{alice_entry}\n{bob_entry}")).unwrap();
    let auth = switchboard_runtime::auth::AuthSettings::with_api_keys(&keys).unwrap();
    let everything = EverythingHttp::start().await;
    let gateway = gateway(
        config(vec![upstream("everything", &everything.mcp_url())])
            .with_http(switchboard_runtime::HttpSettings::default().with_auth(auth)),
    )
    .await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "gzip-file-as-resource")
        })
        .await;
    let url = gateway.mcp_url();
    let mut uris = Vec::new();
    for (key, name) in [(&alice, "alice.txt.gz"), (&bob, "bob.txt.gz")] {
        let made = sessionless(&url, key, "make", name).await;
        assert_eq!(made["protocol"], "2026-07-28", "{made}");
        let uri = made["uri"].as_str().unwrap().to_owned();
        // Their own lists are followed in the background: each reads its resource once they
        // show it, in a connection of its own.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while sessionless(&url, key, "read", &uri).await["read"] != true {
            assert!(tokio::time::Instant::now() < deadline, "{name} never read");
        }
        uris.push(uri);
    }
    assert_eq!(
        sessionless(&url, &bob, "read", &uris[0]).await["read"],
        false
    );
    assert_eq!(
        sessionless(&url, &alice, "read", &uris[1]).await["read"],
        false
    );
    let ready = ready_until(&gateway.base(), |r| open_sessions(r) == 2).await;
    assert_eq!(
        ready["dependencies"]["everything"]["detail"]["client_sessions"],
        "per_client"
    );
}
