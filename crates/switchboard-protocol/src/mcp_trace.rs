//! W3C trace context across MCP: `traceparent` and `tracestate` in a request's `params._meta`.
//!
//! MCP messages on one Streamable HTTP session share HTTP connections and a session task, so
//! the HTTP headers are the wrong carrier for a tool call's context: the MCP specification
//! (SEP-414) and the OpenTelemetry MCP semantic conventions put it in `params._meta`, which
//! rmcp exposes as [`RequestMetaObject`]. Both sides are here:
//!
//! - client: [`inject`] (or [`with_trace_context`]) writes the current span's context into the
//!   params of an outgoing request (`tools/call`, `tools/list`, ...) just before sending it;
//!   [`inject_request`] does the same for a whole `ClientRequest` being forwarded;
//! - server: [`tool_call_span`] builds the `mcp_tool_call{service, tool, trace_id}` span of an
//!   incoming call, to `.instrument()` the handler with. Its parent is the caller's span named
//!   in `_meta`; without one, the `http_request` span of the POST that carried the call (which
//!   itself joined a `traceparent` header, see `switchboard_runtime::propagation`).
//!
//! Wiring, in an rmcp `ServerHandler` that uses `#[tool_handler]` (the macro then keeps this
//! `call_tool` instead of generating its own):
//!
//! ```text
//! async fn call_tool(&self, request: CallToolRequestParams, context: RequestContext<RoleServer>)
//!     -> Result<CallToolResponse, ErrorData> {
//!     let span = mcp_trace::tool_call_span(SERVICE, &request.name, &context);
//!     let call = ToolCallContext::new(self, request, context);
//!     self.tool_router.call(call).instrument(span).await
//! }
//! ```

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TraceId},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rmcp::{
    ErrorData, RoleServer,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, GetMeta, RequestMetaObject, RequestParamsMeta,
    },
    service::RequestContext,
};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Write `context` into `meta` as `traceparent` (and `tracestate` when set), replacing any
/// values already there (a forwarded request gets this hop's span as its parent).
pub fn inject_context(meta: &mut RequestMetaObject, context: &Context) {
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(context, &mut MetaInjector(meta));
    }
}

/// Write the current span's context into the `_meta` of request `params`.
pub fn inject<P: RequestParamsMeta>(params: &mut P) {
    let context = Span::current().context();
    if context.span().span_context().is_valid() {
        inject_context(params.meta_or_default(), &context);
    }
}

/// Write the current span's context into the `_meta` of a whole request (`ClientRequest`,
/// `ServerRequest`), whatever its kind. rmcp merges this envelope-level `_meta` over the
/// params' own when sending and lets it win on conflicts, so a request forwarded with the
/// caller's `_meta` still goes out with this hop's span as the parent (the gateway's case).
pub fn inject_request<R: GetMeta<Metadata = RequestMetaObject>>(request: &mut R) {
    let context = Span::current().context();
    if context.span().span_context().is_valid() {
        inject_context(request.get_meta_mut(), &context);
    }
}

/// [`inject`] for a builder chain: `with_trace_context(CallToolRequestParams::new(name))`.
pub fn with_trace_context<P: RequestParamsMeta>(mut params: P) -> P {
    inject(&mut params);
    params
}

/// The caller's span context from `_meta`, if it carries a valid `traceparent`.
pub fn extract(meta: &RequestMetaObject) -> Option<Context> {
    meta.get_traceparent()?;
    let context = TraceContextPropagator::new().extract(&MetaExtractor(meta));
    context.span().span_context().is_valid().then_some(context)
}

/// The span of one incoming `tools/call`: `mcp_tool_call{service, tool, trace_id}`.
///
/// - `_meta` names a caller's span in the trace of the HTTP request (the caller sent the same
///   context in both), or names none: the span is a child of the `http_request` span, so log
///   lines show both (method, request id, tool).
/// - `_meta` names a caller's span of another trace: the span joins that trace (its
///   OpenTelemetry parent is the caller's span) and, not being a child of the HTTP request's
///   span in the log either, records the request's `request_id` itself.
/// - Outside a `switchboard_runtime::http::ServiceApp` (no request span in the HTTP request's
///   extensions): a child of the current span.
///
/// Its `trace_id` field holds the trace id, so every log line of the call carries it.
pub fn tool_call_span(
    service: &'static str,
    tool: &str,
    context: &RequestContext<RoleServer>,
) -> Span {
    let parts = context.extensions.get::<http::request::Parts>();
    let http_span = parts.and_then(|p| p.extensions.get::<Span>());
    let remote = extract(&context.meta);
    let joins_http = match (&remote, http_span) {
        (Some(remote), Some(http)) => trace_id_of(&http.context()) == trace_id_of(remote),
        (None, Some(_)) => true,
        (_, None) => false,
    };
    let parent = if joins_http {
        http_span.and_then(Span::id)
    } else if remote.is_some() {
        None
    } else {
        Span::current().id()
    };
    let span = tracing::info_span!(
        parent: parent,
        "mcp_tool_call",
        service,
        tool,
        trace_id = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    if let (false, Some(remote)) = (joins_http, remote) {
        // Fails only without the OpenTelemetry layer: then there is no trace to join.
        let _ = span.set_parent(remote);
        if let Some(id) = parts
            .and_then(|p| p.headers.get("x-request-id"))
            .and_then(|v| v.to_str().ok())
        {
            span.record("request_id", id);
        }
    }
    let trace_id = trace_id_of(&span.context());
    if trace_id != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// Run a tool call through `handler`'s router inside its [`tool_call_span`]: the body of a
/// traced `ServerHandler::call_tool`.
pub async fn call_tool<S: Send + Sync + 'static>(
    service: &'static str,
    router: &ToolRouter<S>,
    handler: &S,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let span = tool_call_span(service, &request.name, &context);
    router
        .call(ToolCallContext::new(handler, request, context))
        .instrument(span)
        .await
}

fn trace_id_of(context: &Context) -> TraceId {
    context.span().span_context().trace_id()
}

/// `_meta` as an OpenTelemetry carrier (writes).
struct MetaInjector<'a>(&'a mut RequestMetaObject);

impl Injector for MetaInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.0.set_traceparent(value),
            // The propagator writes an empty state when the span has none: W3C trace context
            // leaves such a `tracestate` out, and a forwarded request must not keep the one
            // it came with (it belongs to the caller's span).
            "tracestate" if value.is_empty() => {
                self.0.remove("tracestate");
            }
            "tracestate" => self.0.set_tracestate(value),
            // TraceContextPropagator writes only the two keys above.
            _ => {}
        }
    }
}

/// `_meta` as an OpenTelemetry carrier (reads).
struct MetaExtractor<'a>(&'a RequestMetaObject);

impl Extractor for MetaExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.0.get_traceparent(),
            "tracestate" => self.0.get_tracestate(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::CallToolRequestParams;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn meta_round_trip() {
        let mut meta = RequestMetaObject::new();
        meta.set_traceparent(TRACEPARENT);
        meta.set_tracestate("vendor=abc");
        let context = extract(&meta).expect("valid traceparent");
        let span_context = context.span().span_context().clone();
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span_context.trace_state().header(), "vendor=abc");

        let mut params = CallToolRequestParams::new("get_current_time");
        inject_context(params.meta_or_default(), &context);
        assert_eq!(params.traceparent(), Some(TRACEPARENT));
        assert_eq!(params.tracestate(), Some("vendor=abc"));
    }

    #[test]
    fn envelope_meta_wins_over_the_forwarded_params_meta() {
        use rmcp::model::{CallToolRequest, ClientRequest};
        use tracing_subscriber::layer::SubscriberExt;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "test");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::with_default(subscriber, || {
            let mut params = CallToolRequestParams::new("get_current_time");
            params.set_traceparent(TRACEPARENT); // the caller's, as forwarded
            let mut request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            let hop = tracing::info_span!("gateway_hop");
            hop.in_scope(|| inject_request(&mut request));
            let sent = serde_json::to_value(&request).expect("serializes");
            let traceparent = sent["params"]["_meta"]["traceparent"]
                .as_str()
                .expect("traceparent in _meta");
            let hop_context = hop.context();
            let hop_span = hop_context.span();
            let hop_ids = hop_span.span_context();
            assert_eq!(
                traceparent,
                format!("00-{}-{}-01", hop_ids.trace_id(), hop_ids.span_id())
            );
        });
    }

    /// A span without trace state sends no `tracestate` (not an empty one), and drops one a
    /// forwarded request carried.
    #[test]
    fn no_trace_state_no_tracestate_key() {
        let mut incoming = RequestMetaObject::new();
        incoming.set_traceparent(TRACEPARENT);
        let context = extract(&incoming).expect("valid traceparent");
        let mut forwarded = RequestMetaObject::new();
        forwarded.set_tracestate("caller=1");
        inject_context(&mut forwarded, &context);
        assert_eq!(forwarded.get_traceparent(), Some(TRACEPARENT));
        assert!(!forwarded.contains_key("tracestate"), "{forwarded:?}");
    }

    #[test]
    fn invalid_or_missing_traceparent_is_no_context() {
        let mut meta = RequestMetaObject::new();
        assert!(extract(&meta).is_none());
        meta.set_traceparent("garbage");
        assert!(extract(&meta).is_none());
    }

    #[test]
    fn without_a_span_context_nothing_is_injected() {
        let params = with_trace_context(CallToolRequestParams::new("x"));
        assert!(params.meta.is_none());
    }
}
