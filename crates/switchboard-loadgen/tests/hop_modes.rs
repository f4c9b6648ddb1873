//! The modes behind scenario 1's hop rows: one MCP session shared by every worker, protocol
//! 2026-07-28, and the fixed server and forwarding hop of the loopback floor.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::process::Output;

use common::{loadgen, serving, time_client};
use switchboard_testkit::Running;
use tokio::net::TcpListener;

/// POST /mcp requests the time-client has answered so far, from its own metrics.
async fn mcp_posts(server: &Running) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("http_requests_total{")
                && line.contains("method=\"POST\"")
                && line.contains("/mcp")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// With `--shared-session`, eight workers send on one session: the server sees one
/// `initialize` and one `notifications/initialized`, then the calls.
#[tokio::test(flavor = "multi_thread")]
async fn shared_session_is_one_session_for_every_worker() {
    let server = time_client().await;
    let before = mcp_posts(&server).await;
    let (output, report) = loadgen(&[
        "mcp",
        "--url",
        &server.mcp_url(),
        "--tool",
        "get_current_time",
        "--shared-session",
        "-c",
        "8",
        "--requests",
        "100",
        "--warmup",
        "0",
        "--expect",
        "datetime",
    ])
    .await;
    assert_ok(&output);
    assert_eq!(report["requests"], 100);
    assert_eq!(report["concurrency"], 8);
    let posts = mcp_posts(&server).await - before;
    assert_eq!(posts, 102.0, "one session's handshake, then the calls");
}

/// Protocol 2026-07-28: `server/discover` once, then stateless calls, all answered.
#[tokio::test(flavor = "multi_thread")]
async fn protocol_2026_calls_without_a_session() {
    let server = time_client().await;
    let url = server.mcp_url();
    for shared in [false, true] {
        let mut args = vec![
            "mcp",
            "--url",
            &url,
            "--tool",
            "get_current_time",
            "--protocol",
            "2026-07-28",
            "-c",
            "4",
            "--requests",
            "40",
            "--warmup",
            "0",
            "--expect",
            "datetime",
        ];
        if shared {
            args.push("--shared-session");
        }
        let (output, report) = loadgen(&args).await;
        assert_ok(&output);
        assert_eq!(report["requests"], 40);
        assert!(
            report["target"].as_str().unwrap().contains("2026-07-28"),
            "{report}"
        );
    }
}

/// The forwarding hop passes requests to the fixed server and its answers back, status,
/// type and body; a hop whose far end is gone answers 502.
#[tokio::test(flavor = "multi_thread")]
async fn forward_passes_the_fixed_answer_through() {
    let (_fixed, fixed) = serving(&["fixed"]).await;
    let (_hop, hop) = serving(&["forward", "--to", &format!("http://{fixed}")]).await;
    for addr in [&fixed, &hop] {
        let (output, report) = loadgen(&[
            "http",
            "--url",
            &format!("http://{addr}/anything"),
            "-c",
            "2",
            "--requests",
            "20",
            "--warmup",
            "0",
            "--expect",
            "datetime",
        ])
        .await;
        assert_ok(&output);
        assert_eq!(report["requests"], 20);
    }
    let answer = reqwest::get(format!("http://{hop}/ready")).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/json");

    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = gone.local_addr().unwrap().port();
    drop(gone);
    let (_dead, dead) = serving(&["forward", "--to", &format!("http://127.0.0.1:{port}")]).await;
    let answer = reqwest::get(format!("http://{dead}/")).await.unwrap();
    assert_eq!(answer.status(), 502);
}
