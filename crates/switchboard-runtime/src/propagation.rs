//! W3C trace context on HTTP: the `traceparent` and `tracestate` headers, in and out.
//!
//! Every Switchboard span is also an OpenTelemetry span (see [`crate::telemetry`]), so it has a
//! trace id and a span id even when nothing is exported. These helpers move that context across
//! an HTTP hop:
//!
//! - in: [`adopt_remote_parent`] makes a request's span a child of the caller's span named in the
//!   incoming headers, and records the span's `trace_id` field so every log line of the request
//!   carries it ([`crate::http::ServiceApp`] does this for every request);
//! - out: [`inject`] / [`headers`] write the current span's context into an outgoing request's
//!   headers (reqwest: `.headers(propagation::headers())`; hyper: `inject(req.headers_mut())`).
//!
//! MCP requests carry the same context in `params._meta` instead; see
//! `switchboard_protocol::mcp_trace`.
//!
//! Without the OpenTelemetry layer installed (a test that never called
//! [`crate::telemetry::init`]) spans have no context: nothing is injected, nothing is recorded,
//! nothing fails.

use http::HeaderMap;
use opentelemetry::{
    Context,
    propagation::TextMapPropagator,
    trace::{TraceContextExt, TraceId},
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Name of the span field that holds the trace id (32 lowercase hex digits). Spans that want it
/// in their log lines declare it empty (`trace_id = tracing::field::Empty`) and call
/// [`record_trace_id`].
pub const TRACE_ID_FIELD: &str = "trace_id";

/// The caller's span context from `traceparent`/`tracestate`, if the headers carry a valid one.
/// A malformed `traceparent` is ignored (the request starts a new trace), as the W3C
/// specification asks.
pub fn extract(headers: &HeaderMap) -> Option<Context> {
    if !headers.contains_key("traceparent") {
        return None; // the common case without a caller's context: skip the parser
    }
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// Make `span` a child of the caller's span named in `headers` (when there is one), then record
/// its `trace_id` field. Call right after creating the span, before entering it.
pub fn adopt_remote_parent(span: &Span, headers: &HeaderMap) {
    if let Some(parent) = extract(headers) {
        // Fails only without the OpenTelemetry layer or for a disabled span: then there is no
        // trace to join, and the request is still served.
        let _ = span.set_parent(parent);
    }
    record_trace_id(span);
}

/// The trace id of `span`, if it has an OpenTelemetry context.
pub fn trace_id(span: &Span) -> Option<TraceId> {
    let id = span.context().span().span_context().trace_id();
    (id != TraceId::INVALID).then_some(id)
}

/// Record `span`'s trace id in its [`TRACE_ID_FIELD`] field (if the span declared one).
pub fn record_trace_id(span: &Span) {
    if let Some(id) = trace_id(span) {
        span.record(TRACE_ID_FIELD, tracing::field::display(id));
    }
}

/// Write the context of `span` into `headers` as `traceparent` (and `tracestate` when set),
/// replacing any already there.
pub fn inject_span(span: &Span, headers: &mut HeaderMap) {
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// Write the current span's context into `headers` (an outgoing request's).
pub fn inject(headers: &mut HeaderMap) {
    inject_span(&Span::current(), headers);
}

/// The current span's context as headers, for clients that take a header map
/// (`reqwest::RequestBuilder::headers`). Empty without a current span.
pub fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject(&mut headers);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_only_valid_traceparents() {
        let mut headers = HeaderMap::new();
        assert!(extract(&headers).is_none());
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("header value"),
        );
        let context = extract(&headers).expect("valid traceparent");
        assert_eq!(
            context.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(context.span().span_context().is_remote());
        headers.insert(
            "traceparent",
            "00-zz-00f067aa0ba902b7-01".parse().expect("header value"),
        );
        assert!(extract(&headers).is_none(), "malformed: a new trace");
        headers.insert(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
                .parse()
                .expect("header value"),
        );
        assert!(extract(&headers).is_none(), "all-zero trace id is invalid");
    }

    #[test]
    fn without_the_layer_nothing_is_injected() {
        let span = tracing::info_span!("no_subscriber");
        let mut headers = HeaderMap::new();
        inject_span(&span, &mut headers);
        assert!(headers.is_empty());
        assert!(trace_id(&span).is_none());
    }
}
