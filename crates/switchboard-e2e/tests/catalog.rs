//! The middleware caches the gateway's tool list, and the cache follows the gateway: when an
//! upstream goes away its tools leave the middleware's `/tools` as soon as the gateway says
//! its list changed (well before the cache's 30 s lifetime), and come back when it returns.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{net::SocketAddr, time::Duration};

use switchboard_gateway::{Gateway, UpstreamConfig};
use switchboard_middleware::gateway::TOOLS_TTL;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Longest wait for the list to change: a third of the cache's lifetime, so only the
/// gateway's notification can make the change show in time.
const WAIT: Duration = Duration::from_secs(10);

/// Start a time-client on `addr` (port 0 for any); its address. Rebinding the address of one
/// that just stopped may need a few attempts while its listener closes.
async fn time_client(addr: SocketAddr, stop: &CancellationToken) -> SocketAddr {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut retry = tokio::time::interval(Duration::from_millis(20));
    let listener = loop {
        retry.tick().await;
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("cannot bind {addr}: {e}"),
            Err(_) => {}
        }
    };
    let addr = listener.local_addr().unwrap();
    tokio::spawn(switchboard_time::serve(
        listener,
        switchboard_time::Config::default(),
        stop.clone(),
    ));
    addr
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
    let shutdown = CancellationToken::new();
    let _stop_all = shutdown.clone().drop_guard();

    let first = shutdown.child_token();
    let time_addr = time_client("127.0.0.1:0".parse().unwrap(), &first).await;

    let mut config = switchboard_gateway::Config::new(vec![UpstreamConfig::new(
        "time-client",
        format!("http://{time_addr}/mcp"),
    )]);
    config.health_interval = Duration::from_millis(200);
    let gateway = Gateway::start(&config, shutdown.child_token()).expect("gateway HTTP client");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(switchboard_gateway::serve_gateway(
        listener,
        gateway,
        config,
        shutdown.child_token(),
    ));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let middleware = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchboard_middleware::serve(
        listener,
        switchboard_middleware::Config::default().with_gateway_url(gateway_url),
        shutdown.child_token(),
    ));

    let has_time = |names: &[String]| names.iter().any(|n| n == "get_current_time");
    assert!(until(&middleware, has_time).await, "the tool is listed");

    // The upstream goes away: the gateway drops its tools and says so; the middleware's
    // cached list follows.
    first.cancel();
    assert!(
        until(&middleware, |names| !has_time(names)).await,
        "the gone upstream's tool left the middleware's list within {WAIT:?}"
    );

    // It comes back on the same address: so do its tools.
    let second = shutdown.child_token();
    time_client(time_addr, &second).await;
    assert!(
        until(&middleware, has_time).await,
        "the returning upstream's tool is listed again within {WAIT:?}"
    );
}
