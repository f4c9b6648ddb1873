//! The official MCP Python SDK 2.x (`mcp` from PyPI, installed by `tests/fixtures/install.sh`)
//! as a client of the gateway in both of its negotiation modes: the 2025-11-25 handshake and
//! 2026-07-28 (`server/discover`, stateless requests, `resultType` on every result), in front
//! of the reference "everything" server run as a stdio upstream. The SDK validates every
//! result it receives, so a result the gateway passes through without `resultType` fails it.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;
use switchboard_gateway::config::{StdioCommand, UpstreamConfig};

fn fixtures() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("gateway-fixtures")
}

/// Run the SDK's client script against `url` in `mode`, with `token` as its bearer credential.
async fn run_python_client(url: &str, mode: &str, token: Option<&str>) -> std::process::Output {
    let python = fixtures().join("py-stdio/bin/python");
    assert!(
        python.exists(),
        "the Python SDK is not installed; run `{INSTALL}` (scripts/test runs it)"
    );
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/py-client/client.py");
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

fn everything_stdio() -> UpstreamConfig {
    let everything = fixtures()
        .join("stdio-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let command = StdioCommand::new(
        "node",
        [everything.to_string_lossy().into_owned(), "stdio".into()],
    );
    UpstreamConfig::stdio("everything", command)
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

/// The policy through the official SDK, in both revisions: three callers with keys of their
/// own, a role matrix of (caller × tool) → seen and callable or hidden and refused with the
/// reason; REST answers the same. The matrix runs once per caller and mode.
#[tokio::test]
async fn the_policy_decides_what_each_sdk_caller_sees_and_may_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = String::new();
    let mut keys = std::collections::HashMap::new();
    for (name, groups) in [("alice", "[\"dev\"]"), ("bob", "[]"), ("carol", "[]")] {
        let (key, entry) = switchboard_runtime::auth::api_keys::new_key(name);
        entries.push_str(&format!("{entry}groups = {groups}\n"));
        keys.insert(name, key);
    }
    let keys_file = dir.path().join("keys.toml");
    std::fs::write(&keys_file, entries).unwrap();
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        r#"
[roles.everything]
upstreams = ["everything"]
[roles.echo-only]
tools = ["echo"]

[[grants]]
roles = ["everything"]
groups = ["dev"]
[[grants]]
roles = ["echo-only"]
subjects = ["bob"]
"#,
    )
    .unwrap();
    let auth = switchboard_runtime::auth::AuthSettings::with_api_keys(&keys_file).unwrap();
    let gateway = gateway(
        config(vec![everything_stdio()])
            .with_http(switchboard_runtime::HttpSettings::default().with_auth(auth))
            .with_policy(switchboard_gateway::policy::Policy::load(&policy_file).unwrap()),
    )
    .await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "get-sum")
        })
        .await;
    let url = gateway.mcp_url();
    let calls = r#"{"echo": {"message": "hi"}, "get-sum": {"a": 1, "b": 2}}"#;
    for mode in ["legacy", "auto"] {
        // caller -> (sees echo, sees get-sum, may call echo, may call get-sum)
        for (caller, matrix) in [
            ("alice", [true, true, true, true]),
            ("bob", [true, false, true, false]),
            ("carol", [false, false, false, false]),
        ] {
            let output = tokio::process::Command::new(fixtures().join("py-stdio/bin/python"))
                .arg(
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/fixtures/py-client/rbac.py"),
                )
                .args([url.as_str(), mode, keys[caller].as_str(), calls])
                .kill_on_drop(true)
                .output();
            let output = tokio::time::timeout(PATIENCE, output)
                .await
                .unwrap()
                .unwrap();
            assert!(
                output.status.success(),
                "{caller} {mode}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let report: Value = serde_json::from_slice(&output.stdout).unwrap();
            let visible: Vec<&str> = report["visible"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                visible.contains(&"echo"),
                matrix[0],
                "{caller} {mode}: {report}"
            );
            assert_eq!(
                visible.contains(&"get-sum"),
                matrix[1],
                "{caller} {mode}: {report}"
            );
            if caller == "carol" {
                assert!(visible.is_empty(), "carol has no role: {report}");
            }
            for (tool, allowed) in [("echo", matrix[2]), ("get-sum", matrix[3])] {
                let call = &report["calls"][tool];
                assert_eq!(call["ok"], allowed, "{caller} {mode} {tool}: {report}");
                if !allowed {
                    let error = call["error"].as_str().unwrap_or_default();
                    assert!(
                        error.contains("permission denied") && error.contains(caller),
                        "{caller} {mode} {tool}: the reason is given: {report}"
                    );
                }
            }
        }
    }
    // REST: the same decisions.
    let client = reqwest::Client::new();
    let base = url.trim_end_matches("/mcp");
    let listed: Value = client
        .get(format!("{base}/api/tools"))
        .bearer_auth(&keys["bob"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["echo"], "{listed}");
    let refused = client
        .post(format!("{base}/api/tools/get-sum"))
        .bearer_auth(&keys["bob"])
        .json(&serde_json::json!({"a": 1, "b": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let allowed = client
        .post(format!("{base}/api/tools/get-sum"))
        .bearer_auth(&keys["alice"])
        .json(&serde_json::json!({"a": 1, "b": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}
