//! `execute_code` as MCP 2025-11-25 tasks, against a real sandbox, over raw JSON-RPC: a 30 s
//! program started, polled and cancelled; a result fetched after the code-executor restarted
//! (and a task cut short by the restart failed); a full queue refusing with a retry estimate;
//! an expired result deleted; another caller (or user) seeing none of it.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use switchboard_code_executor::{CodeExecutorService, Config, RawConfig};
use switchboard_runtime::{
    HttpSettings,
    auth::{AuthSettings, api_keys},
};
use switchboard_sandbox::SandboxService;
use switchboard_testkit::raw_mcp::{RawSession as Session, running, terminal};
use switchboard_testkit::{Running, Spawn, Until, spawn};

const PATIENCE: Duration = Duration::from_secs(60);
const LONG: &str = "import time\ntime.sleep(30)\nprint('woke')";

async fn sandbox() -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = switchboard_sandbox::Config::with_packages_dir(dir.path().join("site"));
    config.pool_size = 2;
    (spawn::<SandboxService>(config).await, dir)
}

/// A code-executor for `sandbox` keeping its tasks in `state`.
async fn executor(sandbox: &Running, state: &Path, http: HttpSettings, raw: RawConfig) -> Running {
    let raw = RawConfig {
        sandbox_url: Some(vec![sandbox.url()]),
        state_dir: Some(state.to_owned()),
        ..raw
    };
    let mut config = Config::from_parts(raw, http).unwrap();
    config.tasks.page_size = 2;
    Spawn::new()
        .until(Until::Ready)
        .service::<CodeExecutorService>(config)
        .await
}

fn long() -> Value {
    json!({"code": LONG, "timeout_seconds": 45})
}

/// A 30 s program as a task: answered at once, `working` while it runs, `cancelled` by
/// `tasks/cancel` (with a notification), and `tasks/result` then says it was cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_task_is_started_polled_and_cancelled() {
    let (sandbox, _dir) = sandbox().await;
    let state = tempfile::tempdir().unwrap();
    let executor = executor(
        &sandbox,
        &state.path().join("tasks"),
        HttpSettings::default(),
        RawConfig::default(),
    )
    .await;
    let client = Session::open(&executor.mcp_url(), None).await;
    assert_eq!(
        client.initialize["capabilities"]["tasks"],
        json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}})
    );
    let tools = client.ok("tools/list", json!({})).await;
    // The long-running tools may run as tasks; the quick session and file tools may not.
    for tool in tools["tools"].as_array().unwrap() {
        let may = matches!(
            tool["name"].as_str(),
            Some("execute_code" | "install_package")
        );
        let support = &tool["execution"]["taskSupport"];
        assert!(
            (may && support == "optional") || (!may && support.is_null()),
            "{tool}"
        );
    }
    let mut listener = client.listen().await;

    let asked = Instant::now();
    let task = client
        .start("execute_code", long(), json!({"ttl": 60_000}))
        .await;
    assert!(asked.elapsed() < Duration::from_secs(5), "answered at once");
    assert_eq!(task["ttl"], 60_000);
    assert!(task["pollInterval"].as_u64().is_some() && task["createdAt"].is_string());
    let id = task["taskId"].clone();

    let polled = client.until(&id, PATIENCE, running).await;
    assert_eq!(polled["status"], "working");
    let listed = client.ok("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"][0]["taskId"], id, "{listed}");

    let cancelled = client.ok("tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let message = cancelled["statusMessage"].as_str().unwrap();
    assert!(
        message.contains("the sandbox kills a program whose caller went away"),
        "{message}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "cancelled before the program ended"
    );
    assert_eq!(
        client.ok("tasks/get", json!({"taskId": id})).await["status"],
        "cancelled"
    );
    let result = client.error("tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["code"], -32600, "{result}");
    assert!(
        result["message"].as_str().unwrap().contains("cancelled"),
        "{result}"
    );
    let again = client.error("tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(again["code"], -32602);
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("terminal status 'cancelled'")
    );
    let told = listener
        .next("notifications/tasks/status", PATIENCE, |p| {
            p["taskId"] == id
        })
        .await;
    assert_eq!(told["status"], "cancelled");
    let metrics = reqwest::get(format!("{}/metrics", executor.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mcp_task_outcomes_total{") && metrics.contains("outcome=\"cancelled\""),
        "{metrics}"
    );
    // The sandbox killed the program when the cancelled request went away, long before its
    // 30 s: the run is counted as abandoned.
    switchboard_testkit::until_contains(
        &format!("{}/metrics", sandbox.url()),
        "outcome=\"abandoned\"",
        PATIENCE,
    )
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the program was killed before its own end"
    );

    // A plain call still answers with its result, and a task of an unknown tool is refused.
    let plain = client
        .ok(
            "tools/call",
            json!({"name": "execute_code", "arguments": {"code": "print(6*7)"}}),
        )
        .await;
    assert_eq!(plain["structuredContent"]["stdout"], "42\n", "{plain}");
    let unknown = client
        .error(
            "tools/call",
            json!({"name": "nope", "arguments": {}, "task": {}}),
        )
        .await;
    assert_eq!(unknown["code"], -32602);
}

fn keys(dir: &Path) -> (PathBuf, String, String) {
    let (alice, alice_entry) = api_keys::new_key("alice");
    let (bob, bob_entry) = api_keys::new_key("bob");
    let file = dir.join("keys.toml");
    std::fs::write(&file, format!("{alice_entry}{bob_entry}")).unwrap();
    (file, alice, bob)
}

/// A completed task's result is fetched from a new code-executor on the same state directory;
/// a task cut short by the restart is `failed`, saying so; another caller sees neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_outlives_a_restart_and_stays_its_owners() {
    let (sandbox, _dir) = sandbox().await;
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("tasks");
    let (keys, alice, bob) = keys(state.path());
    let http = || HttpSettings::default().with_auth(AuthSettings::with_api_keys(&keys).unwrap());

    let first = executor(&sandbox, &dir, http(), RawConfig::default()).await;
    let client = Session::open(&first.mcp_url(), Some(&alice)).await;
    let done = client
        .start(
            "execute_code",
            json!({"code": "print('kept across restarts')"}),
            json!({}),
        )
        .await;
    let done_id = done["taskId"].clone();
    assert_eq!(done["ttl"], 3_600_000, "the default ttl");
    let ended = client.until(&done_id, PATIENCE, terminal).await;
    assert_eq!(ended["status"], "completed", "{ended}");
    let cut = client
        .start("execute_code", long(), json!({"ttl": 600_000}))
        .await;
    let cut_id = cut["taskId"].clone();
    client.until(&cut_id, PATIENCE, running).await;
    first.shutdown().await.unwrap();

    let second = executor(&sandbox, &dir, http(), RawConfig::default()).await;
    let client = Session::open(&second.mcp_url(), Some(&alice)).await;
    assert_eq!(
        client.ok("tasks/get", json!({"taskId": done_id})).await["status"],
        "completed"
    );
    let result = client.ok("tasks/result", json!({"taskId": done_id})).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(
        result["structuredContent"]["stdout"],
        "kept across restarts\n"
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        done_id
    );

    let lost = client.ok("tasks/get", json!({"taskId": cut_id})).await;
    assert_eq!(lost["status"], "failed", "{lost}");
    assert!(
        lost["statusMessage"]
            .as_str()
            .unwrap()
            .contains("restarted while this task ran")
    );
    let lost = client.ok("tasks/result", json!({"taskId": cut_id})).await;
    assert_eq!(lost["isError"], true, "{lost}");

    let listed = client.ok("tasks/list", json!({})).await;
    let ids: Vec<&Value> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["taskId"])
        .collect();
    assert_eq!(ids, [&done_id, &cut_id], "{listed}");

    let other = Session::open(&second.mcp_url(), Some(&bob)).await;
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let error = other.error(method, json!({"taskId": done_id})).await;
        assert_eq!(error["code"], -32602, "{method}: {error}");
    }
    assert_eq!(other.ok("tasks/list", json!({})).await["tasks"], json!([]));

    // A caller acting for a user (as the gateway does) narrows its tasks to that user's.
    let carol = json!({"io.switchboard/on-behalf-of": {"subject": "carol"}});
    let hers = client
        .ok(
            "tools/call",
            json!({"name": "execute_code", "arguments": {"code": "print(1)"}, "task": {}, "_meta": carol}),
        )
        .await;
    let id = &hers["task"]["taskId"];
    assert_eq!(
        client.error("tasks/get", json!({"taskId": id})).await["code"],
        -32602
    );
    let seen = client
        .ok("tasks/get", json!({"taskId": id, "_meta": carol}))
        .await;
    assert_eq!(seen["taskId"], *id);
}

/// With room for two tasks (one running at a time), a third is refused with "queue full,
/// retry after N s"; cancelling a waiting one (which never ran) makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_with_a_retry_estimate() {
    let (sandbox, _dir) = sandbox().await;
    let state = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        max_tasks: Some(2),
        max_running_tasks: Some(1),
        ..RawConfig::default()
    };
    let executor = executor(
        &sandbox,
        &state.path().join("tasks"),
        HttpSettings::default(),
        raw,
    )
    .await;
    let client = Session::open(&executor.mcp_url(), None).await;
    let first = client.start("execute_code", long(), json!({})).await;
    let second = client.start("execute_code", long(), json!({})).await;
    client.until(&first["taskId"], PATIENCE, running).await;
    let waiting = client
        .ok("tasks/get", json!({"taskId": second["taskId"]}))
        .await;
    assert_eq!(waiting["statusMessage"], "Waiting to run.", "{waiting}");

    let refused = client
        .error(
            "tools/call",
            json!({"name": "execute_code", "arguments": long(), "task": {}}),
        )
        .await;
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("queue full") && message.contains("retry after"),
        "{message}"
    );
    let wait = refused["data"]["retryAfterSeconds"].as_u64().unwrap();
    assert!((1..=10).contains(&wait), "{refused}");

    let cancelled = client
        .ok("tasks/cancel", json!({"taskId": second["taskId"]}))
        .await;
    assert_eq!(
        cancelled["statusMessage"],
        "Cancelled before it started: nothing was run."
    );
    let third = client.start("execute_code", long(), json!({})).await;

    // Three tasks, two to a page.
    let page = client.ok("tasks/list", json!({})).await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 2, "{page}");
    let cursor = page["nextCursor"].clone();
    let rest = client.ok("tasks/list", json!({"cursor": cursor})).await;
    assert_eq!(rest["tasks"][0]["taskId"], third["taskId"], "{rest}");
    assert!(rest.get("nextCursor").is_none(), "{rest}");
    let bad = client
        .error("tasks/list", json!({"cursor": "not ours"}))
        .await;
    assert_eq!(bad["code"], -32602);
    for task in [&first, &third] {
        client
            .ok("tasks/cancel", json!({"taskId": task["taskId"]}))
            .await;
    }
}

/// A result is deleted, file and all, once its ttl is up. (And a tool error ends a task
/// `failed`, its result the tool's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_result_is_deleted() {
    let (sandbox, _dir) = sandbox().await;
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("tasks");
    let executor = executor(
        &sandbox,
        &dir,
        HttpSettings::default(),
        RawConfig::default(),
    )
    .await;
    let client = Session::open(&executor.mcp_url(), None).await;
    let task = client
        .start(
            "execute_code",
            json!({"code": "print(1)"}),
            json!({"ttl": 2000}),
        )
        .await;
    let id = task["taskId"].clone();
    let file = dir.join(format!("{}.json", id.as_str().unwrap()));
    let ended = client.until(&id, PATIENCE, terminal).await;
    assert_eq!(ended["status"], "completed");
    assert!(file.exists(), "kept while its ttl runs");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = client.send("tasks/get", json!({"taskId": id})).await;
        if answer["error"]["code"] == -32602 && !file.exists() {
            break;
        }
        assert!(Instant::now() < deadline, "still there: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        client.error("tasks/result", json!({"taskId": id})).await["code"],
        -32602
    );

    // tasks/result waits for the end.
    let slow = client
        .start(
            "execute_code",
            json!({"code": "import time\ntime.sleep(1)\nprint('late')"}),
            json!({}),
        )
        .await;
    let late = client
        .ok("tasks/result", json!({"taskId": slow["taskId"]}))
        .await;
    assert_eq!(late["structuredContent"]["stdout"], "late\n", "{late}");

    let refused = client
        .start(
            "install_package",
            json!({"package": "not a name"}),
            json!({}),
        )
        .await;
    let ended = client.until(&refused["taskId"], PATIENCE, terminal).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let result = client
        .ok("tasks/result", json!({"taskId": refused["taskId"]}))
        .await;
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(
        result["structuredContent"]["status"], "rejected",
        "{result}"
    );
}

/// Two code-executors given one state directory: the second (after waiting for the first to
/// let go) offers no tasks — no capability, no `taskSupport` — while it runs code plainly;
/// the first keeps its tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_executor_on_one_directory_offers_no_tasks() {
    let (sandbox, _dir) = sandbox().await;
    let state = tempfile::tempdir().unwrap();
    let tasks = state.path().join("tasks");
    let first = executor(
        &sandbox,
        &tasks,
        HttpSettings::default(),
        RawConfig::default(),
    )
    .await;
    let second = executor(
        &sandbox,
        &tasks,
        HttpSettings::default(),
        RawConfig::default(),
    )
    .await;

    let client = Session::open(&second.mcp_url(), None).await;
    assert!(client.initialize["capabilities"].get("tasks").is_none());
    let tools = client.ok("tools/list", json!({})).await;
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|tool| tool.get("execution").is_none()),
        "{tools}"
    );
    let plain = client
        .ok(
            "tools/call",
            json!({"name": "execute_code", "arguments": {"code": "print(7)"}}),
        )
        .await;
    assert_eq!(plain["structuredContent"]["stdout"], "7\n", "{plain}");

    let first = Session::open(&first.mcp_url(), None).await;
    assert!(first.initialize["capabilities"].get("tasks").is_some());
}
