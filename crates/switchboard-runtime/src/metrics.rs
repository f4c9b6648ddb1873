//! Prometheus metrics: one registry per service, the HTTP request metrics, and `GET /metrics`.
//!
//! Why `prometheus-client` with an explicit registry rather than the `metrics` facade with a
//! global recorder: `switchboard up` runs five services in one process, and tests start several
//! services in one test binary. A global recorder would make every service's `/metrics` report
//! every other service's counters. A registry per service keeps each endpoint honest.
//!
//! Every series carries a constant `service` label.
//!
//! `GET /metrics` serves OpenMetrics text to clients that ask for it (Prometheus does) and the
//! Prometheus text format 0.0.4 to everyone else (`promtool check metrics`, curl); see
//! [`exposition`].

pub mod exposition;

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::{Metric, Registry},
};

/// Latency buckets in seconds: 50 µs to about 26 s, doubling. Wide on purpose: the same
/// histogram shape serves a 100 µs tool call and a 20 s sandbox run.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 20)
}

/// A latency histogram with [`latency_buckets`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRouteLabels {
    method: String,
    route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpRouteLabels>,
}

/// A service's metrics registry. Cheap to clone; services register their own families with
/// [`Metrics::register`] at build time.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_labels(
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Owned(service.to_owned()),
            )]
            .into_iter(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: HistogramFamily<HttpRouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests served, by method, route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head of HTTP requests, by method and route",
            http_duration.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                http_requests,
                http_duration,
            }),
        }
    }

    /// Register a metric (usually a `Family`) under `name`. Counters get `_total` appended
    /// on exposition.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        match self.inner.registry.lock() {
            Ok(mut registry) => registry.register(name, help, metric),
            Err(poisoned) => poisoned.into_inner().register(name, help, metric),
        }
    }

    /// The registry in Prometheus text format 0.0.4 (see [`exposition`]).
    pub fn encode_prometheus_text(&self) -> String {
        exposition::openmetrics_to_prometheus(&self.encode())
    }

    /// The registry in OpenMetrics text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = match self.inner.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }
}

/// `GET /metrics`: OpenMetrics when the `Accept` header asks for it, else Prometheus text.
pub(crate) async fn metrics_handler(
    State(metrics): State<Metrics>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(exposition::accepts_openmetrics);
    let (content_type, body) = if openmetrics {
        (exposition::OPENMETRICS_CONTENT_TYPE, metrics.encode())
    } else {
        (
            exposition::PROMETHEUS_TEXT_CONTENT_TYPE,
            metrics.encode_prometheus_text(),
        )
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
}

/// Middleware: count every request and time it to the response head.
pub(crate) async fn track(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            // Nested services (the MCP endpoint) have no matched path of their own.
            let path = request.uri().path();
            if path.starts_with("/mcp") {
                "/mcp".to_owned()
            } else {
                "unmatched".to_owned()
            }
        });
    let response = next.run(request).await;
    let elapsed = start.elapsed().as_secs_f64();
    metrics
        .inner
        .http_duration
        .get_or_create(&HttpRouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(elapsed);
    metrics
        .inner
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, http::Request, routing::get};
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    use super::*;

    async fn scrape(metrics: &Metrics, accept: Option<&str>) -> (String, String) {
        let app = Router::new()
            .route("/metrics", get(metrics_handler))
            .with_state(metrics.clone());
        let mut request = Request::get("/metrics");
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        let response = app
            .oneshot(request.body(Body::empty()).expect("valid request"))
            .await
            .expect("infallible");
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (content_type, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn openmetrics_for_prometheus_text_format_for_the_rest() {
        let metrics = Metrics::new("svc");
        let calls = Counter::<u64>::default();
        metrics.register("tool_calls", "Tool calls", calls.clone());
        calls.inc();

        let (content_type, body) = scrape(
            &metrics,
            Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
        )
        .await;
        assert!(content_type.starts_with("application/openmetrics-text"));
        assert!(body.contains("# TYPE tool_calls counter\n"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");

        let (content_type, body) = scrape(&metrics, None).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(
            body.contains("# HELP tool_calls_total Tool calls.\n"),
            "{body}"
        );
        assert!(body.contains("# TYPE tool_calls_total counter\n"), "{body}");
        assert!(
            body.contains("tool_calls_total{service=\"svc\"} 1\n"),
            "{body}"
        );
        assert!(!body.contains("# EOF"), "{body}");
    }
}
