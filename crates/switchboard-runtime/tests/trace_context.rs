//! W3C trace context through a service built with `ServiceApp`: an incoming `traceparent`
//! header makes the `http_request` span join the caller's trace; the span's trace id is on every
//! log line of the request (human format here, even at `RUST_LOG=warn`); an outgoing request
//! gets this hop's context from `propagation::headers()`; spans are exported over OTLP/HTTP.
//!
//! One test function: the subscriber is process-wide, and the OTLP receiver lives on this
//! test's runtime.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::time::Duration;

use axum::{Router, routing::get};
use switchboard_runtime::{
    HttpSettings, Metrics, ServiceApp, propagation,
    telemetry::{self, LogFormat, TelemetryOptions},
    testing::{CapturedLogs, OtlpReceiver},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A handler that logs a warning and answers with the `traceparent` it would send downstream.
async fn downstream_traceparent() -> String {
    tracing::warn!("calling downstream");
    propagation::headers()
        .get("traceparent")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// `00-<trace>-<span>-<flags>` split into trace id and span id.
fn ids(traceparent: &str) -> (&str, &str) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (parts[1], parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_join_the_callers_trace_and_log_its_id() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let telemetry = telemetry::init(
        TelemetryOptions::new(LogFormat::Human, "warn", "trace-test")
            .with_otlp_traces_endpoint(receiver.traces_url())
            .with_writer(move || writer.clone()),
    )
    .unwrap();
    // Spans of ours at INFO are always on; nothing more verbose may be (a TRACE maximum makes
    // every disabled trace!/debug! and log record in the dependencies cost a filter check).
    assert_eq!(
        tracing::level_filters::LevelFilter::current(),
        tracing::level_filters::LevelFilter::INFO
    );

    let app = ServiceApp::new(
        "trace-test",
        Metrics::new("trace-test"),
        HttpSettings::default(),
    )
    .rest(Router::new().route("/work", get(downstream_traceparent)))
    .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let _guard = shutdown.clone().drop_guard();
    let settings = HttpSettings::default().with_shutdown_grace(Duration::from_secs(1));
    tokio::spawn(
        async move { switchboard_runtime::serve(listener, app, shutdown, &settings).await },
    );
    let http = reqwest::Client::new();

    // With a caller's context: same trace, this hop's span as the downstream parent.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let sent = http
        .get(format!("{base}/work"))
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .header("tracestate", "vendor=abc")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (sent_trace, hop_span) = ids(&sent);
    assert_eq!(sent_trace, trace);
    assert_ne!(hop_span, caller_span);
    assert!(sent.ends_with("-01"), "sampled: {sent}");
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("calling downstream"))
        .expect("the warning was logged");
    assert!(line.contains(&format!("trace_id={trace}")), "{line}");
    assert!(
        line.contains(r#"http_request{service="trace-test""#),
        "{line}"
    );

    // Without one (or with a malformed one): a new trace, still named on the log line.
    for header in [None, Some("00-not-a-trace-01")] {
        let mut request = http.get(format!("{base}/work"));
        if let Some(value) = header {
            request = request.header("traceparent", value);
        }
        let sent = request.send().await.unwrap().text().await.unwrap();
        let (new_trace, _) = ids(&sent);
        assert_ne!(new_trace, trace);
        assert!(
            logs.text().contains(&format!("trace_id={new_trace}")),
            "{}",
            logs.text()
        );
    }

    // Probes are not traced, whatever they carry.
    let probe_trace = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let health = http
        .get(format!("{base}/health"))
        .header("traceparent", format!("00-{probe_trace}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());

    // The exported request span: child of the caller's span, with the hosted service.
    let flushing = telemetry.clone();
    tokio::task::spawn_blocking(move || flushing.flush())
        .await
        .unwrap()
        .unwrap();
    let span = receiver
        .wait_for(Duration::from_secs(10), |s| {
            s.name == "http_request" && s.trace_id == trace
        })
        .await
        .expect("the request's span was exported");
    assert_eq!(span.parent_span_id, caller_span);
    assert_eq!(span.span_id, hop_span);
    assert_eq!(span.service_name, "trace-test");
    assert_eq!(span.attribute("service"), Some("trace-test"));
    assert_eq!(span.attribute("matched_path"), Some("/work"));
    assert_eq!(span.attribute("method"), Some("GET"));
    assert!(span.events.iter().any(|e| e == "calling downstream"));
    assert!(
        receiver.spans().iter().all(|s| s.trace_id != probe_trace),
        "a probe was traced"
    );
}
