//! Test support shared by every crate's tests: an OTLP/HTTP trace receiver, and a log writer
//! that keeps what a subscriber writes.
//!
//! [`OtlpReceiver`] is a real collector endpoint on `127.0.0.1:0`: point a service's exporter
//! at [`OtlpReceiver::traces_url`] (`TelemetryOptions::with_otlp_traces_endpoint`, or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` for a child process), make requests, then wait for the
//! spans to arrive. It decodes the protobuf the exporter sends, so a test checks what a real
//! collector (Jaeger, Tempo, the OpenTelemetry Collector) would receive.
//!
//! Written by hand because it is a few lines on top of the generated OTLP types; running the
//! OpenTelemetry Collector binary in tests would need a download.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::hex;
use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
};
use prost::Message;
use tokio::{net::TcpListener, sync::watch};
use tokio_util::sync::{CancellationToken, DropGuard};

/// One exported span, with ids as lowercase hex (as in `traceparent`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReceivedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Span attributes, values rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Names of the span's events (log lines inside the span).
    pub events: Vec<String>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// An OTLP/HTTP (protobuf) trace receiver on loopback. Stops when dropped.
pub struct OtlpReceiver {
    traces_url: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    arrived: watch::Receiver<usize>,
    _stop: DropGuard,
}

#[derive(Clone)]
struct Sink {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    arrived: Arc<watch::Sender<usize>>,
}

impl OtlpReceiver {
    /// Bind `127.0.0.1:0` and serve `POST /v1/traces`.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let (sender, arrived) = watch::channel(0);
        let sink = Sink {
            spans: spans.clone(),
            arrived: Arc::new(sender),
        };
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(sink);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Ok(Self {
            traces_url: format!("http://{address}/v1/traces"),
            spans,
            arrived,
            _stop: stop.drop_guard(),
        })
    }

    /// The URL to export to, e.g. `http://127.0.0.1:41234/v1/traces`.
    pub fn traces_url(&self) -> &str {
        &self.traces_url
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait until a span matching `wanted` has arrived, at most `timeout`; `None` if none did.
    /// Wakes on every export, so it returns as soon as the span is there.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        wanted: impl Fn(&ReceivedSpan) -> bool,
    ) -> Option<ReceivedSpan> {
        let mut arrived = self.arrived.clone();
        let search = async {
            loop {
                if let Some(span) = self.spans().into_iter().find(|s| wanted(s)) {
                    return Some(span);
                }
                if arrived.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, search).await.ok().flatten()
    }
}

async fn receive(State(sink): State<Sink>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service_name = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    service_name: service_name.clone(),
                    attributes: attributes(&span.attributes),
                    events: span.events.into_iter().map(|e| e.name).collect(),
                });
            }
        }
    }
    let count = received.len();
    if let Ok(mut spans) = sink.spans.lock() {
        spans.extend(received);
    }
    sink.arrived.send_modify(|n| *n += count);
    // An empty ExportTraceServiceResponse: full success.
    (StatusCode::OK, Vec::new())
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// A log writer for `TelemetryOptions::with_writer` that keeps every byte written, so a test
/// can read the log lines of the requests it made.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The lines written so far that are JSON objects (what `LogFormat::Json` writes).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}
