//! The LLM client goes through an HTTP proxy: a real one, tinyproxy (Debian's
//! `tinyproxy-bin`, installed by `.ci/run`), with Basic authentication. Plain-HTTP LLMs are
//! reached with requests in absolute form carrying `Proxy-Authorization`; HTTPS ones through a
//! CONNECT tunnel authenticated the same way; wrong credentials are a clear error.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{path::PathBuf, process::Stdio, time::Duration};

use common::{Setup, stack};
use serde_json::json;
use switchboard_testkit::Reply;

/// A tinyproxy on a free loopback port, requiring `user:secret`; stopped when dropped.
struct Tinyproxy {
    port: u16,
    log: PathBuf,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = common::dead_address().await;
        let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
        let log = dir.path().join("tinyproxy.log");
        let config = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nLogFile \"{}\"\n\
                 PidFile \"{}\"\nMaxClients 20\nAllow 127.0.0.1\nBasicAuth user secret\n",
                log.display(),
                dir.path().join("tinyproxy.pid").display()
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run tinyproxy ({e}); install it: apt-get install tinyproxy-bin")
            });
        // Ready when it accepts connections (a deadline, not a clock).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut retry = tokio::time::interval(Duration::from_millis(10));
        loop {
            retry.tick().await;
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "tinyproxy did not listen on {port}"
            );
        }
        Self {
            port,
            log,
            _child: child,
            _dir: dir,
        }
    }

    fn url(&self, credentials: &str) -> String {
        format!("http://{credentials}@127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A scripted OpenAI-compatible LLM reached through the proxy at `proxy_url`, at an
/// `https://` URL when `https` (the scripted LLM itself speaks plain HTTP).
fn via_proxy(replies: Vec<Reply>, proxy_url: String, https: bool) -> Setup {
    Setup::openai(replies).tweak(move |c| {
        let llm = c.llm.clone().unwrap();
        let base_url = if https {
            llm.base_url.replacen("http://", "https://", 1)
        } else {
            llm.base_url.clone()
        };
        c.with_llm(Some(
            switchboard_middleware::LlmSettings { base_url, ..llm }.with_proxy(proxy_url),
        ))
    })
}

/// The port of the scripted LLM behind `base` (`http://127.0.0.1:PORT/v1`).
fn port_of(base: &str) -> String {
    base.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/v1")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_llm_through_an_authenticating_proxy() {
    let proxy = Tinyproxy::start().await;
    let url = proxy.url("user:secret");
    let s = stack(via_proxy(
        vec![Reply::text("hello through the proxy")],
        url,
        false,
    ))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "hello through the proxy");
    let llm_port = port_of(&s.llm().openai_base_url());
    assert!(
        proxy
            .log()
            .contains(&format!("opening connection to 127.0.0.1:{llm_port}")),
        "the proxy forwarded the request:\n{}",
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_llm_is_reached_through_a_connect_tunnel() {
    let proxy = Tinyproxy::start().await;
    let url = proxy.url("user:secret");
    // The scripted LLM speaks plain HTTP, so TLS inside the tunnel fails — after the proxy
    // accepted the credentials and opened the tunnel to the LLM's port, which is what this
    // test checks (the TLS itself is hyper-rustls's, as without a proxy).
    let s = stack(via_proxy(vec![], url, true)).await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "llm_unreachable", "{body}");
    let llm_port = port_of(&s.llm().openai_base_url());
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{llm_port}"))
            && log.contains(&format!("opening connection to 127.0.0.1:{llm_port}")),
        "the proxy opened a tunnel to the LLM:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_proxy_credentials_are_a_clear_error() {
    let proxy = Tinyproxy::start().await;
    for https in [false, true] {
        let url = proxy.url("user:wrong");
        let s = stack(via_proxy(vec![Reply::text("never")], url, https)).await;
        let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
        assert_eq!(status, 502, "https={https}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("proxy http://127.0.0.1:{}", proxy.port))
                && message.contains("credentials")
                && !message.contains("wrong"),
            "https={https}: the error names the proxy, not its password: {message}"
        );
        assert_eq!(s.llm().requests().len(), 0, "nothing reached the LLM");
    }
}
