//! Stdio upstreams: programs the gateway starts and speaks MCP with over stdin/stdout — the
//! reference servers nobody here wrote: `mcp-server-time` (PyPI), `server-filesystem` and
//! `server-everything` (npm), installed by `tests/fixtures/install.sh`.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_gateway::config::StdioCommand;

fn mcp_server_time() -> StdioCommand {
    let program = fixture("py-stdio/bin/mcp-server-time");
    StdioCommand::new(program.to_string_lossy(), ["--local-timezone", "UTC"])
}

/// `node <reference server> args...`.
fn node_server(package: &str, args: &[&str]) -> StdioCommand {
    let script = fixture(&format!(
        "stdio-servers/node_modules/@modelcontextprotocol/{package}/dist/index.js"
    ));
    let mut all = vec![script.to_string_lossy().into_owned()];
    all.extend(args.iter().map(|a| a.to_string()));
    StdioCommand::new("node", all)
}

async fn stdio_gateway(name: &str, command: StdioCommand, tool: &str) -> GatewayUnderTest {
    let upstream = switchboard_gateway::config::UpstreamConfig::stdio(name, command);
    let gateway = gateway(config(vec![upstream])).await;
    gateway
        .wait_for(&format!("{tool} listed"), |c| {
            c.tools.iter().any(|t| t.name == tool)
        })
        .await;
    gateway
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(marker)
                .then_some(pid)
        })
        .collect()
}

/// Poll `done` until it holds (a deadline, not a clock).
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn mcp_server_time_from_pypi_answers_through_the_gateway() {
    let gateway = stdio_gateway("time", mcp_server_time(), "get_current_time").await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let result = client
        .call_tool(params(
            "get_current_time",
            json!({"timezone": "Asia/Tokyo"}),
        ))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let text = text_of(&result);
    assert!(
        text.contains("Asia/Tokyo") && text.contains("+09:00"),
        "{text}"
    );
}

#[tokio::test]
async fn the_filesystem_server_is_restarted_when_it_dies_and_stopped_with_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello from a stdio upstream").unwrap();
    let root = dir.path().canonicalize().unwrap();
    let marker = root.to_string_lossy().into_owned();
    let gateway = stdio_gateway(
        "files",
        node_server("server-filesystem", &[&marker]),
        "read_text_file",
    )
    .await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let read = || {
        client.call_tool(params(
            "read_text_file",
            json!({"path": root.join("hello.txt").to_string_lossy()}),
        ))
    };
    let result = read().await.unwrap();
    assert!(
        text_of(&result).contains("hello from a stdio upstream"),
        "{result:?}"
    );

    // The program dies: the gateway starts it again and the same call works.
    let pids = processes_with(&marker);
    assert_eq!(pids.len(), 1, "one program runs: {pids:?}");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually("a new program", || {
        processes_with(&marker).iter().any(|pid| *pid != pids[0])
    })
    .await;
    gateway
        .wait_for("read_text_file listed again", |c| {
            c.tools.iter().any(|t| t.name == "read_text_file")
        })
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let result = read().await.unwrap();
        if text_of(&result).contains("hello from a stdio upstream") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{result:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Stopping the gateway stops the program (stdin closed, then SIGTERM, then SIGKILL).
    drop(client);
    gateway.running.shutdown().await.unwrap();
    assert!(
        processes_with(&marker).is_empty(),
        "the program stopped with the gateway"
    );
}

#[tokio::test]
async fn a_program_gets_only_the_environment_it_is_given() {
    let command =
        node_server("server-everything", &["stdio"]).with_env("GIVEN_TO_THE_SERVER", "yes");
    let gateway = stdio_gateway("everything", command, "get-env").await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let result = client
        .call_tool(params("get-env", json!({})))
        .await
        .unwrap();
    let env: Value = serde_json::from_str(&text_of(&result)).unwrap();
    assert_eq!(env["GIVEN_TO_THE_SERVER"], "yes", "{env}");
    assert!(env["PATH"].is_string(), "PATH is passed on: {env}");
    // cargo sets CARGO_MANIFEST_DIR for this test process, and so for the gateway in it.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(
        env.get("CARGO_MANIFEST_DIR").is_none(),
        "the gateway's own environment is not passed on: {env}"
    );
}

#[tokio::test]
async fn a_program_that_keeps_failing_shows_as_a_crash_loop_on_ready() {
    let command = StdioCommand::new(
        "sh",
        [
            "-c",
            "echo 'cannot start: MISSING_API_KEY is not set' >&2; exit 3",
        ],
    );
    let upstream = switchboard_gateway::config::UpstreamConfig::stdio("broken", command);
    let gateway = gateway(config(vec![upstream])).await;
    let ready = ready_until(&gateway.base(), |ready| {
        let state = &ready["dependencies"]["broken"]["detail"];
        state["consecutive_failures"].as_u64().unwrap_or_default() >= 3
            && state["error"]
                .as_str()
                .is_some_and(|e| e.contains("MISSING_API_KEY is not set"))
    })
    .await;
    assert_eq!(ready["dependencies"]["broken"]["detail"]["status"], "down");
    assert_eq!(ready["status"], "not_ready");
}

/// `completion/complete` goes to the upstream of the prompt or resource template it names.
#[tokio::test]
async fn completions_are_routed_to_the_prompts_and_templates_upstream() {
    let gateway = stdio_gateway(
        "everything",
        node_server("server-everything", &["stdio"]),
        "echo",
    )
    .await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let prompt = client
        .complete_prompt_argument("completable-prompt", "department", "Eng", None)
        .await
        .unwrap();
    assert_eq!(prompt.values, ["Engineering"]);
    let template = client
        .complete_resource_argument(
            "demo://resource/dynamic/text/{resourceId}",
            "resourceId",
            "1",
            None,
        )
        .await
        .unwrap();
    assert!(!template.values.is_empty(), "{template:?}");
    let unknown = client
        .complete_prompt_argument("no-such-prompt", "x", "", None)
        .await
        .expect_err("an unknown prompt is an error");
    assert!(unknown.to_string().contains("no-such-prompt"), "{unknown}");
}

/// An upstream's log messages reach a session that set a logging level while it has no call
/// in flight (the reference server logs every 5 s once asked to); a session that set a higher
/// level than a message's gets none of the lower ones.
#[tokio::test]
#[allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 but still served.
async fn log_messages_reach_sessions_that_set_a_level_between_calls() {
    use rmcp::model::{LoggingLevel, SetLevelRequestParams};
    let gateway = stdio_gateway(
        "everything",
        node_server("server-everything", &["stdio"]),
        "toggle-simulated-logging",
    )
    .await;
    let (client, mut events) = client(&gateway.mcp_url()).await;
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .unwrap();
    let (quiet, mut quiet_events) = client_of(&gateway).await;
    quiet
        .set_level(SetLevelRequestParams::new(LoggingLevel::Emergency))
        .await
        .unwrap();
    let started = client
        .call_tool(params("toggle-simulated-logging", json!({})))
        .await
        .unwrap();
    assert!(text_of(&started).contains("Started"), "{started:?}");
    // The first message may come while the call is in flight; the next two come 5 s apart,
    // when nothing is.
    for n in 0..3 {
        let log = next(&mut events.logs, &format!("log message {n}")).await;
        assert!(log.data.to_string().contains("message"), "{log:?}");
    }
    while let Ok(log) = quiet_events.logs.try_recv() {
        assert_eq!(log.level, LoggingLevel::Emergency, "{log:?}");
    }
}

async fn client_of(gateway: &GatewayUnderTest) -> (Client, Events) {
    client(&gateway.mcp_url()).await
}

/// `resources/subscribe` through the gateway: the subscribed session hears of updates to the
/// resource, under the URI it subscribed with; after `resources/unsubscribe`, no more.
#[tokio::test]
async fn resource_subscriptions_pass_through() {
    use rmcp::model::{SubscribeRequestParams, UnsubscribeRequestParams};
    let gateway = stdio_gateway(
        "everything",
        node_server("server-everything", &["stdio"]),
        "toggle-subscriber-updates",
    )
    .await;
    let (client, mut events) = client(&gateway.mcp_url()).await;
    let info = client.peer_info().unwrap();
    let resources = info.capabilities.resources.clone().unwrap();
    assert_eq!(
        resources.subscribe,
        Some(true),
        "the gateway offers subscriptions"
    );
    let uri = client.list_all_resources().await.unwrap()[0].uri.clone();
    #[allow(deprecated)]
    client
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    client
        .call_tool(params("toggle-subscriber-updates", json!({})))
        .await
        .unwrap();
    let update = next(&mut events.updated, "a resource update").await;
    assert_eq!(update.uri, uri);
    #[allow(deprecated)]
    client
        .unsubscribe(UnsubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
}
