//! Who is calling, on the real binary: `switchboard up` with an API keys file serves every API
//! only to holders of a key, while its own services call each other with the key made for the
//! run (the chat still runs code in the sandbox and reads the time); probes stay open; the
//! 401 points at the Protected Resource Metadata; a service on a non-loopback address without
//! authentication refuses to start and says how to fix it.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Up, client};

/// A status line and the headers and body of one plain HTTP/1.1 exchange.
fn http(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn up_with_api_keys_admits_key_holders_only_and_its_services_still_reach_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = client(&["auth", "new-key", "alice", "--groups", "dev"], &[]);
    assert!(ok, "{err}");
    let key = out.lines().next().unwrap().to_owned();
    assert!(key.starts_with("sbk_"), "{out}");
    let keys = dir.path().join("keys.toml");
    let (ok, bob_out, err) = client(&["auth", "new-key", "bob"], &[]);
    assert!(ok, "{err}");
    let bob = bob_out.lines().next().unwrap().to_owned();
    std::fs::write(
        &keys,
        format!("{}{}", &out[key.len()..], &bob_out[bob.len()..]),
    )
    .unwrap();
    // alice (group dev) may call everything, bob only read the time.
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[roles.all]\ntools = [\"*\"]\n[roles.time]\ntools = [\"get_current_time\"]\n\n[[grants]]\nroles = [\"all\"]\ngroups = [\"dev\"]\n[[grants]]\nroles = [\"time\"]\nsubjects = [\"bob\"]\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&keys).unwrap();
    assert!(
        !text.contains(&key),
        "the file holds the digest only: {text}"
    );

    let audit_log = dir.path().join("audit.jsonl");
    let up = Up::start(&[
        ("SWITCHBOARD_API_KEYS", keys.as_os_str()),
        ("SWITCHBOARD_AUDIT_LOG", audit_log.as_os_str()),
        ("MCP_SERVER_POLICY", policy.as_os_str()),
    ]);
    let base = up.base;
    let middleware = (
        "SWITCHBOARD_MIDDLEWARE_URL",
        format!("http://127.0.0.1:{}", base + 2),
    );
    let gateway = (
        "SWITCHBOARD_GATEWAY_URL",
        format!("http://127.0.0.1:{base}/mcp"),
    );
    let with_key = |mut env: Vec<(&'static str, String)>| {
        env.push(("SWITCHBOARD_TOKEN", key.clone()));
        env
    };

    // No key: the chat, the gateway and the sandbox refuse.
    let (ok, _, err) = client(
        &["chat", "Execute: print('Hello')"],
        std::slice::from_ref(&middleware),
    );
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, _, err) = client(&["tools"], std::slice::from_ref(&gateway));
    assert!(!ok, "tools without a key: {err}");
    let (ok, _, _) = client(
        &["tools"],
        &[
            gateway.clone(),
            ("SWITCHBOARD_TOKEN", "sbk_not-a-key".into()),
        ],
    );
    assert!(!ok, "a wrong key is refused");
    let answer = http(
        base + 1,
        "POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 21\r\nConnection: close\r\n\r\n{\"code\":\"print(1)\"}\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer resource_metadata=\"http://127.0.0.1/.well-known/oauth-protected-resource\""),
        "{answer}"
    );
    // Probes stay open.
    let answer = http(
        base + 1,
        "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // With the key: the whole chain works, each hop authenticated with the run's own key.
    let (ok, out, err) = client(
        &["chat", "Execute: print('Hello') and tell me the time"],
        &with_key(vec![middleware]),
    );
    assert!(ok, "chat with a key: {err}");
    assert!(out.lines().any(|l| l == "Hello"), "the code ran: {out}");
    assert!(out.contains("The current time in UTC is 20"), "{out}");
    let (ok, out, err) = client(&["tools"], &with_key(vec![gateway.clone()]));
    assert!(ok, "{err}");
    let (ok, out_call, err) = client(
        &["call", "get_current_time", r#"{"timezone": "Asia/Tokyo"}"#],
        &with_key(vec![gateway]),
    );
    assert!(ok && out_call.contains("+09:00"), "{err}");
    assert!(
        out.contains("execute_code(") && out.contains("get_current_time("),
        "{out}"
    );

    // The middleware acts for each user: the gateway's policy applies to the person.
    let tools_of = |key: &str| {
        http(
            base + 2,
            &format!(
                "GET /tools HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let alice_tools = tools_of(&key);
    assert!(
        alice_tools.contains("\"execute_code\"") && alice_tools.contains("\"get_current_time\""),
        "{alice_tools}"
    );
    let bob_tools = tools_of(&bob);
    assert!(
        bob_tools.starts_with("HTTP/1.1 200")
            && bob_tools.contains("\"count\":1")
            && bob_tools.contains("\"get_current_time\""),
        "bob sees the time tool only: {bob_tools}"
    );
    let body = r#"{"name":"execute_code","parameters":{"code":"print(1)"}}"#;
    let bob_runs = http(
        base + 2,
        &format!(
            "POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bob}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        bob_runs.starts_with("HTTP/1.1 404") && bob_runs.contains("no tool named 'execute_code'"),
        "bob cannot run code through the middleware: {bob_runs}"
    );

    // No key anywhere a person or a scraper can read: probes, metrics, error bodies.
    for port in base..base + 5 {
        for path in [
            "/health",
            "/ready",
            "/metrics",
            "/.well-known/oauth-protected-resource",
        ] {
            let answer = http(
                port,
                &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
            );
            assert!(
                !answer.contains(&key) && !answer.contains(&bob) && !answer.contains("sbk_"),
                "{port}{path} shows a key: {answer}"
            );
        }
    }
    assert!(
        !bob_runs.contains(&bob),
        "error bodies do not echo the credential"
    );

    let log = up.stop();

    // The audit log: who did what, with arguments only as digests and no credential.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |service: &str, action: &str, identity: &str, outcome: &str, target: Option<&str>| {
        records.iter().any(|r| {
            r["service"] == service
                && r["action"] == action
                && r["identity"] == identity
                && r["outcome"] == outcome
                && target.is_none_or(|t| r["target"] == t)
        })
    };
    assert!(
        has(
            "sandbox",
            "authenticate",
            "anonymous",
            "refused",
            Some("/execute")
        ),
        "{audit}"
    );
    assert!(
        has("middleware", "authenticate", "anonymous", "refused", None),
        "{audit}"
    );
    assert!(
        has(
            "mcp-server",
            "tools/call",
            "alice",
            "ok",
            Some("get_current_time")
        ),
        "{audit}"
    );
    let chat_call = records
        .iter()
        .find(|r| r["action"] == "tools/call" && r["target"] == "execute_code")
        .unwrap();
    assert_eq!(
        (
            &chat_call["identity"],
            &chat_call["method"],
            &chat_call["via"]
        ),
        (
            &serde_json::json!("alice"),
            &serde_json::json!("delegated"),
            &serde_json::json!("switchboard-up")
        ),
        "the chat's call is alice's, made by the middleware for her: {chat_call}"
    );
    assert!(
        has("sandbox", "execute", "switchboard-up", "ok", None),
        "{audit}"
    );
    let call = records
        .iter()
        .find(|r| r["identity"] == "alice" && r["action"] == "tools/call")
        .unwrap();
    assert_eq!(
        call["arguments_sha256"].as_str().unwrap().len(),
        64,
        "{call}"
    );
    assert!(call["duration_ms"].as_f64().is_some(), "{call}");
    assert!(
        !audit.contains("Asia/Tokyo") && !audit.contains("print("),
        "digests only: {audit}"
    );
    assert!(!audit.contains(&key), "no credential in the audit log");
    assert!(
        log.contains("request refused") && log.contains("unknown API key"),
        "refusals are logged with their reason: {log}"
    );
    assert!(
        !log.contains(&key) && !log.contains(&bob) && !log.contains("sbk_"),
        "no key ever reaches the log"
    );
}

#[test]
fn a_service_beyond_loopback_without_authentication_refuses_to_start() {
    let (ok, _, err) = client(&["time-client", "--listen", "0.0.0.0:0"], &[]);
    assert!(!ok, "refused");
    let line = err.lines().find(|l| l.starts_with("error")).unwrap_or("");
    assert!(
        line.contains("without authentication")
            && line.contains("--api-keys")
            && line.contains("--allow-unauthenticated"),
        "{err}"
    );
    let (ok, _, err) = client(
        &[
            "time-client",
            "--listen",
            "0.0.0.0:0",
            "--jwks-url",
            "http://127.0.0.1:9/jwks",
        ],
        &[],
    );
    assert!(!ok && err.contains("go together"), "{err}");
}
