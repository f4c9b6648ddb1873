//! Prometheus metrics: one registry per service, the HTTP request metrics, and `GET /metrics`.
//!
//! Why `prometheus-client` with an explicit registry rather than the `metrics` facade with a
//! global recorder: `switchboard up` runs five services in one process, and tests start several
//! services in one test binary. A global recorder would make every service's `/metrics` report
//! every other service's counters. A registry per service keeps each endpoint honest.
//!
//! Every series carries a constant `service` label.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
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

    /// The registry in Prometheus text exposition format.
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

/// `GET /metrics`.
pub(crate) async fn metrics_handler(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        metrics.encode(),
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
