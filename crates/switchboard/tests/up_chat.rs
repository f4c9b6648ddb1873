//! The README's first steps on the real binary: `switchboard up` brings every service up and
//! `switchboard chat "Execute: print('Hello') and tell me the time"` prints the tool calls,
//! the code output and the time (no LLM configured: the offline planner answers); `tools` and
//! `call` talk to the gateway; Ctrl-C stops everything cleanly.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use common::{BIN, client, free_base_port};

#[test]
fn up_then_chat_tools_and_call() {
    let base = free_base_port();
    let mut up = Command::new(BIN)
        .args(["up", "--base-port", &base.to_string()])
        .env_remove("LLM_BASE_URL")
        .env_remove("LLM_API_KEY")
        .env_remove("LLM_MODEL_NAME")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its log, read to the end on a thread of its own (so the pipe never fills).
    let stderr = up.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    // Read `up`'s lines until it says it is up: the ready signal.
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("switchboard is up");
        printed.push(line);
        if done {
            break;
        }
    }
    assert!(
        printed
            .last()
            .is_some_and(|l| l.starts_with("switchboard is up")),
        "up did not come up: {printed:?}"
    );
    for service in [
        "mcp-server",
        "sandbox",
        "middleware",
        "time-client",
        "code-executor",
    ] {
        assert!(
            printed
                .iter()
                .any(|l| l.starts_with(service) && l.ends_with("ready")),
            "{service} is listed: {printed:?}"
        );
    }
    let middleware = (
        "SWITCHBOARD_MIDDLEWARE_URL",
        format!("http://127.0.0.1:{}", base + 2),
    );
    let gateway = (
        "SWITCHBOARD_GATEWAY_URL",
        format!("http://127.0.0.1:{base}/mcp"),
    );

    let (ok, out, err) = client(
        &["chat", "Execute: print('Hello') and tell me the time"],
        std::slice::from_ref(&middleware),
    );
    assert!(ok, "chat failed: {err}");
    assert!(
        out.contains("[tool] execute_code {\"code\":\"print('Hello')\"} -> ok"),
        "{out}"
    );
    assert!(out.contains("[tool] get_current_time {} -> ok"), "{out}");
    assert!(out.lines().any(|l| l == "Hello"), "the code output: {out}");
    assert!(
        out.contains("The current time in UTC is 20"),
        "the time: {out}"
    );
    assert!(
        err.trim().is_empty(),
        "no log noise on a client command: {err}"
    );

    let (ok, out, err) = client(&["tools"], std::slice::from_ref(&gateway));
    assert!(ok, "{err}");
    assert!(
        out.contains("execute_code(code, ") && out.contains("get_current_time(timezone?)"),
        "{out}"
    );

    let (ok, out, err) = client(
        &["call", "get_current_time", r#"{"timezone": "Asia/Tokyo"}"#],
        std::slice::from_ref(&gateway),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("\"timezone\": \"Asia/Tokyo\"") && out.contains("+09:00"),
        "{out}"
    );
    let (ok, _, err) = client(
        &["call", "get_current_time", "[1]"],
        std::slice::from_ref(&gateway),
    );
    assert!(!ok && err.contains("must be a JSON object"), "{err}");

    // Ctrl-C: every service stops and `up` exits successfully.
    let status = Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(up.wait().unwrap().success(), "up exits cleanly on SIGINT");
    // A log a person can read: our own records, no library chatter at INFO (rmcp logged every
    // session's peer info), and a clean stop says nothing alarming (the services stop in an
    // order that lets each close its sessions with the next one).
    let log = log.join().unwrap();
    for line in log.lines() {
        assert!(
            line.contains(" switchboard"),
            "only our own records at the default level: {line}"
        );
        assert!(
            !line.contains("ERROR") && !line.contains("WARN"),
            "a clean run and stop log no warning: {line}"
        );
    }
    assert!(log.contains("SIGINT received, shutting down"), "{log}");
}
