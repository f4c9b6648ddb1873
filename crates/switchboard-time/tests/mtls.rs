//! The time-client serving HTTPS with client certificates as identities (mutual TLS): a
//! certificate of the configured CA lets its holder in; no certificate reaches the probes but
//! not the API (401); an expired certificate or one of another CA fails the handshake.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use switchboard_protocol::mcp_client::{ConnectOptions, connect};
use switchboard_runtime::{HttpSettings, Service, tls::TlsSettings};
use switchboard_testkit::tls::TestCa;
use switchboard_time::{Config, TimeService};
use tokio_util::sync::CancellationToken;

/// A client trusting `ca`, showing the certificate in `files` if any.
fn client(ca: &TestCa, files: Option<(std::path::PathBuf, std::path::PathBuf)>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(&std::fs::read(ca.pem_file()).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = files {
        let pem = [std::fs::read(cert).unwrap(), std::fs::read(key).unwrap()].concat();
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn client_certificates_of_the_ca_identify_callers_and_others_are_refused() {
    let ca = TestCa::new();
    let (cert, key) = ca.server_files();
    let http = HttpSettings::default().with_tls(TlsSettings {
        cert,
        key,
        client_ca: Some(ca.pem_file()),
    });
    let config = Config {
        http,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    tokio::spawn(TimeService::serve(listener, config, stop));
    let base = format!("https://localhost:{port}");

    // Probes answer over HTTPS without a client certificate.
    let anonymous = client(&ca, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match anonymous.get(format!("{base}/ready")).send().await {
            Ok(answer) if answer.status() == 200 => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("the time-client serves HTTPS: {other:?}"),
        }
    }
    // The API does not, without one.
    let refused = anonymous
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // A certificate of the CA: an MCP session and a tool call.
    let alice = client(&ca, Some(ca.client_files_with("alice", Some("ops"), false)));
    let session = connect(
        &format!("{base}/mcp"),
        &ConnectOptions::default().with_http_client(alice),
    )
    .await
    .expect("alice's certificate lets her in");
    let result = session
        .call_tool(CallToolRequestParams::new("get_current_time"))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");

    // An expired certificate, or one of another CA: no TLS session at all.
    let other_ca = TestCa::new();
    for (what, files) in [
        ("expired", ca.client_files_with("old", None, true)),
        ("another CA's", other_ca.client_files("mallory")),
    ] {
        let outcome = client(&ca, Some(files))
            .get(format!("{base}/health"))
            .send()
            .await;
        assert!(
            outcome.is_err(),
            "an {what} certificate is refused: {outcome:?}"
        );
    }
}
