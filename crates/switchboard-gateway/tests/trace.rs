//! Trace context through the gateway: a caller's `traceparent` in a tool call's `_meta` (MCP)
//! or in the HTTP headers (REST) becomes the trace of the gateway's spans, and the upstream's
//! `mcp_tool_call` span is a child of the gateway's, in the same trace, exported over OTLP.
//!
//! One test function: the subscriber is process-wide, and the OTLP receiver lives on this
//! test's runtime. The gateway and the time-client run in this process and export together;
//! the `service` attribute of each `mcp_tool_call` span says whose it is.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

use common::*;
use rmcp::model::RequestParamsMeta;
use serde_json::json;
use switchboard_protocol::mcp_client::{ConnectOptions, connect};
use switchboard_runtime::{
    telemetry::{self, LogFormat, TelemetryOptions},
    testing::{OtlpReceiver, ReceivedSpan},
};

const WAIT: Duration = Duration::from_secs(10);

/// The `mcp_tool_call` span of `service` in `trace_id`.
async fn tool_call(receiver: &OtlpReceiver, service: &str, trace_id: &str) -> ReceivedSpan {
    receiver
        .wait_for(WAIT, |s| {
            s.name == "mcp_tool_call"
                && s.trace_id == trace_id
                && s.attribute("service") == Some(service)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no mcp_tool_call span of {service} in trace {trace_id}; got {:#?}",
                receiver.spans()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_reaches_the_upstreams_tool_call_span() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let telemetry = telemetry::init(
        TelemetryOptions::new(LogFormat::Human, "warn", "gateway-trace-test")
            .with_otlp_traces_endpoint(receiver.traces_url()),
    )
    .unwrap();
    let time = time_client(any_port()).await;
    let gateway = gateway(config(vec![upstream("time-client", &time.mcp_url())])).await;
    gateway
        .wait_for("the time-client listed", |c| {
            c.tools.iter().any(|t| t.name == "get_current_time")
        })
        .await;

    // MCP: `traceparent` in `_meta`. The gateway's span is the caller's child; the
    // time-client's span is the gateway's child; one trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let client = connect(&gateway.mcp_url(), &ConnectOptions::default())
        .await
        .unwrap();
    let mut call = params("get_current_time", json!({"timezone": "Asia/Tokyo"}));
    call.set_traceparent(&format!("00-{trace}-{caller_span}-01"));
    let result = client.call_tool(call).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    telemetry.flush_async().await.unwrap();
    let at_gateway = tool_call(&receiver, "mcp-server", trace).await;
    assert_eq!(at_gateway.parent_span_id, caller_span);
    assert_eq!(at_gateway.attribute("tool"), Some("get_current_time"));
    let at_upstream = tool_call(&receiver, "time-client", trace).await;
    assert_eq!(
        at_upstream.parent_span_id, at_gateway.span_id,
        "the upstream's span is a child of the gateway's"
    );

    // REST: `traceparent` in the headers. The gateway's request span joins the trace and the
    // time-client's span is its child.
    let rest_trace = "0af7651916cd43dd8448eb211c80319c";
    let rest_caller = "b7ad6b7169203331";
    let answer = reqwest::Client::new()
        .post(format!("{}/api/tools/get_current_time", gateway.base()))
        .header("traceparent", format!("00-{rest_trace}-{rest_caller}-01"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    telemetry.flush_async().await.unwrap();
    let at_upstream = tool_call(&receiver, "time-client", rest_trace).await;
    let request = receiver
        .spans()
        .into_iter()
        .find(|s| s.span_id == at_upstream.parent_span_id)
        .expect("the upstream's parent span was exported");
    assert_eq!(request.name, "http_request");
    assert_eq!(request.trace_id, rest_trace);
    assert_eq!(request.parent_span_id, rest_caller);
    assert_eq!(request.attribute("service"), Some("mcp-server"));

    client.cancel().await.unwrap();
}
