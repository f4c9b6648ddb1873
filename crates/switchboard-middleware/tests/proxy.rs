//! The LLM client over HTTPS and through proxies: real ones, tinyproxy (Debian's
//! `tinyproxy-bin`) with Basic authentication and microsocks (SOCKS5 with a user and
//! password), both installed by `scripts/test`. Plain-HTTP LLMs are reached with requests in
//! absolute form carrying `Proxy-Authorization`; HTTPS ones (a TLS front with a certificate of
//! a CA made by the test) through a CONNECT tunnel or a SOCKS5 connection, end to end; wrong
//! credentials and an untrusted certificate are clear errors.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{path::PathBuf, process::Stdio, time::Duration};

use common::{Setup, stack};
use serde_json::json;
use switchboard_testkit::{
    Reply,
    tls::{TestCa, TlsFront},
};

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
        listening("tinyproxy", port).await;
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

/// Wait until `port` accepts connections (a deadline, not a clock).
async fn listening(what: &str, port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut retry = tokio::time::interval(Duration::from_millis(10));
    loop {
        retry.tick().await;
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not listen on {port}"
        );
    }
}

/// microsocks, a SOCKS5 proxy, on a free loopback port, requiring `user:secret`; stopped
/// when dropped.
struct Microsocks {
    port: u16,
    _child: tokio::process::Child,
}

impl Microsocks {
    async fn start() -> Self {
        let address = common::dead_address().await;
        let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
        let child = tokio::process::Command::new("microsocks")
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-u", "user", "-P", "secret"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run microsocks ({e}); install it: apt-get install microsocks")
            });
        listening("microsocks", port).await;
        Self {
            port,
            _child: child,
        }
    }

    fn url(&self, credentials: &str) -> String {
        format!("socks5h://{credentials}@127.0.0.1:{}", self.port)
    }
}

/// A scripted OpenAI-compatible LLM at an `https://` URL: `front` terminates TLS with a
/// certificate of `ca` and forwards to it. `trust` gives the client the CA file; `proxy`, a
/// proxy URL.
fn over_tls(
    replies: Vec<Reply>,
    front: &TlsFront,
    ca: &TestCa,
    trust: bool,
    proxy: Option<String>,
) -> Setup {
    let https = front.url("/v1");
    let backend = front_backend(front);
    let ca_file = ca.pem_file();
    Setup::openai(replies).tweak(move |c| {
        let llm = c.llm.clone().unwrap();
        let port: u16 = port_of(&llm.base_url).parse().unwrap();
        backend(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        let mut llm = switchboard_middleware::LlmSettings {
            base_url: https,
            ..llm
        };
        if trust {
            llm = llm.with_ca_file(ca_file);
        }
        if let Some(proxy) = proxy {
            llm = llm.with_proxy(proxy);
        }
        c.with_llm(Some(llm))
    })
}

/// Names the front's backend once the scripted LLM has its port.
fn front_backend(front: &TlsFront) -> impl FnOnce(std::net::SocketAddr) + Send + 'static {
    let front = front.handle();
    move |addr| front.forward_to(addr)
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
    let ca = TestCa::new();
    let front = TlsFront::start_unconnected(&ca).await;
    let setup = over_tls(
        vec![Reply::text("hello through the tunnel")],
        &front,
        &ca,
        true,
        Some(proxy.url("user:secret")),
    );
    let s = stack(setup).await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "hello through the tunnel");
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{}", front.addr.port())),
        "the proxy opened a tunnel to the LLM's TLS port:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_llm_of_a_private_ca_is_trusted_only_with_the_ca_file() {
    let ca = TestCa::new();
    let front = TlsFront::start_unconnected(&ca).await;
    let s = stack(over_tls(
        vec![Reply::text("hello over TLS")],
        &front,
        &ca,
        true,
        None,
    ))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "hello over TLS");

    let front = TlsFront::start_unconnected(&ca).await;
    let s = stack(over_tls(
        vec![Reply::text("never")],
        &front,
        &ca,
        false,
        None,
    ))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("certificate"),
        "the error says the certificate is not trusted: {message}"
    );
    assert_eq!(s.llm().requests().len(), 0, "nothing reached the LLM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_llm_through_an_authenticating_socks5_proxy() {
    let socks = Microsocks::start().await;
    let ca = TestCa::new();
    let front = TlsFront::start_unconnected(&ca).await;
    let s = stack(over_tls(
        vec![Reply::text("hello through SOCKS")],
        &front,
        &ca,
        true,
        Some(socks.url("user:secret")),
    ))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "hello through SOCKS");

    let front = TlsFront::start_unconnected(&ca).await;
    let s = stack(over_tls(
        vec![Reply::text("never")],
        &front,
        &ca,
        true,
        Some(socks.url("user:wrong")),
    ))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("proxy socks5h://127.0.0.1:{}", socks.port))
            && !message.contains("wrong"),
        "the error names the proxy, not its password: {message}"
    );
    // The proxy refused the connection: the LLM never saw a request (so the request that
    // succeeded above did go through the proxy, which checked its credentials).
    assert_eq!(s.llm().requests().len(), 0);
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
