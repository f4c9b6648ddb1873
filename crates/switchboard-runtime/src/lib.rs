//! What every Switchboard service shares, so that no service re-implements it.
//!
//! # Layout
//!
//! - [`config`]: layered configuration — command-line flag, then environment variable (both
//!   through clap), then a section of an optional TOML file, then the default. Errors name the
//!   setting and the accepted form in one line.
//! - [`auth`]: who is calling — bearer JWTs against a JWKS, named API keys — on every
//!   service's API, the Protected Resource Metadata, and the refusal to serve unauthenticated
//!   beyond loopback.
//! - [`audit`]: the audit log — one JSON line per tool call, execution, package request,
//!   approval, failed authentication or denial, to a rotated file or stdout, written off the
//!   request path; optionally fail-closed.
//! - [`client`]: the one outgoing HTTP client stack (reqwest on rustls): extra CA file,
//!   proxies from the environment, URL checks at start.
//! - [`telemetry`]: `tracing` subscriber set-up, human-readable or JSON logs; every span also
//!   an OpenTelemetry span, exported with OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`propagation`]: W3C `traceparent`/`tracestate` headers in (a request's span joins the
//!   caller's trace and records `trace_id`) and out (into outgoing requests' headers).
//! - [`shutdown`]: SIGINT/SIGTERM to a [`tokio_util::sync::CancellationToken`].
//! - [`http`]: assembling a service's router with the common endpoints and layers, and
//!   [`http::serve`], which drains in-flight requests within a deadline on shutdown.
//! - [`health`]: `GET /health` and `GET /ready` with per-dependency detail.
//! - [`metrics`]: a per-service Prometheus registry, the HTTP request metrics and `GET /metrics`.
//! - [`error`]: [`ApiError`], the one JSON error body of every REST endpoint, and the layer that
//!   gives axum's own rejections (404, 405, 413, bad JSON) that same shape.
//! - [`service`]: [`Service`], what each service crate implements so that the CLI and the
//!   test harness can configure and serve any of them the same way.
//! - [`tls`]: serving HTTPS, and client certificates (mutual TLS) as identities.
//! - [`watched`]: a settings file reread when it changes (API keys, the access policy).
//! - [`testing`]: test support for every crate's tests: an OTLP/HTTP receiver that collects
//!   exported spans.
//!
//! A service crate builds its REST routes and MCP service, hands them to [`http::ServiceApp`],
//! and calls [`http::serve`] on a listener its caller bound. Tests bind `127.0.0.1:0`.

pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod propagation;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
pub mod tls;
pub mod watched;

pub use error::{ApiError, Error};
pub use health::{DependencyStatus, Readiness};
pub use http::{HttpSettings, ServiceApp, serve};
pub use metrics::Metrics;
pub use service::Service;

/// Lower-case hexadecimal of `bytes` (digests in key files, audit records, manifests).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}
