//! `GET /health` (liveness) and `GET /ready` (readiness with per-dependency detail).
//!
//! Liveness says only that the process answers. Readiness asks the service's [`Readiness`]
//! implementation, which checks the dependencies (an upstream, the sandbox, the LLM) and
//! decides whether the service as a whole can do useful work; `/ready` answers 503 when not.

use std::{sync::Arc, time::Instant};

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use futures::future::BoxFuture;
use serde::Serialize;

/// The state of one dependency, as `/ready` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyStatus {
    pub name: String,
    pub ready: bool,
    /// Free-form detail: an address, an error message, a mode.
    pub detail: serde_json::Value,
}

impl DependencyStatus {
    pub fn new(name: impl Into<String>, ready: bool, detail: impl Into<serde_json::Value>) -> Self {
        Self {
            name: name.into(),
            ready,
            detail: detail.into(),
        }
    }
}

/// A service's answer to "are you ready?".
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessReport {
    pub ready: bool,
    pub dependencies: Vec<DependencyStatus>,
}

impl ReadinessReport {
    /// Ready when every dependency is ready (and when there are none).
    pub fn all(dependencies: Vec<DependencyStatus>) -> Self {
        let ready = dependencies.iter().all(|d| d.ready);
        Self {
            ready,
            dependencies,
        }
    }
    /// Ready when at least one dependency is ready.
    pub fn any(dependencies: Vec<DependencyStatus>) -> Self {
        let ready = dependencies.iter().any(|d| d.ready);
        Self {
            ready,
            dependencies,
        }
    }
}

/// Implemented by each service to report its readiness. Checks should be quick (they run on
/// every probe): report cached state where a live check would be slow.
pub trait Readiness: Send + Sync + 'static {
    fn check(&self) -> BoxFuture<'_, ReadinessReport>;
}

/// A service without dependencies is ready as soon as it serves.
pub struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn check(&self) -> BoxFuture<'_, ReadinessReport> {
        Box::pin(async { ReadinessReport::all(Vec::new()) })
    }
}

#[derive(Clone)]
pub(crate) struct HealthState {
    pub service: &'static str,
    pub version: &'static str,
    pub started: Instant,
    pub readiness: Arc<dyn Readiness>,
    /// Include the readiness report's dependencies in `/health` (still 200: liveness).
    pub details: bool,
}

pub(crate) async fn health(State(state): State<HealthState>) -> impl IntoResponse {
    let mut body = serde_json::json!({
        "status": "ok",
        "service": state.service,
        "version": state.version,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
    });
    if state.details {
        let report = state.readiness.check().await;
        body["ready"] = report.ready.into();
        body["dependencies"] = dependency_map(report.dependencies).into();
    }
    Json(body)
}

fn dependency_map(
    dependencies: Vec<DependencyStatus>,
) -> serde_json::Map<String, serde_json::Value> {
    dependencies
        .into_iter()
        .map(|d| {
            (
                d.name,
                serde_json::json!({ "ready": d.ready, "detail": d.detail }),
            )
        })
        .collect()
}

pub(crate) async fn ready(State(state): State<HealthState>) -> impl IntoResponse {
    let report = state.readiness.check().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let dependencies = dependency_map(report.dependencies);
    (
        status,
        Json(serde_json::json!({
            "status": if report.ready { "ready" } else { "not_ready" },
            "service": state.service,
            "dependencies": dependencies,
        })),
    )
}
