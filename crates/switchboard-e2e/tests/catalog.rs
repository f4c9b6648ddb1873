//! The middleware caches the gateway's tool list, and the cache follows the gateway: when an
//! upstream goes away its tools leave the middleware's `/tools` as soon as the gateway says
//! its list changed (well before the cache's 30 s lifetime), and come back when it returns.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{net::SocketAddr, time::Duration};

use switchboard_gateway::{GatewayService, UpstreamConfig};
use switchboard_middleware::{MiddlewareService, gateway::TOOLS_TTL};
use switchboard_testkit::{Running, Spawn, spawn};
use switchboard_time::TimeService;

/// Longest wait for the list to change: a third of the cache's lifetime, so only the
/// gateway's notification can make the change show in time.
const WAIT: Duration = Duration::from_secs(10);

/// A time-client on `addr` (port 0 for any), ready. Its short shutdown grace lets the test
/// stop it, and so free its address for the next one, in moments.
async fn time_client(addr: SocketAddr) -> Running {
    let mut config = switchboard_time::Config::default();
    config.http = config.http.with_shutdown_grace(Duration::from_millis(200));
    Spawn::new().at(addr).service::<TimeService>(config).await
}

/// The middleware's `/tools` names.
async fn names(middleware: &str) -> Vec<String> {
    let body: serde_json::Value = common::client()
        .get(format!("{middleware}/tools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// Ask `/tools` (every 20 ms) until `listed(names)` holds; false if it did not within WAIT.
async fn until(middleware: &str, listed: impl Fn(&[String]) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while tokio::time::Instant::now() < deadline {
        tick.tick().await;
        if listed(&names(middleware).await) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_tools_follow_the_gateways_list() {
    assert!(
        WAIT * 3 <= TOOLS_TTL,
        "the test must end before the cache would expire"
    );
    let first = time_client("127.0.0.1:0".parse().unwrap()).await;
    let time_addr = first.addr();

    let mut config =
        switchboard_gateway::Config::new(vec![UpstreamConfig::new("time-client", first.mcp_url())]);
    config.health_interval = Duration::from_millis(200);
    let gateway = spawn::<GatewayService>(config).await;
    let middleware_server = spawn::<MiddlewareService>(
        switchboard_middleware::Config::default().with_gateway_url(gateway.mcp_url()),
    )
    .await;
    let middleware = middleware_server.url();

    let has_time = |names: &[String]| names.iter().any(|n| n == "get_current_time");
    assert!(until(&middleware, has_time).await, "the tool is listed");

    // The upstream goes away: the gateway drops its tools and says so; the middleware's
    // cached list follows.
    first
        .shutdown()
        .await
        .expect("the time-client stops cleanly");
    assert!(
        until(&middleware, |names| !has_time(names)).await,
        "the gone upstream's tool left the middleware's list within {WAIT:?}"
    );

    // It comes back on the same address: so do its tools.
    let _second = time_client(time_addr).await;
    assert!(
        until(&middleware, has_time).await,
        "the returning upstream's tool is listed again within {WAIT:?}"
    );
}
