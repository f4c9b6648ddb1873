//! Trace propagation across the whole system: one `POST /chat` with a caller's `traceparent`
//! is one trace. Its exported spans form one parent chain from the caller's span down through
//! middleware -> gateway -> code-executor -> sandbox (over HTTP headers at the first and last
//! hop, over MCP `params._meta` in between), the sandbox's execution log line carries its
//! trace id, and the LLM request carries a `traceparent` of the same trace.
//!
//! One test function: the subscriber is process-wide, and the OTLP receiver lives on this
//! test's runtime. Spans are captured by a real OTLP/HTTP receiver
//! (`switchboard_runtime::testing::OtlpReceiver`); every service runs in this process, so
//! spans tell their service by their `service` attribute.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::{Llm, System};
use switchboard_runtime::{
    telemetry::{self, LogFormat, TelemetryOptions},
    testing::{CapturedLogs, OtlpReceiver, ReceivedSpan},
};
use switchboard_testkit::Reply;

/// Longest wait for a span: above the exporter's batch delay (5 s), so a span that closes
/// after the flush arrives with the next batch.
const WAIT: Duration = Duration::from_secs(20);

/// The trace ids on the spans of a log line, by the service named on each span.
fn line_trace_ids(line: &Value) -> Vec<(String, String)> {
    line["spans"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .filter_map(|s| {
                    Some((
                        s["service"].as_str()?.to_owned(),
                        s["trace_id"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn span_where(
    receiver: &OtlpReceiver,
    what: &str,
    wanted: impl Fn(&ReceivedSpan) -> bool,
) -> ReceivedSpan {
    receiver
        .wait_for(WAIT, wanted)
        .await
        .unwrap_or_else(|| panic!("no span {what} was exported; got {:#?}", receiver.spans()))
}

/// Walk from `start` up its parents to the caller's span `root_parent`; every span on the way
/// must be exported and in `trace`. Returns the chain, `start` first.
async fn chain_up(
    receiver: &OtlpReceiver,
    start: ReceivedSpan,
    trace: &str,
    root_parent: &str,
) -> Vec<ReceivedSpan> {
    let mut chain = vec![start];
    loop {
        let last = chain.last().unwrap();
        assert_eq!(last.trace_id, trace, "{last:#?}");
        if last.parent_span_id == root_parent {
            return chain;
        }
        assert!(
            !last.parent_span_id.is_empty(),
            "{} is a root span: the chain from the caller is broken: {chain:#?}",
            last.name
        );
        assert!(chain.len() < 32, "no end to the chain: {chain:#?}");
        let parent_id = last.parent_span_id.clone();
        let parent = span_where(receiver, &format!("with id {parent_id}"), |s| {
            s.span_id == parent_id
        })
        .await;
        chain.push(parent);
    }
}

/// The services a chain passes through, callee first, each once.
fn services(chain: &[ReceivedSpan]) -> Vec<String> {
    let mut services: Vec<String> = Vec::new();
    for service in chain.iter().filter_map(|s| s.attribute("service")) {
        if services.last().map(String::as_str) != Some(service) {
            services.push(service.to_owned());
        }
    }
    services
}

fn describe(chain: &[ReceivedSpan]) -> String {
    chain
        .iter()
        .map(|s| format!("{}{{service={:?}}}", s.name, s.attribute("service")))
        .collect::<Vec<_>>()
        .join(" <- ")
}

/// POST a chat with `traceparent` (streamed: read the `done` event); the answer must have run
/// `print(1)`.
async fn chat(system: &System, traceparent: &str, message: &str, stream: bool) -> Value {
    let response = common::client()
        .post(format!("{}/chat", system.middleware))
        .header("traceparent", traceparent)
        .json(&json!({ "message": message, "stream": stream }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = if stream {
        let text = response.text().await.unwrap();
        let done = text
            .split("\n\n")
            .find(|event| event.lines().any(|l| l == "event: done"))
            .unwrap_or_else(|| panic!("no done event: {text}"));
        let data = done.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_str(data).unwrap()
    } else {
        response.json().await.unwrap()
    };
    let exec = common::call(&answer, "execute_code");
    assert_eq!(exec["is_error"], false, "{exec}");
    assert_eq!(exec["structured_content"]["stdout"], "1\n", "{exec}");
    answer
}

/// The sandbox's `/execute` request span of `trace`, and the chain from it up to the caller.
async fn sandbox_chain(
    receiver: &OtlpReceiver,
    trace: &str,
    caller_span: &str,
) -> Vec<ReceivedSpan> {
    let sandbox = span_where(
        receiver,
        "http_request{service=sandbox} of the trace",
        |s| {
            s.trace_id == trace
                && s.name == "http_request"
                && s.attribute("service") == Some("sandbox")
                && s.attribute("matched_path") == Some("/execute")
        },
    )
    .await;
    chain_up(receiver, sandbox, trace, caller_span).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_chat_is_one_trace_from_the_middleware_to_the_sandbox() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let telemetry = telemetry::init(
        TelemetryOptions::new(LogFormat::Json, "info,switchboard_sandbox=debug", "e2e")
            .with_otlp_traces_endpoint(receiver.traces_url())
            .with_writer(move || writer.clone()),
    )
    .unwrap();
    // The services on the way, the callee first (the gateway's service is `mcp-server`).
    let hops = [
        switchboard_sandbox::SERVICE,
        switchboard_code_executor::SERVICE,
        switchboard_gateway::SERVICE,
        switchboard_middleware::SERVICE,
    ];

    // 1. The offline planner (no LLM): "Execute: print(1)".
    let system = System::start(Llm::Offline).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let answer = chat(
        &system,
        &format!("00-{trace}-{caller}-01"),
        "Execute: print(1)",
        false,
    )
    .await;
    assert_eq!(answer["source"], "offline_planner");
    telemetry.flush_async().await.unwrap();
    let chain = sandbox_chain(&receiver, trace, caller).await;
    assert_eq!(services(&chain), hops, "{}", describe(&chain));
    // The middleware's request span is the chain's top, the direct child of the caller's.
    let top = chain.last().unwrap();
    assert_eq!(top.name, "http_request", "{}", describe(&chain));
    assert_eq!(top.attribute("matched_path"), Some("/chat"));
    // Each MCP server's tool call span is in the chain (propagated in `_meta`).
    for service in [
        switchboard_gateway::SERVICE,
        switchboard_code_executor::SERVICE,
    ] {
        assert!(
            chain.iter().any(|s| s.name == "mcp_tool_call"
                && s.attribute("service") == Some(service)
                && s.attribute("tool")
                    .is_some_and(|t| t.ends_with("execute_code"))),
            "no mcp_tool_call of {service} in {}",
            describe(&chain)
        );
    }
    // The sandbox ran the program on a task of its own, in the request's span: the execution
    // log line names the trace.
    let finished: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l["message"] == "program finished")
        .filter(|l| {
            line_trace_ids(l)
                .iter()
                .any(|(service, id)| service == "sandbox" && id == trace)
        })
        .collect();
    assert_eq!(finished.len(), 1, "{:#?}", logs.json_lines());
    assert_eq!(finished[0]["outcome"], "ok");
    drop(system);

    // 2. A scripted LLM asks for the program, streamed (the chat runs on a task of its own);
    //    the LLM requests carry the trace too.
    let system = System::start(Llm::OpenAi(vec![
        Reply::tools([("execute_code", json!({"code": "print(1)"}))]),
        Reply::text("It printed 1."),
    ]))
    .await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let caller = "b7ad6b7169203331";
    let answer = chat(
        &system,
        &format!("00-{trace}-{caller}-01"),
        "Run print(1)",
        true,
    )
    .await;
    assert_eq!(answer["source"], "llm");
    assert_eq!(answer["response"], "It printed 1.");
    telemetry.flush_async().await.unwrap();
    let chain = sandbox_chain(&receiver, trace, caller).await;
    assert_eq!(services(&chain), hops, "{}", describe(&chain));
    let requests = system.scripted().requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let traceparent = request
            .traceparent
            .as_deref()
            .unwrap_or_else(|| panic!("the LLM request carried no traceparent: {request:?}"));
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[1], trace, "{traceparent}");
        // The named parent is the middleware's llm_request span, under the chat's request.
        let llm = span_where(&receiver, &format!("with id {}", parts[2]), |s| {
            s.span_id == parts[2]
        })
        .await;
        assert_eq!(llm.name, "llm_request");
        assert_eq!(llm.attribute("provider"), Some("openai"));
        let up = chain_up(&receiver, llm, trace, caller).await;
        assert_eq!(services(&up), ["middleware"], "{}", describe(&up));
    }
    drop(system);
}
