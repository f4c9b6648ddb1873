//! Upstreams over HTTPS: the gateway reaches an MCP server behind TLS with a certificate of a
//! private CA once it is told to trust that CA (`[http] ca_file`), and refuses the same server
//! without it, saying why on `/ready`.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

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

/// Poll `GET /ready` until `done` holds for its body (a deadline, not a clock).
async fn ready_until(base: &str, done: impl Fn(&str) -> bool) -> String {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body = http
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting; /ready says {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_https_upstream_signed_by_the_configured_ca_is_federated() {
    let time = time_client(any_port()).await;
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, time.addr()).await;
    let gateway = gateway_in_front_of(front.url("/mcp"), Some(ca.pem_file())).await;
    let base = gateway.url();
    ready_until(&base, |body| body.contains(r#""status":"ready""#)).await;

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
    let body = ready_until(&base, |body| body.contains("certificate")).await;
    assert!(
        body.contains("UnknownIssuer") || body.contains("unknown issuer"),
        "the reason names the certificate problem: {body}"
    );
}
