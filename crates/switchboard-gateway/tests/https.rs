//! Upstreams over HTTPS: the gateway reaches an MCP server behind TLS with a certificate of a
//! private CA once it is told to trust that CA (`[http] ca_file`), and refuses the same server
//! without it, saying why on `/ready`.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::*;
use serde_json::json;
use switchboard_gateway::GatewayService;
use switchboard_runtime::HttpSettings;
use switchboard_testkit::{
    Spawn, Until,
    tls::{TestCa, TlsFront},
};

async fn gateway_in_front_of(
    url: String,
    ca_file: Option<std::path::PathBuf>,
) -> switchboard_testkit::Running {
    let http = match ca_file {
        Some(path) => HttpSettings::default().with_ca_file(path),
        None => HttpSettings::default(),
    };
    let config = config(vec![upstream("time", &url)]).with_http(http);
    Spawn::new()
        .until(Until::Healthy)
        .service::<GatewayService>(config)
        .await
}

#[tokio::test]
async fn an_https_upstream_signed_by_the_configured_ca_is_federated() {
    let time = time_client(any_port()).await;
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, time.addr()).await;
    let gateway = gateway_in_front_of(front.url("/mcp"), Some(ca.pem_file())).await;
    let base = gateway.url();
    ready_until(&base, |body| body["status"] == "ready").await;

    let (client, _events) = client(&format!("{base}/mcp")).await;
    let result = client
        .call_tool(params("get_current_time", json!({"timezone": "UTC"})))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(text_of(&result).contains("datetime"), "{result:?}");
}

#[tokio::test]
async fn an_https_upstream_of_an_unknown_ca_is_refused_with_the_reason() {
    let time = time_client(any_port()).await;
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, time.addr()).await;
    let gateway = gateway_in_front_of(front.url("/mcp"), None).await;
    let base = gateway.url();
    let body = ready_until(&base, |body| body.to_string().contains("certificate")).await;
    let text = body.to_string();
    assert!(
        text.contains("UnknownIssuer") || text.contains("unknown issuer"),
        "the reason names the certificate problem: {body}"
    );
}

/// An upstream behind mutual TLS with its own CA, reached with a client certificate and a
/// bearer token read from a file: the token arrives, and appears nowhere the gateway shows.
#[tokio::test]
async fn an_upstream_with_its_own_ca_client_certificate_and_token() {
    let (_time, ca, front) = mtls_time_client().await;
    let (cert, key) = ca.client_files("gateway");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "Bearer upstream-secret-0123\n").unwrap();

    let file = switchboard_runtime::config::ConfigFile::parse(
        std::path::Path::new("gateway.toml"),
        &format!(
            "[mcp-server]\nupstreams = [{{ name = \"remote\", url = \"{}\", ca_file = \"{}\", client_cert = \"{}\", client_key = \"{}\", headers = {{ Authorization = \"file:{}\" }} }}]\n",
            front.url("/mcp"),
            ca.pem_file().display(),
            cert.display(),
            key.display(),
            token.display()
        ),
    )
    .unwrap();
    let raw: switchboard_gateway::RawConfig = switchboard_runtime::config::layer(
        &switchboard_gateway::RawConfig::default(),
        Some(&file),
        "mcp-server",
    )
    .unwrap();
    let parsed = switchboard_gateway::Config::from_parts(raw, HttpSettings::default()).unwrap();
    let gateway = gateway(config(parsed.upstreams)).await;
    let base = gateway.base();
    ready_until(&base, |body| body["status"] == "ready").await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let result = client
        .call_tool(params("get_current_time", json!({"timezone": "UTC"})))
        .await
        .unwrap();
    assert!(text_of(&result).contains("datetime"), "{result:?}");
    let received = front.received().to_ascii_lowercase();
    assert!(
        received.contains("authorization: bearer upstream-secret-0123"),
        "the token reached the upstream"
    );
    let http = reqwest::Client::new();
    for path in ["/ready", "/api/tools", "/metrics", "/health"] {
        let body = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains("upstream-secret"), "{path} shows the token");
    }
}

/// Without the client certificate the same upstream refuses the gateway, and `/ready` says
/// the TLS handshake failed.
#[tokio::test]
async fn an_mtls_upstream_without_a_client_certificate_is_down_with_the_reason() {
    let (_time, ca, front) = mtls_time_client().await;
    let gateway = gateway_in_front_of(front.url("/mcp"), Some(ca.pem_file())).await;
    let body = ready_until(&gateway.url(), |body| {
        body.to_string().contains("cannot reach")
    })
    .await;
    assert_eq!(
        body["dependencies"]["time"]["detail"]["status"], "down",
        "{body}"
    );
}

/// A time-client behind a TLS front that requires a client certificate of its own CA.
async fn mtls_time_client() -> (switchboard_testkit::Running, TestCa, TlsFront) {
    let time = time_client(any_port()).await;
    let ca = TestCa::new();
    let front = TlsFront::start_with(
        &ca,
        switchboard_testkit::tls::FrontOptions { client_auth: true },
    )
    .await;
    front.forward_to(time.addr());
    (time, ca, front)
}
