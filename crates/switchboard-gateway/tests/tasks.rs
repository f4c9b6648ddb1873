//! MCP 2025-11-25 tasks through the gateway, to a real code-executor and sandbox (the
//! `switchboard` binary, as processes: services never link each other): a 30 s program
//! started as a task, polled, listed and cancelled, with its status notification; a short one
//! whose result comes back under the gateway's task id; another caller, a caller without a
//! role and made-up ids and cursors reaching nothing.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Stdio, time::Duration};

use common::*;
use serde_json::json;
use switchboard_gateway::policy::Policy;
use switchboard_runtime::{
    HttpSettings,
    auth::{AuthSettings, api_keys},
};
use switchboard_testkit::raw_mcp::{RawSession, running, terminal};
use tokio::io::{AsyncBufReadExt, BufReader};

const LONG: &str = "import time\ntime.sleep(30)\nprint('woke')";

/// Alice and Bob may call the code-executor's tools; Carol has no role.
const POLICY: &str = r#"
[roles.coder]
upstreams = ["code"]
[[grants]]
roles = ["coder"]
subjects = ["alice", "bob"]
"#;

/// The `switchboard` binary (`cargo build -p switchboard` builds it).
fn switchboard() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let binary = target.join("debug/switchboard");
    assert!(
        binary.is_file(),
        "{} is missing; run `cargo build -p switchboard` first",
        binary.display()
    );
    binary
}

/// `switchboard <args>` on port 0, and the address it says it serves at.
async fn service(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(switchboard())
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, rest)) = line.split_once(" address=") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("`switchboard {}` exited before serving", args.join(" "));
    })
    .await
    .expect("the service said where it serves in time");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_of_the_code_executor_are_started_polled_cancelled_and_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let site = dir.path().join("site");
    let (_sandbox, sandbox) = service(&[
        "sandbox",
        "--packages-dir",
        site.to_str().unwrap(),
        "--pool-size",
        "2",
    ])
    .await;
    let state = dir.path().join("tasks");
    let (_executor, executor) = service(&[
        "code-executor",
        "--sandbox-url",
        &format!("http://{sandbox}"),
        "--state-dir",
        state.to_str().unwrap(),
    ])
    .await;

    let mut keys = std::collections::HashMap::new();
    let mut entries = String::new();
    for name in ["alice", "bob", "carol"] {
        let (key, entry) = api_keys::new_key(name);
        entries.push_str(&entry);
        keys.insert(name, key);
    }
    std::fs::write(dir.path().join("keys.toml"), entries).unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let auth = AuthSettings::with_api_keys(&dir.path().join("keys.toml")).unwrap();
    let gateway = gateway(
        config(vec![upstream("code", &format!("http://{executor}/mcp"))])
            .with_http(HttpSettings::default().with_auth(auth))
            .with_policy(Policy::load(&dir.path().join("policy.toml")).unwrap()),
    )
    .await;
    gateway
        .wait_for("execute_code listed as a task tool", |c| {
            c.tasks.is_some() && c.tool_routes.contains_key("execute_code")
        })
        .await;
    let url = gateway.mcp_url();

    // The gateway declares what the code-executor declares, and keeps each tool's execution.
    let alice = RawSession::open(&url, Some(&keys["alice"])).await;
    assert_eq!(
        alice.initialize["capabilities"]["tasks"],
        json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}})
    );
    let tools = alice.ok("tools/list", json!({})).await;
    let execute = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "execute_code")
        .unwrap();
    assert_eq!(execute["execution"], json!({"taskSupport": "optional"}));
    let mut listener = alice.listen().await;

    // A 30 s program: answered at once with a task, working, listed, cancelled, announced.
    let started = std::time::Instant::now();
    let created = alice
        .ok(
            "tools/call",
            json!({"name": "execute_code", "arguments": {"code": LONG, "timeout_seconds": 45}, "task": {"ttl": 60_000}}),
        )
        .await;
    assert_eq!(created["task"]["status"], "working", "{created}");
    let long = created["task"]["taskId"].clone();
    assert!(
        long.as_str().unwrap().contains('.'),
        "the gateway's id: {long}"
    );
    let polled = alice.until(&long, PATIENCE, running).await;
    assert_eq!(polled["status"], "working");
    assert_eq!(polled["taskId"], long);
    let listed = alice.ok("tasks/list", json!({})).await;
    assert!(
        listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["taskId"] == long),
        "{listed}"
    );
    let cancelled = alice.ok("tasks/cancel", json!({"taskId": long})).await;
    assert_eq!(
        (&cancelled["status"], &cancelled["taskId"]),
        (&json!("cancelled"), &long)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "cancelled before the program ended"
    );
    let notice = listener
        .next("notifications/tasks/status", PATIENCE, |p| {
            p["taskId"] == long
        })
        .await;
    assert_eq!(notice["status"], "cancelled");
    assert_eq!(
        alice.ok("tasks/get", json!({"taskId": long})).await["status"],
        "cancelled"
    );

    // A short program: its result through the gateway, tied to the gateway's task id.
    let created = alice
        .ok(
            "tools/call",
            json!({"name": "execute_code", "arguments": {"code": "print(6 * 7)"}, "task": {}}),
        )
        .await;
    let short = created["task"]["taskId"].clone();
    let done = alice.until(&short, PATIENCE, terminal).await;
    assert_eq!(done["status"], "completed", "{done}");
    let result = alice.ok("tasks/result", json!({"taskId": short})).await;
    assert!(result.to_string().contains("42"), "{result}");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        short
    );

    // Bob's session and identity reach none of Alice's tasks; Carol may not use tasks at all.
    let bob = RawSession::open(&url, Some(&keys["bob"])).await;
    let error = bob.error("tasks/get", json!({"taskId": short})).await;
    assert_eq!(error["code"], -32602, "{error}");
    let bobs = bob.ok("tasks/list", json!({})).await;
    assert_eq!(bobs["tasks"], json!([]), "{bobs}");
    let carol = RawSession::open(&url, Some(&keys["carol"])).await;
    let error = carol.error("tasks/result", json!({"taskId": short})).await;
    assert_eq!(error["code"], -32602);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("permission denied"),
        "{error}"
    );

    // Ids and cursors the gateway never handed out.
    for bogus in [json!("no-such-task"), json!("0123456789ab.x"), json!(7)] {
        let error = alice.error("tasks/get", json!({"taskId": bogus})).await;
        assert_eq!(error["code"], -32602, "{bogus}: {error}");
    }
    let error = alice
        .error("tasks/get", json!({"taskId": "no-such-task"}))
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a task id this gateway handed out"),
        "{error}"
    );
    let error = alice.error("tasks/list", json!({"cursor": "bogus"})).await;
    assert_eq!(error["code"], -32602, "{error}");
}
