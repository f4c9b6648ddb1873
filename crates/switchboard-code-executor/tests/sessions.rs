//! Code-interpreter sessions through the code-executor, against real sandboxes: state kept
//! across calls, files in and out, a session reachable only by its owner, closed sessions
//! refused, and every call of a session on the sandbox that holds it (also after a restart of
//! the code-executor, which has to find it again).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};
use switchboard_code_executor::{CodeExecutorService, Config, RawConfig};
use switchboard_protocol::mcp_client::{ConnectOptions, McpClient, connect};
use switchboard_runtime::{
    HttpSettings,
    auth::{AuthSettings, api_keys},
};
use switchboard_sandbox::SandboxService;
use switchboard_testkit::{Running, Spawn, Until, spawn};

struct Sandbox {
    server: Running,
    _dir: tempfile::TempDir,
}

async fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = switchboard_sandbox::Config::with_packages_dir(dir.path().join("site"));
    config.pool_size = 2;
    Sandbox {
        server: spawn::<SandboxService>(config).await,
        _dir: dir,
    }
}

/// A task state directory of this code-executor's own (one code-executor per directory; the
/// default is one per machine).
fn own_state_dir() -> Option<std::path::PathBuf> {
    Some(tempfile::tempdir().unwrap().keep())
}

async fn executor(sandboxes: &[&Sandbox], http: HttpSettings) -> Running {
    let raw = RawConfig {
        sandbox_url: Some(sandboxes.iter().map(|s| s.server.url()).collect()),
        sandbox_probe_seconds: Some(0.2),
        state_dir: own_state_dir(),
        ..Default::default()
    };
    Spawn::new()
        .until(Until::Ready)
        .service::<CodeExecutorService>(Config::from_parts(raw, http).unwrap())
        .await
}

/// An MCP client of `server` (its own MCP session), with an API key if given.
async fn client(server: &Running, key: Option<&str>) -> McpClient {
    let mut options = ConnectOptions::default();
    if let Some(key) = key {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}").parse().unwrap(),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        options = options.with_http_client(http);
    }
    connect(&server.mcp_url(), &options).await.unwrap()
}

async fn call(client: &McpClient, name: &'static str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments are an object")
    };
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(map))
        .await
        .unwrap()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured content of a call that must succeed.
async fn ok(client: &McpClient, name: &'static str, args: Value) -> Value {
    let result = call(client, name, args).await;
    assert_eq!(result.is_error, Some(false), "{name}: {}", text(&result));
    result.structured_content.unwrap()
}

/// The text of a call that must fail.
async fn refused(client: &McpClient, name: &'static str, args: Value) -> String {
    let result = call(client, name, args).await;
    assert_eq!(result.is_error, Some(true), "{name} succeeded: {result:?}");
    text(&result)
}

async fn create(client: &McpClient) -> String {
    let info = ok(client, "create_session", json!({})).await;
    info["session_id"].as_str().unwrap().to_owned()
}

/// `code` run in `session`; its stdout.
async fn run(client: &McpClient, session: &str, code: &str) -> String {
    let result = ok(
        client,
        "execute_code",
        json!({"code": code, "session_id": session}),
    )
    .await;
    result["stdout"].as_str().unwrap().to_owned()
}

fn keys(dir: &Path) -> (HttpSettings, String, String) {
    let (alice, alice_entry) = api_keys::new_key("alice");
    let (bob, bob_entry) = api_keys::new_key("bob");
    let file = dir.join("keys.toml");
    std::fs::write(&file, format!("{alice_entry}{bob_entry}")).unwrap();
    let http = HttpSettings::default().with_auth(AuthSettings::with_api_keys(&file).unwrap());
    (http, alice, bob)
}

/// Variables live on between calls of one session, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_state() {
    let sandbox = sandbox().await;
    let executor = executor(&[&sandbox], HttpSettings::default()).await;
    let client = client(&executor, None).await;

    let created = call(&client, "create_session", json!({})).await;
    assert!(text(&created).contains("session_id="), "{}", text(&created));
    let session = created.structured_content.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    run(&client, &session, "x = 41").await;
    assert_eq!(run(&client, &session, "print(x + 1)").await, "42\n");

    let one_shot = call(&client, "execute_code", json!({"code": "print(x)"})).await;
    assert_eq!(one_shot.is_error, Some(true));
    assert!(text(&one_shot).contains("NameError"), "{}", text(&one_shot));
}

/// Another MCP client (another MCP session, so another owner) cannot reach the session, nor
/// close it; its owner still can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_its_owners_only() {
    let sandbox = sandbox().await;
    let executor = executor(&[&sandbox], HttpSettings::default()).await;
    let (owner, other) = (client(&executor, None).await, client(&executor, None).await);
    let session = create(&owner).await;
    run(&owner, &session, "secret = 'mine'").await;

    let execute = json!({"code": "print(secret)", "session_id": session});
    let reply = refused(&other, "execute_code", execute).await;
    // Named, and said not to exist for this caller (the sandbox's words).
    assert!(reply.contains(&format!("no session {session}")), "{reply}");
    for tool in ["list_files", "close_session"] {
        refused(&other, tool, json!({"session_id": session})).await;
    }
    assert_eq!(run(&owner, &session, "print(secret)").await, "mine\n");
}

/// Files go in (upload_file, or `files` of a one-shot run) and come out (outputs of a run,
/// list_files, download_file); bad names are refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_in_and_out() {
    let sandbox = sandbox().await;
    let executor = executor(&[&sandbox], HttpSettings::default()).await;
    let client = client(&executor, None).await;
    let session = create(&client).await;

    let csv = "n\n1\n2\n39\n";
    let uploaded = json!({"session_id": session, "name": "data.csv", "content": csv});
    let file = ok(&client, "upload_file", uploaded).await;
    assert_eq!(file["size"], csv.len());
    let total = "import csv\nprint(sum(int(r['n']) for r in csv.DictReader(open('data.csv'))))";
    assert_eq!(run(&client, &session, total).await, "42\n");

    let write = "import os\nos.makedirs('/work/outputs', exist_ok=True)\nopen('/work/outputs/out.txt', 'w').write('written')";
    let produced = ok(
        &client,
        "execute_code",
        json!({"code": write, "session_id": session}),
    )
    .await;
    assert!(
        produced["files"].to_string().contains("out.txt"),
        "{produced}"
    );

    let listed = ok(&client, "list_files", json!({"session_id": session})).await;
    let names: Vec<&str> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(names.contains(&"data.csv"), "{listed}");
    assert!(names.contains(&"outputs/out.txt"), "{listed}");

    let download = json!({"session_id": session, "name": "outputs/out.txt"});
    let downloaded = call(&client, "download_file", download).await;
    assert_eq!(downloaded.is_error, Some(false), "{}", text(&downloaded));
    assert_eq!(text(&downloaded), "written");
    let content = downloaded.structured_content.unwrap();
    assert_eq!(
        (content["size"].clone(), content["mime_type"].clone()),
        (json!(7), json!("text/plain"))
    );

    // Bytes go in as base64 and come back the same, as base64 text; a picture comes back
    // as an image.
    let bytes =
        json!({"session_id": session, "name": "raw/blob.bin", "content_base64": "AAEC/w=="});
    assert_eq!(ok(&client, "upload_file", bytes).await["size"], 4);
    let blob = call(
        &client,
        "download_file",
        json!({"session_id": session, "name": "raw/blob.bin"}),
    )
    .await;
    assert_eq!(
        blob.structured_content.as_ref().unwrap()["content_base64"],
        "AAEC/w=="
    );
    assert!(
        text(&blob).ends_with("base64:\nAAEC/w=="),
        "{}",
        text(&blob)
    );
    let png = "import base64\nopen('dot.png', 'wb').write(base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='))";
    run(&client, &session, png).await;
    let image = call(
        &client,
        "download_file",
        json!({"session_id": session, "name": "dot.png"}),
    )
    .await;
    let shown = image.content.iter().find_map(|c| c.as_image()).unwrap();
    assert_eq!(shown.mime_type, "image/png");
    assert!(shown.data.starts_with("iVBOR"), "{}", shown.data);

    for bad in ["../escape.txt", "/etc/passwd", ""] {
        let upload = json!({"session_id": session, "name": bad, "content": "x"});
        let reply = refused(&client, "upload_file", upload).await;
        assert!(reply.contains("file name"), "{bad:?}: {reply}");
    }
    let missing = json!({"session_id": session, "name": "nope.txt"});
    refused(&client, "download_file", missing).await;

    let one_shot = json!({"code": "print(open('in.txt').read())", "files": [{"name": "in.txt", "content": "given"}]});
    assert_eq!(
        ok(&client, "execute_code", one_shot).await["stdout"],
        "given\n"
    );
}

/// A closed session is gone: running in it is an error that says so, and closing it again
/// says it had ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_session_refuses() {
    let sandbox = sandbox().await;
    let executor = executor(&[&sandbox], HttpSettings::default()).await;
    let client = client(&executor, None).await;
    let session = create(&client).await;
    let closed = ok(&client, "close_session", json!({"session_id": session})).await;
    assert_eq!(closed["closed"], true, "{closed}");

    let execute = json!({"code": "print(1)", "session_id": session});
    let reply = refused(&client, "execute_code", execute).await;
    assert!(reply.contains("not run"), "{reply}");
    refused(&client, "list_files", json!({"session_id": session})).await;
    let again = ok(&client, "close_session", json!({"session_id": session})).await;
    assert_eq!(again["closed"], false, "{again}");
}

/// The sessions of one owner on the sandbox that holds it, per `GET /sessions` there.
async fn held(sandbox: &Sandbox, owner: &str) -> Vec<String> {
    let listed: Value = reqwest::Client::new()
        .get(sandbox.server.url() + "/sessions")
        .header("x-switchboard-owner", owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .filter_map(|s| s["session_id"].as_str().map(str::to_owned))
        .collect()
}

/// With two sandboxes, sessions are spread over both (six: more than one caller may hold on
/// one sandbox, so creation moves on), and each session's calls all reach its own (one-shot
/// runs in between), each value read back where it was set; a new
/// code-executor (a restart: no routes) finds them again for the same authenticated caller,
/// and another caller still cannot reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_session_stays_on_its_sandbox() {
    let (a, b) = (sandbox().await, sandbox().await);
    let dir = tempfile::tempdir().unwrap();
    let (http, alice, bob) = keys(dir.path());
    let first = executor(&[&a, &b], http.clone()).await;
    let client = client(&first, Some(&alice)).await;

    let mut sessions = Vec::new();
    for i in 0..6 {
        let session = create(&client).await;
        run(&client, &session, &format!("v = {i}")).await;
        sessions.push(session);
    }
    let owner = r#"["api_key","alice"]"#;
    let (on_a, on_b) = (held(&a, owner).await, held(&b, owner).await);
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "not spread: {on_a:?} {on_b:?}"
    );
    assert_eq!(on_a.len() + on_b.len(), sessions.len());

    for _ in 0..3 {
        let reads = sessions.iter().map(|s| run(&client, s, "print(v)"));
        let one_shots = (0..4).map(|_| ok(&client, "execute_code", json!({"code": "print('x')"})));
        let (reads, _) = tokio::join!(
            futures::future::join_all(reads),
            futures::future::join_all(one_shots)
        );
        for (i, read) in reads.iter().enumerate() {
            assert_eq!(read, &format!("{i}\n"));
        }
    }

    first.shutdown().await.unwrap();
    let second = executor(&[&a, &b], http).await;
    let client = self::client(&second, Some(&alice)).await;
    for (i, session) in sessions.iter().enumerate() {
        assert_eq!(run(&client, session, "print(v)").await, format!("{i}\n"));
    }
    let intruder = self::client(&second, Some(&bob)).await;
    let execute = json!({"code": "print(v)", "session_id": sessions[0]});
    refused(&intruder, "execute_code", execute).await;
}

/// A task-augmented execute_code runs in the session it names, as a plain call does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_in_its_session() {
    let sandbox = sandbox().await;
    let executor = executor(&[&sandbox], HttpSettings::default()).await;
    let mcp = switchboard_testkit::raw_mcp::RawSession::open(&executor.mcp_url(), None).await;
    let created = mcp
        .ok(
            "tools/call",
            json!({"name": "create_session", "arguments": {}}),
        )
        .await;
    let session = created["structuredContent"]["session_id"].clone();
    let set =
        json!({"name": "execute_code", "arguments": {"code": "y = 6 * 7", "session_id": session}});
    assert_eq!(mcp.ok("tools/call", set).await["isError"], false);

    let task = mcp
        .start(
            "execute_code",
            json!({"code": "print(y)", "session_id": session}),
            json!({}),
        )
        .await;
    let id = task["taskId"].clone();
    let ended = mcp
        .until(&id, Duration::from_secs(60), |t| t["status"] != "working")
        .await;
    assert_eq!(ended["status"], "completed", "{ended}");
    let result = mcp.ok("tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["structuredContent"]["stdout"], "42\n", "{result}");
}
