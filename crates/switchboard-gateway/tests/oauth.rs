//! OAuth client credentials towards an upstream: a real authorization server
//! (`oauth2-mock-server`, npm) issues short-lived RS256 JWTs; our time-client admits only
//! tokens from it, for its own URL (`aud`), checked against the server's JWKS. The gateway
//! fetches a token with its client id and secret, sends it on every request, fetches the next
//! one before each expires, and says plainly when it gets none.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::*;
use serde_json::{Value, json};
use switchboard_gateway::config::{OAuthSettings, OAuthTable};
use switchboard_runtime::auth::{AuthSettings, jwt::JwtSettings};
use switchboard_testkit::{Running, Spawn};
use switchboard_time::TimeService;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const CLIENT_ID: &str = "switchboard-gateway";
const SECRET: &str = "a-client-secret-never-logged";
/// Seconds each token lasts: the gateway needs several during one test.
const TTL: u64 = 3;

/// The authorization server, and what it printed: one JSON line per token request.
struct AuthorizationServer {
    port: u16,
    lines: Lines<BufReader<ChildStdout>>,
    _child: Child,
}

impl AuthorizationServer {
    async fn start() -> Self {
        let script = installed().join("oauth-server/server.mjs");
        assert!(
            script.exists(),
            "run crates/switchboard-gateway/tests/fixtures/install.sh"
        );
        let port = everything::any_port_number().await;
        let mut child = tokio::process::Command::new("node")
            .arg(&script)
            .args([&port.to_string(), CLIENT_ID, SECRET, &TTL.to_string()])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("the authorization server started")
            .unwrap();
        assert_eq!(first.as_deref(), Some("listening"));
        Self {
            port,
            lines,
            _child: child,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next token request it answered.
    async fn next_request(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
            .await
            .expect("a token request")
            .unwrap()
            .expect("the server is running");
        serde_json::from_str(&line).unwrap()
    }
}

/// Our time-client on a free port, admitting only JWTs of `issuer` for its own URL.
async fn protected_time_client(issuer: &str) -> Running {
    let port = everything::any_port_number().await;
    let audience = format!("http://127.0.0.1:{port}/mcp");
    let jwt = JwtSettings {
        jwks_url: format!("{issuer}/jwks").parse().unwrap(),
        issuer: issuer.to_owned(),
        audience,
        algorithms: JwtSettings::parse_algorithms(&["RS256".to_owned()]).unwrap(),
        leeway: Duration::ZERO,
    };
    let mut config = switchboard_time::Config::default();
    config.http = config
        .http
        .with_auth(AuthSettings::with_jwt(jwt))
        .with_shutdown_grace(Duration::from_millis(200));
    Spawn::new()
        .at(SocketAddr::from(([127, 0, 0, 1], port)))
        .service::<TimeService>(config)
        .await
}

fn oauth(token_url: &str, secret_file: &std::path::Path, upstream: &str) -> OAuthSettings {
    let table = OAuthTable {
        token_url: token_url.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: format!("file:{}", secret_file.display()),
        scope: Some("mcp:tools".to_owned()),
        audience: None,
        resource: None,
        client_auth: None,
    };
    OAuthSettings::from_table("test", &table, upstream).unwrap()
}

/// The upstream's entry in the gateway's `/ready`.
async fn upstream_ready(gateway: &GatewayUnderTest, name: &str) -> Value {
    let ready: Value = reqwest::get(format!("{}/ready", gateway.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["dependencies"][name]["detail"].clone()
}

/// Wait until the upstream is down with an error containing `needle`; the error.
async fn down_with(gateway: &GatewayUnderTest, name: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let detail = upstream_ready(gateway, name).await;
        let error = detail["error"].as_str().unwrap_or_default().to_owned();
        if detail["status"] == "down" && error.contains(needle) {
            return error;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream {name} never down with {needle:?}: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tokens_are_fetched_sent_and_renewed_before_they_expire() {
    let mut server = AuthorizationServer::start().await;
    let time = protected_time_client(&server.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let url = time.mcp_url();
    let token_url = format!("{}/token", server.url());
    let gateway = gateway(config(vec![
        upstream("time", &url).with_oauth(oauth(&token_url, &secret, &url)),
    ]))
    .await;
    gateway
        .wait_for("the protected time-client listed", |c| {
            c.tools.iter().any(|t| t.name == "get_current_time")
        })
        .await;

    // What the gateway asked for: its own client, the right secret, the scope, and a token
    // for this upstream (RFC 8707 `resource`), which the time-client checks as `aud`.
    let first = server.next_request().await;
    assert_eq!(
        first,
        json!({
            "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_auth": "basic",
            "secret_ok": true, "scope": "mcp:tools", "resource": url,
        })
    );

    // Calls keep working across several token lifetimes: each token is replaced before it
    // expires (the time-client allows no clock leeway).
    let (client, _events) = client(&gateway.mcp_url()).await;
    let mut renewals = 0;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while renewals < 3 {
        let result = client
            .call_tool(params("get_current_time", json!({"timezone": "UTC"})))
            .await
            .expect("a call with a valid token");
        assert_ne!(result.is_error, Some(true), "{result:?}");
        // Count the renewals the server has answered so far, without waiting for one.
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_millis(1), server.lines.next_line()).await
        {
            let request: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(request["secret_ok"], true, "{request}");
            renewals += 1;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {renewals} renewals"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detail = upstream_ready(&gateway, "time").await;
    assert_eq!(detail["status"], "up", "{detail}");
    assert!(
        !detail.to_string().contains(SECRET),
        "the secret is on /ready: {detail}"
    );
}

#[tokio::test]
async fn without_a_token_the_upstream_is_down_and_says_why() {
    let mut server = AuthorizationServer::start().await;
    let time = protected_time_client(&server.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong-secret");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    let url = time.mcp_url();
    let token_url = format!("{}/token", server.url());

    // A wrong secret: the server refuses it, and /ready says so (without any secret).
    let refused = gateway(config(vec![
        upstream("time", &url).with_oauth(oauth(&token_url, &wrong, &url)),
    ]))
    .await;
    let error = down_with(&refused, "time", "invalid_client").await;
    assert!(error.contains(&token_url), "{error}");
    assert!(!error.contains("not-the-secret"), "{error}");
    assert_eq!(server.next_request().await["secret_ok"], false);

    // No OAuth at all: the time-client itself refuses the gateway.
    let anonymous = gateway(config(vec![upstream("time", &url)])).await;
    down_with(&anonymous, "time", "Auth required").await;
}
