//! The gateway when upstreams fail: killed mid-load, hanging, not there yet.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;
use rmcp::model::{CallToolRequest, ClientRequest};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Counts successes of the healthy upstream's calls and wakes waiters on each.
#[derive(Default)]
struct Load {
    healthy_ok: AtomicUsize,
    healthy_failed: Mutex<Vec<String>>,
    slowest_healthy: Mutex<Duration>,
    dead_errors: Mutex<Vec<String>>,
    stop: AtomicBool,
    progress: Notify,
}

impl Load {
    async fn wait_for_healthy_calls(&self, at_least: usize) {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.progress.notified();
                if self.healthy_ok.load(Ordering::SeqCst) >= at_least {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the healthy upstream stopped answering");
    }
}

/// Kill one of two upstreams while both are under load: the other's calls keep succeeding and
/// none of them waits for the dead one's timeout; the dead one's tools leave the list and the
/// client is told; started again on the same port, its tools come back by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_upstream_mid_load_spares_the_other_and_it_comes_back_by_itself() {
    let dead_timeout = Duration::from_secs(3);
    let time = time_client(any_port()).await;
    let ts = TsUpstream::start(0).await;
    let gateway = gateway(config(vec![
        upstream("time-client", &time.mcp_url()),
        upstream("ts", &ts.mcp_url()).with_call_timeout(dead_timeout),
    ]))
    .await;
    gateway
        .wait_for("both upstreams listed", |c| {
            c.tools.iter().any(|t| t.name == "convert_time")
                && c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let (client, mut events) = client(&gateway.mcp_url()).await;

    let load = Arc::new(Load::default());
    let mut workers = Vec::new();
    for worker in 0..6 {
        let peer = client.peer().clone();
        let load = load.clone();
        workers.push(tokio::spawn(async move {
            while !load.stop.load(Ordering::SeqCst) {
                if worker % 3 == 2 {
                    // A third of the load goes to the upstream that will die.
                    if let Ok(r) = peer.call_tool(params("echo", json!({"text": "hi"}))).await
                        && r.is_error == Some(true)
                    {
                        load.dead_errors.lock().unwrap().push(text_of(&r));
                    }
                    continue;
                }
                let start = Instant::now();
                let r = peer
                    .call_tool(params("convert_time", json!({"time": "08:00", "source_timezone": "UTC", "target_timezone": "Europe/Paris"})))
                    .await;
                let took = start.elapsed();
                match r {
                    Ok(r) if r.is_error != Some(true) => {
                        load.healthy_ok.fetch_add(1, Ordering::SeqCst);
                        let mut slowest = load.slowest_healthy.lock().unwrap();
                        *slowest = (*slowest).max(took);
                    }
                    other => load.healthy_failed.lock().unwrap().push(format!("{other:?}")),
                }
                load.progress.notify_waiters();
            }
        }));
    }

    load.wait_for_healthy_calls(20).await;
    let port = ts.kill().await;
    let before = load.healthy_ok.load(Ordering::SeqCst);

    next(&mut events.tools_changed, "list_changed after the kill").await;
    gateway
        .wait_for("the dead upstream's tools gone", |c| {
            !c.tools.iter().any(|t| t.name == "echo")
                && c.tools.iter().any(|t| t.name == "convert_time")
        })
        .await;
    let listed: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(!listed.iter().any(|n| n == "echo"), "{listed:?}");
    let rest = reqwest::Client::new()
        .post(format!("{}/api/tools/echo", gateway.base()))
        .json(&json!({"text": "anyone?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 503, "a down upstream's tool over REST");
    let body: Value = rest.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("'ts'"),
        "{body}"
    );
    load.wait_for_healthy_calls(before + 50).await;

    let _ts = TsUpstream::start(port).await;
    next(&mut events.tools_changed, "list_changed after the restart").await;
    gateway
        .wait_for("the restarted upstream's tools back", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let echo = client
        .call_tool(params("echo", json!({"text": "back"})))
        .await
        .unwrap();
    assert_eq!(echo.structured_content, Some(json!({"text": "back"})));

    load.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    let failed = load.healthy_failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "calls to the healthy upstream failed: {failed:?}"
    );
    let slowest = *load.slowest_healthy.lock().unwrap();
    assert!(
        slowest < dead_timeout / 3,
        "a healthy call took {slowest:?}: it waited on the dead upstream (timeout {dead_timeout:?})"
    );
    let dead_errors = load.dead_errors.lock().unwrap();
    assert!(
        dead_errors.iter().all(|e| e.contains("'ts'")),
        "errors name the failed upstream: {dead_errors:?}"
    );
    drop(time);
}

/// An upstream that accepts connections but never answers: calls end at the configured timeout
/// with a tool error naming it; after repeated failures its circuit opens and calls fail at once.
#[tokio::test]
async fn a_hanging_upstream_times_out_cleanly_then_its_circuit_opens() {
    let timeout = Duration::from_millis(500);
    let time = time_client(any_port()).await;
    let proxy = HangingProxy::start(time.addr()).await;
    let gateway = gateway(config(vec![
        upstream("slow", &proxy.mcp_url())
            .with_call_timeout(timeout)
            .with_breaker(2, Duration::from_secs(600)),
    ]))
    .await;
    gateway
        .wait_for("the proxied upstream listed", |c| {
            c.tools.iter().any(|t| t.name == "convert_time")
        })
        .await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let call = || {
        params(
            "convert_time",
            json!({"time": "08:00", "source_timezone": "UTC", "target_timezone": "UTC"}),
        )
    };
    assert_ne!(client.call_tool(call()).await.unwrap().is_error, Some(true));

    proxy.hang();
    let http = reqwest::Client::new();
    let rest_call = http
        .post(format!("{}/api/tools/convert_time", gateway.base()))
        .json(&json!({"time": "08:00", "source_timezone": "UTC", "target_timezone": "UTC"}))
        .send();
    let start = Instant::now();
    let (mcp, rest) = tokio::join!(client.call_tool(call()), rest_call);
    let took = start.elapsed();
    let mcp = mcp.unwrap();
    assert_eq!(mcp.is_error, Some(true));
    let message = text_of(&mcp);
    assert!(
        message.contains("'slow'") && message.contains("did not answer within 0.5s"),
        "{message}"
    );
    assert!(took >= timeout, "ended before the timeout: {took:?}");
    assert!(
        took < timeout + Duration::from_secs(3),
        "ended long after the timeout: {took:?}"
    );
    let rest = rest.unwrap();
    assert_eq!(rest.status(), 504);
    let body: Value = rest.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");

    // Two timeouts opened the circuit: the next call fails at once, still naming the upstream.
    let start = Instant::now();
    let rejected = client.call_tool(call()).await.unwrap();
    assert!(
        start.elapsed() < timeout,
        "an open circuit rejects without waiting"
    );
    assert!(
        text_of(&rejected).contains("circuit breaker is open"),
        "{}",
        text_of(&rejected)
    );
    assert!(text_of(&rejected).contains("'slow'"));
    let metrics = reqwest::get(format!("{}/metrics", gateway.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &metrics,
            "mcp_upstream_circuit_state",
            &[("upstream", "slow")]
        ),
        Some(2.0),
        "{metrics}"
    );
    let timeouts = [("tool", "convert_time"), ("outcome", "timeout")];
    assert_eq!(
        metric(&metrics, "mcp_tool_calls_total", &timeouts),
        Some(2.0)
    );
}

/// An upstream that forgot the gateway's sessions (as a restarted server behind the same
/// address would) answers 404: the gateway initializes a new session and the call succeeds,
/// and later calls go over that one new session. (The upstream keeps sessions, so the client
/// has one of its own besides the gateway's: `tests/isolation.rs`.)
#[tokio::test]
async fn an_expired_upstream_session_is_renewed_without_failing_a_call() {
    let ts = TsUpstream::start(0).await;
    let gateway = gateway(config(vec![upstream("ts", &ts.mcp_url())])).await;
    gateway
        .wait_for("the upstream listed", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let forgotten = client
        .call_tool(params("forget_sessions", json!({})))
        .await
        .unwrap();
    assert_eq!(
        text_of(&forgotten),
        "2",
        "the gateway's own session and this client's"
    );
    for text in ["after", "again"] {
        let echo = client
            .call_tool(params("echo", json!({"text": text})))
            .await
            .unwrap();
        assert_ne!(echo.is_error, Some(true), "{}", text_of(&echo));
        assert_eq!(echo.structured_content, Some(json!({"text": text})));
    }
    let forgotten = client
        .call_tool(params("forget_sessions", json!({})))
        .await
        .unwrap();
    // The client's one new session, used by every call since (not one per call), and the
    // gateway's own once its health check has renewed it.
    let sessions: u32 = text_of(&forgotten).parse().unwrap();
    assert!(
        (1..=2).contains(&sessions),
        "one new session, used by every call: {sessions}"
    );
}

/// The gateway starts and serves while its only upstream is not there; `/ready` says which
/// upstream is missing; when the upstream starts, its tools appear and clients are told.
#[tokio::test]
async fn serves_before_any_upstream_and_picks_one_up_when_it_starts() {
    let addr: SocketAddr = {
        let probe = std::net::TcpListener::bind(any_port()).unwrap();
        probe.local_addr().unwrap()
    };
    let gateway = gateway(config(vec![upstream(
        "time-client",
        &format!("http://{addr}/mcp"),
    )]))
    .await;
    let mut state = gateway.gateway.upstreams()[0].subscribe();
    tokio::time::timeout(PATIENCE, state.wait_for(|s| s.error.is_some()))
        .await
        .expect("the first connection attempt failed")
        .unwrap();
    let health = reqwest::get(format!("{}/health", gateway.base()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/ready", gateway.base()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body["dependencies"]["time-client"]["ready"], false,
        "{body}"
    );
    assert_eq!(
        body["dependencies"]["time-client"]["detail"]["status"], "down",
        "{body}"
    );

    let (client, mut events) = client(&gateway.mcp_url()).await;
    assert!(client.list_all_tools().await.unwrap().is_empty());

    let _time = time_client(addr).await;
    next(
        &mut events.tools_changed,
        "list_changed when the upstream appeared",
    )
    .await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.iter().any(|n| n == "get_current_time"), "{names:?}");
    let ready = reqwest::get(format!("{}/ready", gateway.base()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// At most `max_concurrent_calls` calls run on an upstream at once; the others wait for a
/// slot, while the other upstream is not affected.
#[tokio::test]
async fn concurrency_is_bounded_per_upstream() {
    let time = time_client(any_port()).await;
    let ts = TsUpstream::start(0).await;
    let gateway = gateway(config(vec![
        upstream("time-client", &time.mcp_url()),
        upstream("ts", &ts.mcp_url()).with_max_concurrent_calls(1),
    ]))
    .await;
    gateway
        .wait_for("both upstreams listed", |c| {
            c.tools.iter().any(|t| t.name == "convert_time")
                && c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let (client, mut events) = client(&gateway.mcp_url()).await;
    // Three calls that each run until cancelled, and say so with a progress notification.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params(
            "wait_for_cancel",
            json!({}),
        )));
        waiting.push(
            client
                .send_request_with_option(request, Default::default())
                .await
                .unwrap(),
        );
    }
    for round in 0..3 {
        let running = next(&mut events.progress, "a call getting the slot").await;
        if round == 0 {
            let other = client
                .call_tool(params(
                    "convert_time",
                    json!({"time": "08:00", "source_timezone": "UTC", "target_timezone": "UTC"}),
                ))
                .await
                .unwrap();
            assert_ne!(
                other.is_error,
                Some(true),
                "the other upstream has its own slots"
            );
        }
        let index = waiting
            .iter()
            .position(|h| h.progress_token == running.progress_token)
            .expect("progress of a call still waiting");
        waiting.remove(index).cancel(None).await.unwrap();
    }
    let count = client
        .call_tool(params("cancellations", json!({"at_least": 3})))
        .await
        .unwrap();
    assert_eq!(text_of(&count), "3");
    let peak = client
        .call_tool(params("peak_running", json!({})))
        .await
        .unwrap();
    assert_eq!(
        text_of(&peak),
        "1",
        "the upstream never ran two of them at once"
    );
}
