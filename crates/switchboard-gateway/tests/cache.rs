//! The result cache: behind the gateway, the reference "everything" server (npm) over
//! Streamable HTTP, whose `echo` is annotated read-only and idempotent and whose
//! `toggle-simulated-logging` is neither. A cached call is answered without the upstream (even
//! once it is gone) until its time to live ends; other tools, and errors, are never cached; two
//! gateways sharing a real `redis-server` answer from what either stored, and keep answering
//! (uncached) when Redis dies.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::*;
use serde_json::{Value, json};
use switchboard_gateway::{cache::READINESS_NAME, config::CacheSettings};

const MINUTE: Duration = Duration::from_secs(60);

/// A gateway in front of `everything` with `cache`, once it lists the everything server.
async fn gateway_with(everything: &EverythingHttp, cache: CacheSettings) -> GatewayUnderTest {
    let upstream = upstream("everything", &everything.mcp_url());
    let gateway = gateway(config(vec![upstream]).with_cache(cache)).await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    gateway
}

async fn metrics(gateway: &GatewayUnderTest) -> String {
    reqwest::get(format!("{}/metrics", gateway.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Counter `name` of store `store` (0 when the series does not exist yet).
async fn cache_count(gateway: &GatewayUnderTest, name: &str, store: &str) -> f64 {
    metric(&metrics(gateway).await, name, &[("store", store)]).unwrap_or(0.0)
}

/// `mcp_tool_calls_total` of `tool` with `outcome` (`cached`: answered by the cache; any
/// other: the call went to the upstream).
async fn calls(gateway: &GatewayUnderTest, tool: &str, outcome: &str) -> f64 {
    metric(
        &metrics(gateway).await,
        "mcp_tool_calls_total",
        &[("tool", tool), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

/// `POST /api/tools/{tool}`: the status and the JSON answer.
async fn rest_call(gateway: &GatewayUnderTest, tool: &str, arguments: Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/api/tools/{tool}", gateway.base()))
        .json(&arguments)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

fn text(answer: &Value) -> &str {
    answer["content"][0]["text"].as_str().unwrap_or_default()
}

/// Poll `check` until it holds, at most [`PATIENCE`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cached call's second run is answered by the gateway alone: it still answers after the
/// upstream is killed, while a call it has not seen fails. Errors and tools that are not
/// annotated read-only and idempotent reach the upstream every time, even with a rule for
/// them, and `GET /api/tools` says why they are not cached.
#[tokio::test]
async fn safe_tools_are_answered_from_the_cache_and_others_never_are() {
    let everything = EverythingHttp::start().await;
    let cache = CacheSettings::default()
        .with_rule("echo", MINUTE)
        .with_rule("toggle-*", MINUTE);
    let gateway = gateway_with(&everything, cache).await;
    let (client, _events) = client(&gateway.mcp_url()).await;

    let call = |args: Value| client.call_tool(params("echo", args));
    let first = call(json!({"message": "hi"})).await.unwrap();
    assert_eq!(text_of(&first), "Echo: hi");
    // The same arguments written differently are the same call.
    let again = call(json!({"message": "hi"})).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        calls(&gateway, "echo", "ok").await,
        1.0,
        "one upstream call"
    );
    assert_eq!(calls(&gateway, "echo", "cached").await, 1.0);
    assert_eq!(
        cache_count(&gateway, "mcp_cache_hits_total", "memory").await,
        1.0
    );
    assert_eq!(
        cache_count(&gateway, "mcp_cache_stores_total", "memory").await,
        1.0
    );

    // An error result is never kept: the second identical call goes upstream again.
    for _ in 0..2 {
        let error = call(json!({"message": 5})).await.unwrap();
        assert_eq!(error.is_error, Some(true), "{error:?}");
    }
    assert_eq!(calls(&gateway, "echo", "tool_error").await, 2.0);
    assert_eq!(
        cache_count(&gateway, "mcp_cache_stores_total", "memory").await,
        1.0
    );

    // Matched by a rule but not annotated read-only and idempotent: called every time (it
    // toggles, so both answers differ), and the catalog says why.
    let toggle = || client.call_tool(params("toggle-simulated-logging", json!({})));
    let (on, off) = (toggle().await.unwrap(), toggle().await.unwrap());
    assert_ne!(text_of(&on), text_of(&off));
    assert_eq!(calls(&gateway, "toggle-simulated-logging", "ok").await, 2.0);
    let listed: Value = reqwest::get(format!("{}/api/tools", gateway.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cache_of = |name: &str| {
        listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["cache"].clone())
            .unwrap()
    };
    assert_eq!(
        cache_of("echo"),
        json!({"cached": true, "ttl_seconds": 60.0})
    );
    let toggle_cache = cache_of("toggle-simulated-logging");
    assert_eq!(toggle_cache["cached"], false);
    assert!(
        toggle_cache["reason"]
            .as_str()
            .unwrap()
            .contains("readOnlyHint")
    );
    assert_eq!(cache_of("get-sum"), Value::Null, "no rule, no cache");
    let ready = ready_until(&gateway.base(), |r| r["status"] == "ready").await;
    assert_eq!(
        ready["dependencies"][READINESS_NAME]["detail"]["entries"],
        1
    );

    // The upstream is gone: the cached call is still answered, a new one is not.
    drop(everything);
    let cached = call(json!({"message": "hi"})).await.unwrap();
    assert_eq!(cached, first);
    let uncached = call(json!({"message": "not seen before"})).await.unwrap();
    assert_eq!(uncached.is_error, Some(true), "{uncached:?}");
    assert_eq!(calls(&gateway, "echo", "cached").await, 2.0);
}

/// An entry lives for its time to live, then the call reaches the upstream again (REST here).
#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let everything = EverythingHttp::start().await;
    let ttl = Duration::from_secs(1);
    let gateway = gateway_with(&everything, CacheSettings::default().with_rule("echo", ttl)).await;
    let before_first = Instant::now();
    let (status, answer) = rest_call(&gateway, "echo", json!({"message": "ttl"})).await;
    assert_eq!((status, text(&answer)), (200, "Echo: ttl"));
    eventually(
        "the entry expired and the call went upstream again",
        || async {
            let (status, again) = rest_call(&gateway, "echo", json!({"message": "ttl"})).await;
            assert_eq!((status, &again), (200, &answer));
            calls(&gateway, "echo", "ok").await == 2.0
        },
    )
    .await;
    assert!(
        before_first.elapsed() >= ttl,
        "the entry went early: {:?}",
        before_first.elapsed()
    );
    assert!(
        calls(&gateway, "echo", "cached").await >= 1.0,
        "hit within the TTL"
    );
}

/// A `redis-server` on a free port of its own, killed when dropped.
struct RedisServer {
    port: u16,
    child: tokio::process::Child,
}

impl RedisServer {
    async fn start(port: Option<u16>) -> Self {
        let installed = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            installed,
            "redis-server is not installed: run scripts/install-test-deps.sh (as root)"
        );
        let port = match port {
            Some(port) => port,
            None => common::everything::any_port_number().await,
        };
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let redis = Self { port, child };
        eventually("redis-server listens", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn kill(mut self) -> u16 {
        self.child.kill().await.unwrap();
        self.port
    }
}

/// `/ready`'s line of the cache.
async fn cache_readiness(gateway: &GatewayUnderTest) -> (u16, Value) {
    let answer = reqwest::get(format!("{}/ready", gateway.base()))
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap();
    (status, body["dependencies"][READINESS_NAME].clone())
}

/// Two gateways sharing one Redis: what A stored, B answers without calling the upstream.
/// With Redis killed both still answer (from the upstream), count the failures and show the
/// cache degraded while staying ready; when Redis is back they use it again.
#[tokio::test]
async fn replicas_share_entries_through_redis_and_outlive_it() {
    let redis = RedisServer::start(None).await;
    let everything = EverythingHttp::start().await;
    let cache = || {
        CacheSettings::default()
            .with_rule("echo", MINUTE)
            .with_redis(redis.url())
    };
    let a = gateway_with(&everything, cache()).await;
    let b = gateway_with(&everything, cache()).await;
    for gateway in [&a, &b] {
        eventually("the cache connected to Redis", || async {
            cache_readiness(gateway).await.1["detail"]["state"] == "ok"
        })
        .await;
    }

    let shared = json!({"message": "shared"});
    let (_, from_a) = rest_call(&a, "echo", shared.clone()).await;
    assert_eq!(text(&from_a), "Echo: shared");
    eventually("A stored its answer in Redis", || async {
        cache_count(&a, "mcp_cache_stores_total", "redis").await == 1.0
    })
    .await;
    let (status, from_b) = rest_call(&b, "echo", shared.clone()).await;
    assert_eq!((status, &from_b), (200, &from_a));
    assert_eq!(cache_count(&b, "mcp_cache_hits_total", "redis").await, 1.0);
    assert_eq!(calls(&b, "echo", "cached").await, 1.0);
    assert_eq!(
        calls(&b, "echo", "ok").await,
        0.0,
        "B never called the upstream"
    );

    // Redis dies: calls still succeed, from the upstream.
    let port = redis.kill().await;
    for (gateway, message) in [(&a, "shared"), (&b, "after redis died")] {
        let (status, answer) = rest_call(gateway, "echo", json!({ "message": message })).await;
        assert_eq!(
            (status, text(&answer)),
            (200, format!("Echo: {message}").as_str())
        );
    }
    assert_eq!(calls(&a, "echo", "ok").await, 2.0);
    assert!(cache_count(&b, "mcp_cache_errors_total", "redis").await >= 1.0);
    let (status, line) = cache_readiness(&b).await;
    assert_eq!(status, 200, "the gateway stays ready");
    assert_eq!(line["ready"], false, "{line}");
    assert_eq!(line["detail"]["state"], "degraded", "{line}");

    // Back again: the gateways use it again by themselves.
    let _redis = RedisServer::start(Some(port)).await;
    let back = json!({"message": "back"});
    eventually("A stores in Redis again", || async {
        rest_call(&a, "echo", back.clone()).await;
        cache_count(&a, "mcp_cache_stores_total", "redis").await >= 2.0
    })
    .await;
    // B rests a moment after its own failure (`RETRY_AFTER`), then answers from Redis.
    eventually("B answers from Redis again", || async {
        let (_, from_b) = rest_call(&b, "echo", back.clone()).await;
        assert_eq!(text(&from_b), "Echo: back");
        cache_count(&b, "mcp_cache_hits_total", "redis").await == 2.0
    })
    .await;
    assert_eq!(cache_readiness(&b).await.1["detail"]["state"], "ok");
}
