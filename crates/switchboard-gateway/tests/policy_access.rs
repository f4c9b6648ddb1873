//! The access policy beyond tool names, through the official Python SDK client (2.x) with
//! bearer API keys, as the policy tests do: resources and prompts of the reference "everything"
//! server (lists filtered, reads, subscriptions, prompts and completions allowed or refused
//! with the missing permission), the code-executor's rules (a role's limit on
//! `execute_code`'s timeout, the packages `install_package` may ask for) and a per-tool rate
//! limit hit and recovered from, over MCP and REST; every refusal is an audit record.
//!
//! The code-executor's rules are tested against the TypeScript SDK fixture's own
//! `execute_code` and `install_package` tools, which answer with the arguments they got: the
//! gateway judges these tools by their upstream names and arguments only, and a real
//! code-executor would need a sandbox (and the isolation it needs from the host) to answer
//! at all, which says nothing more about the gateway's decision.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{collections::HashMap, path::Path};

use common::*;
use serde_json::{Value, json};
use switchboard_gateway::policy::Policy;
use switchboard_runtime::{
    HttpSettings,
    audit::{Audit, AuditSettings, Sink},
    auth::{AuthSettings, api_keys},
};

const DOCS_POLICY: &str = r#"
[roles.docs]
resources = ["demo://resource/static/document/*", "demo://resource/dynamic/text/*"]
prompts = ["simple-prompt", "completable-prompt"]
[roles.tools]
upstreams = ["everything"]

[[grants]]
roles = ["docs", "tools"]
groups = ["dev"]
[[grants]]
roles = ["tools"]
subjects = ["bob"]
"#;

const CODE_POLICY: &str = r#"
[roles.coder]
tools = ["execute_code", "install_package", "echo"]
install_package = ["numpy", "pandas*"]
[roles.coder.execute_code]
max_timeout_seconds = 30

[[grants]]
roles = ["coder"]
subjects = ["alice", "bob"]

[limits."echo"]
rate_per_second = 0.5
burst = 2
"#;

/// API keys for `callers` (name, groups), a policy, an audit log, and a gateway in front of
/// `upstream` with all three; the keys by name and the audit log's path.
async fn secured_gateway(
    dir: &Path,
    callers: &[(&str, &str)],
    policy: &str,
    upstream: switchboard_gateway::UpstreamConfig,
) -> (
    GatewayUnderTest,
    HashMap<String, String>,
    std::path::PathBuf,
) {
    let mut entries = String::new();
    let mut keys = HashMap::new();
    for (name, groups) in callers {
        let (key, entry) = api_keys::new_key(name);
        entries.push_str(&format!("{entry}groups = {groups}\n"));
        keys.insert(name.to_string(), key);
    }
    let keys_file = dir.join("keys.toml");
    std::fs::write(&keys_file, entries).unwrap();
    let policy_file = dir.join("policy.toml");
    std::fs::write(&policy_file, policy).unwrap();
    let audit_file = dir.join("audit.log");
    let audit = Audit::start(&AuditSettings {
        sink: Some(Sink::File {
            path: audit_file.clone(),
            max_bytes: 1 << 30,
            keep: 1,
        }),
        fail_closed: false,
    })
    .unwrap();
    let http = HttpSettings::default()
        .with_auth(AuthSettings::with_api_keys(&keys_file).unwrap())
        .with_audit(audit);
    let gateway = gateway(
        config(vec![upstream])
            .with_http(http)
            .with_policy(Policy::load(&policy_file).unwrap()),
    )
    .await;
    (gateway, keys, audit_file)
}

/// Run the SDK script with `steps`; the outcome of each.
async fn python(url: &str, mode: &str, key: &str, steps: &Value) -> Vec<Value> {
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new(installed().join("py-stdio/bin/python"))
            .arg(fixtures().join("py-client/access.py"))
            .args([url, mode, key, &steps.to_string()])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    report["steps"].as_array().unwrap().clone()
}

/// The audit log's records, once everything queued is written.
fn audit_records(gateway: &GatewayUnderTest, path: &Path) -> Vec<Value> {
    assert!(
        gateway.gateway.audit().flush(PATIENCE),
        "the audit log flushed"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn has_record(records: &[Value], who: &str, action: &str, target: &str, outcome: &str) -> bool {
    records.iter().any(|r| {
        r["identity"] == who
            && r["action"] == action
            && r["target"] == target
            && r["outcome"] == outcome
    })
}

fn denied(outcome: &Value, says: &[&str]) {
    assert_eq!(outcome["ok"], false, "{outcome}");
    let error = outcome["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("permission denied") && says.iter().all(|s| error.contains(s)),
        "{says:?}: {outcome}"
    );
}

#[tokio::test]
async fn resources_and_prompts_are_listed_and_served_only_as_the_policy_grants() {
    let dir = tempfile::tempdir().unwrap();
    let callers = [("alice", "[\"dev\"]"), ("bob", "[]")];
    let (gateway, keys, audit_file) =
        secured_gateway(dir.path(), &callers, DOCS_POLICY, everything_stdio()).await;
    gateway
        .wait_for("the everything server's resources listed", |c| {
            !c.resources.is_empty() && !c.prompts.is_empty()
        })
        .await;
    let catalog = gateway.gateway.catalog();
    let documents: Vec<String> = catalog
        .resources
        .iter()
        .map(|r| r.uri.clone())
        .filter(|uri| uri.starts_with("demo://resource/static/document/"))
        .collect();
    assert!(
        !documents.is_empty(),
        "the everything server lists documents"
    );
    let document = documents[0].as_str();
    let url = gateway.mcp_url();
    let blob = "demo://resource/dynamic/blob/{resourceId}";

    for mode in ["legacy", "auto"] {
        let mut steps = vec![
            json!({"op": "lists"}),
            json!({"op": "read", "uri": document}),
            json!({"op": "read", "uri": "demo://resource/dynamic/text/7"}),
            json!({"op": "read", "uri": "demo://resource/dynamic/blob/7"}),
            json!({"op": "prompt", "name": "simple-prompt"}),
            json!({"op": "prompt", "name": "args-prompt", "arguments": {"city": "Paris"}}),
            json!({"op": "complete", "prompt": "completable-prompt", "argument": {"name": "department", "value": "Eng"}}),
            json!({"op": "complete", "template": blob, "argument": {"name": "resourceId", "value": "1"}}),
        ];
        if mode == "legacy" {
            // resources/subscribe is gone from 2026-07-28.
            steps.push(json!({"op": "subscribe", "uri": document}));
            steps.push(json!({"op": "subscribe", "uri": "demo://resource/dynamic/blob/7"}));
        }
        let alice = python(&url, mode, &keys["alice"], &Value::from(steps.clone())).await;
        let what = format!("alice, {mode}");
        let lists = &alice[0];
        assert_eq!(lists["ok"], true, "{what}: {lists}");
        let resources = lists["resources"].as_array().unwrap();
        assert_eq!(resources.len(), documents.len(), "{what}: {lists}");
        assert_eq!(
            lists["templates"],
            json!(["demo://resource/dynamic/text/{resourceId}"]),
            "{what}"
        );
        assert_eq!(
            lists["prompts"],
            json!(["completable-prompt", "simple-prompt"]),
            "{what}"
        );
        assert!(!lists["tools"].as_array().unwrap().is_empty(), "{what}");
        assert_eq!(alice[1]["ok"], true, "{what}: {}", alice[1]);
        assert_eq!(alice[2]["ok"], true, "{what}: {}", alice[2]);
        denied(
            &alice[3],
            &["'alice'", "resource 'demo://resource/dynamic/blob/7'"],
        );
        assert_eq!(alice[4]["ok"], true, "{what}: {}", alice[4]);
        denied(&alice[5], &["prompt 'args-prompt'", "`prompts`"]);
        assert_eq!(alice[6]["values"], json!(["Engineering"]), "{what}");
        denied(&alice[7], &[&format!("resource '{blob}'")]);
        if mode == "legacy" {
            assert_eq!(alice[8]["ok"], true, "{what}: {}", alice[8]);
            denied(&alice[9], &["resource 'demo://resource/dynamic/blob/7'"]);
        }

        // bob's only role has no resources or prompts: nothing listed, everything refused,
        // whether it exists or not.
        let steps = json!([
            {"op": "lists"},
            {"op": "read", "uri": document},
            {"op": "read", "uri": "file:///secret"},
            {"op": "prompt", "name": "simple-prompt"},
        ]);
        let bob = python(&url, mode, &keys["bob"], &steps).await;
        assert_eq!(bob[0]["resources"], json!([]), "bob, {mode}: {}", bob[0]);
        assert_eq!(bob[0]["templates"], json!([]), "bob, {mode}");
        assert_eq!(bob[0]["prompts"], json!([]), "bob, {mode}");
        assert!(
            !bob[0]["tools"].as_array().unwrap().is_empty(),
            "bob, {mode}"
        );
        denied(&bob[1], &["'bob' (roles tools)", document]);
        denied(&bob[2], &["no role with resource 'file:///secret'"]);
        denied(&bob[3], &["prompt 'simple-prompt'"]);
    }

    let records = audit_records(&gateway, &audit_file);
    for (who, action, target) in [
        ("alice", "resources/read", "demo://resource/dynamic/blob/7"),
        ("alice", "prompts/get", "args-prompt"),
        ("alice", "completion/complete", blob),
        (
            "alice",
            "resources/subscribe",
            "demo://resource/dynamic/blob/7",
        ),
        ("bob", "resources/read", "file:///secret"),
        ("bob", "prompts/get", "simple-prompt"),
    ] {
        assert!(
            has_record(&records, who, action, target, "denied"),
            "{who} {action} {target} denied, in {records:?}"
        );
    }
    assert!(
        !has_record(&records, "alice", "prompts/get", "simple-prompt", "denied"),
        "only refusals are recorded"
    );
}

#[tokio::test]
async fn execute_code_limits_package_names_and_tool_rate_limits_hold_over_mcp_and_rest() {
    let ts = TsUpstream::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let callers = [("alice", "[]"), ("bob", "[]")];
    let (gateway, keys, audit_file) = secured_gateway(
        dir.path(),
        &callers,
        CODE_POLICY,
        upstream("ts", &ts.mcp_url()),
    )
    .await;
    gateway
        .wait_for("the TypeScript upstream listed", |c| {
            c.tools.iter().any(|t| t.name == "execute_code")
        })
        .await;
    let url = gateway.mcp_url();
    let code = "print(1)";
    let steps = json!([
        {"op": "call", "name": "execute_code", "arguments": {"code": code, "timeout_seconds": 10}},
        {"op": "call", "name": "execute_code", "arguments": {"code": code}},
        {"op": "call", "name": "execute_code", "arguments": {"code": code, "timeout_seconds": 120}},
        {"op": "call", "name": "install_package", "arguments": {"package": "numpy"}},
        {"op": "call", "name": "install_package", "arguments": {"package": "Pandas_Stubs==2.0"}},
        {"op": "call", "name": "install_package", "arguments": {"package": "requests"}},
        {"op": "call", "name": "echo", "arguments": {"text": "1"}},
        {"op": "call", "name": "echo", "arguments": {"text": "2"}},
        {"op": "call", "name": "echo", "arguments": {"text": "3"}},
        {"op": "call_after_retry", "name": "echo", "arguments": {"text": "4"}},
    ]);
    let alice = python(&url, "legacy", &keys["alice"], &steps).await;
    let arguments = |i: usize| -> Value {
        assert_eq!(alice[i]["ok"], true, "{}", alice[i]);
        serde_json::from_str(alice[i]["text"].as_str().unwrap()).unwrap()
    };
    assert_eq!(arguments(0)["timeout_seconds"], 10, "{}", alice[0]);
    // No timeout asked for: the role's limit is the timeout.
    assert_eq!(arguments(1)["timeout_seconds"], 30.0, "{}", alice[1]);
    // Over the limit: a tool error with the limit and the role.
    let over = alice[2]["text"].as_str().unwrap_or_default();
    assert!(
        alice[2]["ok"] == false && over.contains("at most 30 s") && over.contains("role 'coder'"),
        "{}",
        alice[2]
    );
    assert_eq!(arguments(3)["package"], "numpy");
    assert_eq!(arguments(4)["package"], "Pandas_Stubs==2.0");
    denied(&alice[5], &["package 'requests'", "`install_package`"]);
    assert_eq!(alice[6]["ok"], true, "{}", alice[6]);
    assert_eq!(alice[7]["ok"], true, "{}", alice[7]);
    let limited = alice[8]["text"].as_str().unwrap_or_default();
    assert!(
        alice[8]["ok"] == false
            && limited.contains("rate limit")
            && limited.contains("[limits.\"echo\"]")
            && limited.contains("retry after"),
        "{}",
        alice[8]
    );
    assert_eq!(alice[9]["ok"], true, "after the wait it said: {}", alice[9]);

    // REST: the same rules; over the rate limit 429 with Retry-After, and then it recovers.
    let http = reqwest::Client::new();
    let call = |tool: &str, body: Value| {
        http.post(format!("{}/api/tools/{tool}", gateway.base()))
            .bearer_auth(&keys["bob"])
            .json(&body)
            .send()
    };
    let answer = call("execute_code", json!({"code": code, "timeout_seconds": 60}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let answer = call("install_package", json!({"package": "torch"}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    for _ in 0..2 {
        let answer = call("echo", json!({"text": "x"})).await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let answer = call("echo", json!({"text": "x"})).await.unwrap();
    assert_eq!(answer.status(), 429);
    let mut wait: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    // Honour Retry-After, as a client does, until the bucket has a token again (a deadline
    // guards it): never a lockout.
    loop {
        assert!(tokio::time::Instant::now() < deadline, "still refused");
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        let answer = call("echo", json!({"text": "x"})).await.unwrap();
        if answer.status() == 200 {
            break;
        }
        assert_eq!(answer.status(), 429);
        wait = answer.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
    }

    let records = audit_records(&gateway, &audit_file);
    for (who, target, outcome) in [
        ("alice", "execute_code", "denied"),
        ("alice", "install_package", "denied"),
        ("alice", "echo", "refused"),
        ("bob", "execute_code", "denied"),
        ("bob", "install_package", "denied"),
        ("bob", "echo", "refused"),
    ] {
        assert!(
            has_record(&records, who, "tools/call", target, outcome),
            "{who} {target} {outcome}, in {records:?}"
        );
    }
}
