//! The README's first steps on the real binary: `switchboard up` brings every service up and
//! `switchboard chat "Execute: print('Hello') and tell me the time"` prints the tool calls,
//! the code output and the time (no LLM configured: the offline planner answers); `tools` and
//! `call` talk to the gateway; Ctrl-C stops everything cleanly.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Up, client};

#[test]
fn up_then_chat_tools_and_call() {
    let up = Up::start(&[]);
    let (base, printed) = (up.base, &up.printed);
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
    let log = up.stop();
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
