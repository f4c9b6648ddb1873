//! The official MCP Python SDK 2.x (`mcp` from PyPI, installed by `tests/fixtures/install.sh`)
//! as a client of the gateway in both of its negotiation modes: the 2025-11-25 handshake and
//! 2026-07-28 (`server/discover`, stateless requests, `resultType` on every result), in front
//! of the reference "everything" server run as a stdio upstream. The SDK validates every
//! result it receives, so a result the gateway passes through without `resultType` fails it.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::*;
use serde_json::Value;

/// Run the SDK's client script against `url` in `mode`, with `token` as its bearer credential.
async fn run_python_client(url: &str, mode: &str, token: Option<&str>) -> std::process::Output {
    let python = installed().join("py-stdio/bin/python");
    assert!(
        python.exists(),
        "the Python SDK is not installed; run `{INSTALL}` (scripts/test runs it)"
    );
    let script = fixtures().join("py-client/client.py");
    tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new(python)
            .arg(script)
            .args([url, mode])
            .args(token)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished")
    .unwrap()
}

/// Run the SDK's client script against `url` in `mode`; its JSON report.
async fn python_client(url: &str, mode: &str) -> Value {
    python_client_with(url, mode, None).await
}

async fn python_client_with(url: &str, mode: &str, token: Option<&str>) -> Value {
    let output = run_python_client(url, mode, token).await;
    assert!(
        output.status.success(),
        "the Python client in {mode} mode failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn the_python_sdk_calls_reads_and_gets_prompts_in_both_revisions() {
    let gateway = gateway(config(vec![everything_stdio()])).await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let url = gateway.mcp_url();
    let legacy = python_client(&url, "legacy").await;
    let modern = python_client(&url, "auto").await;
    assert_eq!(legacy["protocol"], "2025-11-25", "{legacy}");
    assert_eq!(modern["protocol"], "2026-07-28", "{modern}");
    for report in [&legacy, &modern] {
        assert_eq!(report["echo"][0], "Echo: hello from python", "{report}");
        assert_eq!(report["echo_is_error"], false);
        assert!(
            report["resource_contents"].as_u64().unwrap() >= 1,
            "{report}"
        );
        assert!(report["prompt_messages"].as_u64().unwrap() >= 1, "{report}");
    }
    // The same server, the same answers, whichever revision the client speaks.
    for field in ["tools", "echo", "resource", "prompt"] {
        assert_eq!(legacy[field], modern[field], "{field}");
    }
}

/// With API keys on, the SDK's client sends its key as a bearer header (configured the way the
/// SDK documents) and works in both revisions; without a key, or with a wrong one, the gateway
/// answers 401 before any MCP happens and the SDK fails (it reports "Server returned an error
/// response"; the 401 and its challenge are checked on the wire).
#[tokio::test]
async fn the_python_sdk_gets_in_with_a_key_and_not_without() {
    let dir = tempfile::tempdir().unwrap();
    let (key, entry) = switchboard_runtime::auth::api_keys::new_key("python");
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, entry).unwrap();
    let auth = switchboard_runtime::auth::AuthSettings::with_api_keys(&keys).unwrap();
    let gateway = gateway(
        config(vec![everything_stdio()])
            .with_http(switchboard_runtime::HttpSettings::default().with_auth(auth)),
    )
    .await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let url = gateway.mcp_url();
    for mode in ["legacy", "auto"] {
        let report = python_client_with(&url, mode, Some(&key)).await;
        assert_eq!(report["echo"][0], "Echo: hello from python", "{report}");
        for token in [None, Some("sbk_wrong")] {
            let refused = run_python_client(&url, mode, token).await;
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(
                !refused.status.success() && refused.stdout.is_empty(),
                "{mode} with {token:?}: {stderr}"
            );
        }
    }
    let answer = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer resource_metadata=\"http://127.0.0.1:")
            && challenge.contains("/.well-known/oauth-protected-resource\""),
        "{challenge}"
    );
}
