//! The authentication layer in a real service app on a real port: JWTs from a JWKS served
//! over HTTP and API keys side by side, the challenge, the metadata, the open probes, and the
//! identity the handler sees. A submodule of the verifier's tests, for their keys and JWKS
//! server (`jwt_tests_support.rs`).

use std::net::SocketAddr;

use axum::{Extension, Router, routing::get};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::support::*;
use crate::{
    HttpSettings, Metrics, ServiceApp,
    auth::{AuthSettings, Identity, api_keys},
};

async fn whoami(Extension(who): Extension<Identity>) -> axum::Json<Value> {
    axum::Json(json!({"subject": who.subject, "method": who.method.as_str(), "groups": who.groups}))
}

async fn serve(http: HttpSettings) -> (SocketAddr, CancellationToken) {
    let app = ServiceApp::new("auth-test", Metrics::new("auth-test"), http.clone())
        .rest(Router::new().route("/whoami", get(whoami)))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let http = http.with_shutdown_grace(std::time::Duration::from_millis(100));
    let serving = stop.clone();
    tokio::spawn(async move { crate::serve(listener, app, serving, &http).await });
    (addr, stop)
}

#[tokio::test]
async fn callers_are_known_by_jwt_or_key_and_everyone_else_is_pointed_at_the_metadata() {
    let signer = &signers().p256;
    let (_idp, jwks) = Idp::start(&[signer]).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, entry) = api_keys::new_key("ci-bot");
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, format!("{entry}groups = [\"ops\"]\n")).unwrap();
    let auth = AuthSettings {
        api_keys: AuthSettings::with_api_keys(&keys).unwrap().api_keys,
        ..AuthSettings::with_jwt(settings(&jwks))
    };
    let (addr, stop) = serve(HttpSettings::default().with_auth(auth)).await;
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("http://{addr}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let jwt = signer.sign(&claims());
    let answer = get("/whoami", Some(&jwt)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let me: Value = answer.json().await.unwrap();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["method"], "jwt");
    assert_eq!(me["groups"], json!(["dev", "ops", "admin"]));

    let me: Value = get("/whoami", Some(&key))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&me["subject"], &me["method"]),
        (&json!("ci-bot"), &json!("api_key"))
    );

    let expired = signer.sign(&with("exp", json!(1)));
    for (token, error) in [
        (None, false),
        (Some(expired.as_str()), true),
        (Some("sbk_not-a-key"), true),
        (Some("garbage.garbage.garbage"), true),
    ] {
        let answer = get("/whoami", token).await.unwrap();
        assert_eq!(answer.status(), 401, "{token:?}");
        let challenge = answer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            challenge.contains("error=\"invalid_token\""),
            error,
            "{challenge}"
        );
        assert!(
            challenge.starts_with(&format!(
                "Bearer resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource\""
            )),
            "{challenge}"
        );
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }

    for path in ["/health", "/ready", "/metrics"] {
        assert_eq!(
            get(path, None).await.unwrap().status(),
            200,
            "{path} stays open"
        );
    }
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let metadata: Value = get(path, None).await.unwrap().json().await.unwrap();
        assert_eq!(metadata["resource"], AUDIENCE, "{metadata}");
        assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    }
    stop.cancel();
}

#[tokio::test]
async fn without_settings_everyone_is_anonymous_and_there_is_no_metadata() {
    let (addr, stop) = serve(HttpSettings::default()).await;
    let client = reqwest::Client::new();
    let me: Value = client
        .get(format!("http://{addr}/whoami"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&me["subject"], &me["method"]),
        (&json!("anonymous"), &json!("anonymous"))
    );
    let metadata = client
        .get(format!(
            "http://{addr}/.well-known/oauth-protected-resource"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 404);
    stop.cancel();
}

#[tokio::test]
async fn a_caller_over_its_rate_gets_429_with_retry_after_and_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (hasty, hasty_entry) = api_keys::new_key("hasty");
    let (calm, calm_entry) = api_keys::new_key("calm");
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, format!("{hasty_entry}{calm_entry}")).unwrap();
    let auth = AuthSettings {
        limits: crate::auth::limits::LimitSettings {
            rate: Some((0.5, 2)),
            concurrent: None,
        },
        ..AuthSettings::with_api_keys(&keys).unwrap()
    };
    let (addr, stop) = serve(HttpSettings::default().with_auth(auth)).await;
    let client = reqwest::Client::new();
    let whoami = |key: &str| {
        client
            .get(format!("http://{addr}/whoami"))
            .bearer_auth(key)
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            whoami(&hasty).await.unwrap().status(),
            200,
            "within the burst"
        );
    }
    let over = whoami(&hasty).await.unwrap();
    assert_eq!(over.status(), 429);
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'hasty'"),
        "{body}"
    );
    assert_eq!(
        whoami(&calm).await.unwrap().status(),
        200,
        "another caller goes on"
    );
    assert_eq!(
        client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "probes are not limited"
    );
    stop.cancel();
}
