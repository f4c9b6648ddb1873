//! Trace context through the time-client, the reference for every MCP service: a caller's
//! `traceparent` — in the tool call's `params._meta`, or only in the HTTP request's headers —
//! becomes the trace id of the server's `mcp_tool_call` span, of the call's log lines, and of
//! the span exported over OTLP/HTTP.
//!
//! One test function: the subscriber is process-wide, and the OTLP receiver lives on this
//! test's runtime.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::{collections::HashMap, time::Duration};

use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, RequestParamsMeta},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use switchboard_protocol::mcp_client::{ConnectOptions, McpClient, client_config, connect};
use switchboard_protocol::mcp_trace;
use switchboard_runtime::{
    telemetry::{self, LogFormat, TelemetryOptions},
    testing::{CapturedLogs, OtlpReceiver, ReceivedSpan},
};
use tracing::Instrument;

/// Trace ids on the `mcp_tool_call` spans of the "tool call answered" lines.
fn tool_call_trace_ids(logs: &CapturedLogs) -> Vec<String> {
    logs.json_lines()
        .iter()
        .filter(|line| line["message"] == "tool call answered")
        .filter_map(|line| {
            line["spans"]
                .as_array()?
                .iter()
                .find(|span| span["name"] == "mcp_tool_call")
                .and_then(|span| span["trace_id"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

const WAIT: Duration = Duration::from_secs(10);

async fn exported(receiver: &OtlpReceiver, name: &str, trace_id: &str) -> ReceivedSpan {
    receiver
        .wait_for(WAIT, |s| s.name == name && s.trace_id == trace_id)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no {name} span of trace {trace_id} exported; got {:#?}",
                receiver.spans()
            )
        })
}

/// An MCP session whose every HTTP request carries `traceparent` (a caller that propagates
/// context only in headers).
async fn connect_with_header(url: &str, traceparent: &str) -> McpClient {
    let headers = HashMap::from([("traceparent".parse().unwrap(), traceparent.parse().unwrap())]);
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(headers);
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    client_config("header-propagating-client")
        .serve(transport)
        .await
        .unwrap()
}

fn get_current_time() -> CallToolRequestParams {
    CallToolRequestParams::new("get_current_time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_trace_context_reaches_the_tool_call_span_and_its_log_lines() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let telemetry = telemetry::init(
        TelemetryOptions::new(
            LogFormat::Json,
            "info,switchboard_time=debug",
            "time-client",
        )
        .with_otlp_traces_endpoint(receiver.traces_url())
        .with_writer(move || writer.clone()),
    )
    .unwrap();
    assert_eq!(telemetry.service_name(), "time-client");

    let server = switchboard_testkit::spawn::<switchboard_time::TimeService>(
        switchboard_time::Config::default(),
    )
    .await;
    let client = connect(&server.mcp_url(), &ConnectOptions::default())
        .await
        .unwrap();

    // 1. `traceparent` in `_meta` only: the call joins the caller's trace, as a child of the
    //    caller's span, although its HTTP request started a trace of its own.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut params = get_current_time();
    params.set_traceparent(&format!("00-{trace}-{caller_span}-01"));
    let result = client.call_tool(params).await.unwrap();
    assert_ne!(result.is_error, Some(true));
    telemetry.flush_async().await.unwrap();
    let span = exported(&receiver, "mcp_tool_call", trace).await;
    assert_eq!(span.parent_span_id, caller_span);
    assert_eq!(span.attribute("tool"), Some("get_current_time"));
    assert_eq!(span.attribute("service"), Some("time-client"));
    assert_eq!(span.service_name, "time-client");
    assert!(
        span.attribute("request_id")
            .is_some_and(|id| !id.is_empty())
    );
    // The handler's own span is a child; log lines inside it are its events.
    let handler = exported(&receiver, "get_current_time", trace).await;
    assert_eq!(handler.parent_span_id, span.span_id);
    assert!(
        handler.events.iter().any(|e| e == "tool call answered"),
        "{handler:#?}"
    );
    assert_eq!(tool_call_trace_ids(&logs), [trace]);

    // 2. The client helper: inside a span of the caller, `mcp_trace::inject` sends that span's
    //    context, and the server's span is its child.
    let client_span = tracing::info_span!(target: "switchboard_test", "caller");
    let params = client_span.in_scope(|| mcp_trace::with_trace_context(get_current_time()));
    let sent = params.traceparent().expect("injected").to_owned();
    let (sent_trace, sent_span) = (&sent[3..35], &sent[36..52]);
    client
        .call_tool(params)
        .instrument(client_span.clone())
        .await
        .unwrap();
    drop(client_span);
    telemetry.flush_async().await.unwrap();
    let span = exported(&receiver, "mcp_tool_call", sent_trace).await;
    assert_eq!(span.parent_span_id, sent_span);
    let caller = exported(&receiver, "caller", sent_trace).await;
    assert_eq!(caller.span_id, sent_span);
    assert_eq!(
        tool_call_trace_ids(&logs).last().map(String::as_str),
        Some(sent_trace)
    );

    // 3. `traceparent` only in the HTTP headers: the request's span joins that trace and the
    //    tool call is a child of the request's span.
    let header_trace = "0af7651916cd43dd8448eb211c80319c";
    let header_span = "b7ad6b7169203331";
    let header_client = connect_with_header(
        &server.mcp_url(),
        &format!("00-{header_trace}-{header_span}-01"),
    )
    .await;
    header_client.call_tool(get_current_time()).await.unwrap();
    telemetry.flush_async().await.unwrap();
    let tool_span = exported(&receiver, "mcp_tool_call", header_trace).await;
    let request_spans: Vec<ReceivedSpan> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.name == "http_request" && s.trace_id == header_trace)
        .collect();
    let parent = request_spans
        .iter()
        .find(|s| s.span_id == tool_span.parent_span_id)
        .expect("the tool call's parent is an http_request span of the same trace");
    assert_eq!(parent.parent_span_id, header_span);
    assert_eq!(parent.attribute("matched_path"), Some("/mcp"));
    assert!(
        tool_span.attribute("request_id").is_none(),
        "shown by the parent instead"
    );
    assert_eq!(
        tool_call_trace_ids(&logs).last().map(String::as_str),
        Some(header_trace)
    );

    // Every line logged inside an HTTP request names the request's trace id.
    for line in logs.json_lines() {
        if let Some(request) = line["spans"]
            .as_array()
            .and_then(|spans| spans.iter().find(|s| s["name"] == "http_request"))
        {
            assert!(
                request["trace_id"]
                    .as_str()
                    .is_some_and(|id| id.len() == 32),
                "{line}"
            );
        }
    }
    header_client.cancel().await.unwrap();
    client.cancel().await.unwrap();
}
