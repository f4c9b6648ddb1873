//! What the gateway does per `tools/call` without the network, step by step.
//!
//! `bench/run.sh` scenario 1 measures the gateway's hop end to end: its added p50 and CPU per
//! call include HTTP on both sides, tokio's tasks and the kernel. These micro-benchmarks
//! measure only the gateway's own work on one call, with the functions its request path calls
//! (`switchboard_gateway::hop`), in order:
//!
//! 1. the client's POST body: envelope first, then a `CallToolRequest` (`endpoint::decode`);
//! 2. the route: the current catalog, the tool's route, its original name, its metrics;
//! 3. the upstream request: `_meta` rewritten (caller named, trace context, progress token),
//!    a fresh id, encoded (`gateway::calls::name_in`, `upstream::exchange::encode_request`);
//! 4. the upstream's answer, plain JSON or an SSE stream, read and parsed
//!    (`upstream::exchange::Direct::read_answer`);
//! 5. the answer to the client, as JSON or as an SSE event (`endpoint::answer`).
//!
//! "whole hop" runs 1-5 on one call. The "rmcp parse" rows are the generic parses the gateway's
//! quick paths replace, measured alongside for reference.
//!
//! ```sh
//! cargo bench -p switchboard-gateway --bench hop              # the full measurement
//! cargo bench -p switchboard-gateway --bench hop -- --quick   # a quick look
//! ```

use std::{collections::HashMap, hint::black_box, sync::Arc};

use arc_swap::ArcSwap;
use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::header::CONTENT_TYPE;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientJsonRpcMessage, ClientRequest, GetMeta,
    JsonRpcMessage, NumberOrString, ProgressToken, RequestId, RequestMetaObject,
    ServerJsonRpcMessage, ServerResult,
};
use switchboard_gateway::{
    catalog::{Catalog, ToolRoute},
    hop::{
        Direct, Exchange, Link, answer_message, answerable, decode, encode_request, json_response,
        name_in, sse_event,
    },
    metrics::GatewayMetrics,
    naming,
    sessions::Sessions,
    upstream::handler::Routes,
};
use switchboard_protocol::mcp_trace;

/// A client's `tools/call` as rmcp's client sends it: a progress token and the caller's trace
/// context in `_meta`.
const CLIENT_CALL: &[u8] = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"progressToken":7,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},"name":"get_current_time","arguments":{"timezone":"UTC"}}}"#;

/// The time-client's result of that call (text and structured content).
const TOOL_RESULT: &str = r#"{"content":[{"type":"text","text":"{\"timezone\":\"UTC\",\"datetime\":\"2026-12-07T12:00:00+00:00\",\"utc_offset\":\"+00:00\",\"day_of_week\":\"Monday\",\"is_dst\":false}"}],"structuredContent":{"timezone":"UTC","datetime":"2026-12-07T12:00:00+00:00","utc_offset":"+00:00","day_of_week":"Monday","is_dst":false},"isError":false}"#;

/// The first id of the gateway's direct path (`upstream::exchange`).
const UPSTREAM_ID: i64 = 1 << 40;

/// The upstream's answer as plain JSON.
fn json_answer() -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{UPSTREAM_ID},"result":{TOOL_RESULT}}}"#
    ))
}

/// The same answer as rmcp's server streams it: a priming event, then the message.
fn sse_answer() -> Bytes {
    Bytes::from(format!(
        "id: 0\nretry: 3000\ndata: \n\nid: 1\ndata: {{\"jsonrpc\":\"2.0\",\"id\":{UPSTREAM_ID},\"result\":{TOOL_RESULT}}}\n\n"
    ))
}

/// A catalog of three upstreams (the time-client, the code-executor, one with 40 tools), with
/// public names from the gateway's naming rule, swapped in as the gateway holds it.
fn catalog() -> ArcSwap<Catalog> {
    let metrics = GatewayMetrics::register(&switchboard_runtime::Metrics::new("mcp-server"));
    let many: Vec<String> = (0..40).map(|i| format!("tool_{i:02}")).collect();
    let offers: Vec<(&str, Vec<&str>)> = vec![
        ("time-client", vec!["get_current_time", "convert_time"]),
        ("code-executor", vec!["execute_code", "install_package"]),
        ("everything", many.iter().map(String::as_str).collect()),
    ];
    let (public, _renamed) = naming::assign(&offers);
    let mut catalog = Catalog::default();
    for (upstream, ((upstream_name, names), public)) in offers.iter().zip(&public).enumerate() {
        for (original, name) in names.iter().zip(public) {
            catalog.tool_routes.insert(
                name.clone(),
                ToolRoute {
                    upstream,
                    original: (*original).to_owned().into(),
                    metrics: metrics.tool(name, upstream_name),
                    cache: Default::default(),
                    execution: None,
                },
            );
        }
    }
    ArcSwap::from_pointee(catalog)
}

/// Step 1: the client's body to its id, call and `_meta`, as the endpoint reads it.
fn client_request(body: &[u8]) -> (RequestId, CallToolRequestParams, RequestMetaObject) {
    match decode(body) {
        Ok(JsonRpcMessage::Request(mut request)) if answerable(&request.request, &[]) => {
            // The endpoint moves `_meta` into the handler's context (`endpoint::Inner::answer`).
            let meta = std::mem::take(request.request.get_meta_mut());
            match request.request {
                ClientRequest::CallToolRequest(call) => (request.id, call.params, meta),
                _ => panic!("the benchmark's body is a tools/call"),
            }
        }
        _ => panic!("the benchmark's body decodes to a request the endpoint answers"),
    }
}

/// Step 2: the route of the call's tool in the current catalog; the call gets the upstream's
/// name for it, and the tool's metrics count it (the gateway does that when the call ends).
fn route(catalog: &ArcSwap<Catalog>, params: &mut CallToolRequestParams) -> usize {
    let catalog = catalog.load_full();
    let route = catalog
        .tool_routes
        .get(params.name.as_ref())
        .expect("the benchmark's tool is in the catalog");
    params.name = route.original.clone();
    route.metrics.record("ok", 0.000_4);
    route.upstream
}

/// Step 3: the upstream request's body, for a client that sent `client_meta`.
fn upstream_request(
    mut params: CallToolRequestParams,
    client_meta: &RequestMetaObject,
    number: i64,
) -> Vec<u8> {
    // No authenticated caller (the bench gateways' default): whatever the client claimed
    // under the on-behalf-of key is removed.
    name_in(None, &mut params.meta);
    let mut request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    // The caller's trace context is read for the call's span (`mcp_trace::tool_call_span`)
    // and a span context goes on in the upstream request (`mcp_trace::inject_request`). With no
    // tracing subscriber here the span itself is not made; the caller's context stands in.
    if let Some(context) = mcp_trace::extract(client_meta) {
        mcp_trace::inject_context(request.get_meta_mut(), &context);
    }
    request
        .get_meta_mut()
        .set_progress_token(ProgressToken(NumberOrString::Number(number)));
    encode_request(&RequestId::Number(number), &request).expect("a tool call encodes")
}

/// What reading an upstream's answer needs: the direct path of one upstream session.
struct Upstream {
    direct: Direct,
    link: Arc<Link>,
    routes: Routes,
    /// The request the answers answer (its kind decides how they are parsed).
    request: ClientRequest,
}

impl Upstream {
    fn new() -> Self {
        let client = reqwest::Client::new();
        Self {
            direct: Direct::new("time-client".into(), "http://127.0.0.1:8003/mcp", client),
            link: Arc::new(
                Link::new(Some("session".into()), HashMap::new()).expect("valid headers"),
            ),
            routes: Routes::new("time-client".into(), Arc::new(Sessions::default())),
            request: ClientRequest::CallToolRequest(CallToolRequest::new(
                CallToolRequestParams::new("get_current_time"),
            )),
        }
    }

    /// Step 4: read `body` (of `content_type`) as the answer to the request with the
    /// direct path's first id. The body is in memory, so the read completes on its first poll.
    fn answer(&self, body: Bytes, content_type: &'static str) -> ServerResult {
        let response = http::Response::builder()
            .header(CONTENT_TYPE, content_type)
            .body(reqwest::Body::from(body))
            .expect("a valid response");
        let id = RequestId::Number(UPSTREAM_ID);
        let read = self
            .direct
            .read_answer(&self.link, &id, &self.request, response, &self.routes);
        match read.now_or_never() {
            Some(Exchange::Answered(Ok(result))) => result,
            _ => panic!("an answer held in memory is read at once"),
        }
    }
}

/// Steps 1-5 on one call: the client's body in, the answer to the client out.
fn whole_hop(
    catalog: &ArcSwap<Catalog>,
    upstream: &Upstream,
    answer: &Bytes,
    content_type: &'static str,
) -> usize {
    let (id, mut params, meta) = client_request(CLIENT_CALL);
    route(catalog, &mut params);
    let body = upstream_request(params, &meta, UPSTREAM_ID);
    let result = upstream.answer(answer.clone(), content_type);
    let response = json_response(&answer_message(id, Ok(result)));
    body.len() + usize::from(response.status().is_success())
}

fn benches(c: &mut Criterion) {
    // A runtime to enter, though nothing here should need one: reading an SSE answer spawns a
    // task only when the stream goes on after the answer, which these streams do not.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let _entered = runtime.enter();
    let catalog = catalog();
    let upstream = Upstream::new();
    let (client_id, params, meta) = client_request(CLIENT_CALL);
    let sent = upstream_request(params.clone(), &meta, UPSTREAM_ID);
    assert!(
        String::from_utf8_lossy(&sent).contains("traceparent"),
        "the upstream request carries a trace context"
    );
    let (json, sse) = (json_answer(), sse_answer());
    let result = upstream.answer(json.clone(), "application/json");

    let mut group = c.benchmark_group("1 client request");
    group.bench_function("decode (gateway: envelope, then CallToolRequest)", |b| {
        b.iter(|| client_request(black_box(CLIENT_CALL)))
    });
    group.bench_function("rmcp parse (reference)", |b| {
        b.iter(|| serde_json::from_slice::<ClientJsonRpcMessage>(black_box(CLIENT_CALL)))
    });
    group.finish();

    c.bench_function("2 route/catalog lookup, original name, metrics", |b| {
        b.iter_batched_ref(
            || params.clone(),
            |params| route(&catalog, params),
            BatchSize::SmallInput,
        )
    });

    c.bench_function("3 upstream request/rewrite _meta and id, encode", |b| {
        b.iter_batched(
            || params.clone(),
            |params| upstream_request(params, &meta, UPSTREAM_ID),
            BatchSize::SmallInput,
        )
    });

    let mut group = c.benchmark_group("4 upstream answer");
    group.bench_function("JSON (gateway)", |b| {
        b.iter(|| upstream.answer(black_box(json.clone()), "application/json"))
    });
    group.bench_function("SSE (gateway)", |b| {
        b.iter(|| upstream.answer(black_box(sse.clone()), "text/event-stream"))
    });
    group.bench_function("JSON, rmcp parse (reference)", |b| {
        b.iter(|| serde_json::from_slice::<ServerJsonRpcMessage>(black_box(&json)))
    });
    group.finish();

    let mut group = c.benchmark_group("5 client answer");
    group.bench_function("JSON response", |b| {
        b.iter_batched(
            || result.clone(),
            |result| json_response(&answer_message(client_id.clone(), Ok(result))),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("SSE event", |b| {
        b.iter_batched(
            || result.clone(),
            |result| sse_event(&answer_message(client_id.clone(), Ok(result))),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("whole hop");
    group.bench_function("upstream answers JSON", |b| {
        b.iter(|| whole_hop(&catalog, &upstream, &json, "application/json"))
    });
    group.bench_function("upstream answers SSE", |b| {
        b.iter(|| whole_hop(&catalog, &upstream, &sse, "text/event-stream"))
    });
    group.finish();
}

criterion_group!(hop, benches);
criterion_main!(hop);
