//! The access policy through the official SDK clients, Python (2.x, both protocol revisions)
//! and TypeScript, each sending its caller's API key as a bearer header the way its
//! documentation says: a role matrix of (caller × tool) → listed and callable, or hidden and
//! refused with the reason. REST answers the same. A delegate (the middleware's credential)
//! may name the user it acts for, and the policy then judges that user; nobody else may.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::Value;
use switchboard_gateway::policy::Policy;
use switchboard_runtime::{
    HttpSettings,
    auth::{AuthSettings, api_keys},
};

const POLICY: &str = r#"
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
"#;

/// caller -> (lists echo, lists get-sum, may call echo, may call get-sum)
const MATRIX: [(&str, [bool; 4]); 3] = [
    ("alice", [true, true, true, true]),
    ("bob", [true, false, true, false]),
    ("carol", [false, false, false, false]),
];

const CALLS: &str = r#"{"echo": {"message": "hi"}, "get-sum": {"a": 1, "b": 2}}"#;

/// Run one SDK client script; its JSON report.
async fn sdk(command: &mut tokio::process::Command, what: &str) -> Value {
    let output = tokio::time::timeout(PATIENCE, command.kill_on_drop(true).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn check(report: &Value, caller: &str, matrix: [bool; 4], what: &str) {
    let visible: Vec<&str> = report["visible"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(visible.contains(&"echo"), matrix[0], "{what}: {report}");
    assert_eq!(visible.contains(&"get-sum"), matrix[1], "{what}: {report}");
    if matrix == [false; 4] {
        assert!(visible.is_empty(), "{what}: no role, no tools: {report}");
    }
    for (tool, allowed) in [("echo", matrix[2]), ("get-sum", matrix[3])] {
        let call = &report["calls"][tool];
        assert_eq!(call["ok"], allowed, "{what} {tool}: {report}");
        if !allowed {
            let error = call["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("permission denied") && error.contains(caller),
                "{what} {tool}: the reason is given: {report}"
            );
        }
    }
}

#[tokio::test]
async fn the_policy_decides_what_each_sdk_caller_sees_and_may_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = String::new();
    let mut keys = HashMap::new();
    for (name, groups) in [("alice", "[\"dev\"]"), ("bob", "[]"), ("carol", "[]")] {
        let (key, entry) = api_keys::new_key(name);
        entries.push_str(&format!("{entry}groups = {groups}\n"));
        keys.insert(name, key);
    }
    let keys_file = dir.path().join("keys.toml");
    std::fs::write(&keys_file, entries).unwrap();
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, POLICY).unwrap();
    let auth = AuthSettings::with_api_keys(&keys_file).unwrap();
    let gateway = gateway(
        config(vec![everything_stdio()])
            .with_http(HttpSettings::default().with_auth(auth))
            .with_policy(Policy::load(&policy_file).unwrap()),
    )
    .await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "get-sum")
        })
        .await;
    let url = gateway.mcp_url();

    for (caller, matrix) in MATRIX {
        let key = keys[caller].as_str();
        for mode in ["legacy", "auto"] {
            let what = format!("Python SDK, {mode}, {caller}");
            let report = sdk(
                tokio::process::Command::new(installed().join("py-stdio/bin/python"))
                    .arg(fixtures().join("py-client/rbac.py"))
                    .args([url.as_str(), mode, key, CALLS]),
                &what,
            )
            .await;
            check(&report, caller, matrix, &what);
        }
        let what = format!("TypeScript SDK, {caller}");
        let report = sdk(
            tokio::process::Command::new("node")
                .env("NODE_PATH", node_modules())
                .arg(fixtures().join("ts-upstream/rbac-client.cjs"))
                .args([url.as_str(), key, CALLS]),
            &what,
        )
        .await;
        check(&report, caller, matrix, &what);
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
    for (caller, status) in [("bob", 403), ("alice", 200)] {
        let answer = client
            .post(format!("{base}/api/tools/get-sum"))
            .bearer_auth(&keys[caller])
            .json(&serde_json::json!({"a": 1, "b": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{caller}");
    }
}

#[tokio::test]
async fn a_delegate_acts_for_its_users_and_nobody_else_may() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = String::new();
    let mut keys = HashMap::new();
    for name in ["middleware", "bob"] {
        let (key, entry) = api_keys::new_key(name);
        entries.push_str(&entry);
        keys.insert(name, key);
    }
    let keys_file = dir.path().join("keys.toml");
    std::fs::write(&keys_file, entries).unwrap();
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, POLICY).unwrap();
    let gateway = gateway(
        config(vec![everything_stdio()])
            .with_http(
                HttpSettings::default().with_auth(AuthSettings::with_api_keys(&keys_file).unwrap()),
            )
            .with_policy(Policy::load(&policy_file).unwrap())
            .with_delegates(vec!["middle*".into()]),
    )
    .await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "get-sum")
        })
        .await;
    let url = gateway.mcp_url();
    let calls = r#"{"get-sum": {"a": 1, "b": 2}}"#;
    let run = |token: &str, user: &str| {
        let mut command = tokio::process::Command::new(installed().join("py-stdio/bin/python"));
        command.arg(fixtures().join("py-client/rbac.py")).args([
            url.as_str(),
            "legacy",
            token,
            calls,
            user,
        ]);
        command
    };
    // The middleware names alice (group dev): her role lets her.
    let alice = r#"{"subject": "alice", "groups": ["dev"]}"#;
    let report = sdk(&mut run(&keys["middleware"], alice), "for alice").await;
    assert_eq!(report["calls"]["get-sum"]["ok"], true, "{report}");
    // The middleware names bob: his role does not.
    let report = sdk(
        &mut run(&keys["middleware"], r#"{"subject": "bob"}"#),
        "for bob",
    )
    .await;
    let error = report["calls"]["get-sum"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("permission denied: 'bob'"), "{report}");
    // bob names alice to get her rights: refused.
    let report = sdk(&mut run(&keys["bob"], alice), "bob as alice").await;
    let error = report["calls"]["get-sum"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("'bob' may not act for another"), "{report}");
}
