//! Readiness and `/health` detail: the gateway and the LLM.
//!
//! The middleware is ready when the gateway answers `tools/list`: without it no tool can be
//! called. The LLM is reported but does not decide readiness — without one the offline
//! planner answers, and with a broken one `POST /execute` and `GET /tools` still work (and
//! every replica would be equally unready, which helps nobody). The LLM probe lists models
//! (no tokens spent) and is cached for [`LLM_PROBE_TTL`] so frequent probes do not hammer a
//! paid API.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use serde_json::json;
use switchboard_runtime::{DependencyStatus, Readiness, health::ReadinessReport};
use tokio::sync::Mutex;

use crate::{planner, state::Shared};

/// How long an LLM probe result is reused.
pub const LLM_PROBE_TTL: Duration = Duration::from_secs(10);

/// The last LLM probe.
#[derive(Default)]
pub struct LlmProbe {
    last: Mutex<Option<(Instant, DependencyStatus)>>,
}

/// The middleware's [`Readiness`].
pub struct MiddlewareReadiness(pub Arc<Shared>);

impl Readiness for MiddlewareReadiness {
    fn check(&self) -> BoxFuture<'_, ReadinessReport> {
        Box::pin(async move {
            let (gateway, llm) = tokio::join!(gateway_status(&self.0), llm_status(&self.0));
            ReadinessReport {
                ready: gateway.ready,
                dependencies: vec![gateway, llm],
            }
        })
    }
}

async fn gateway_status(state: &Shared) -> DependencyStatus {
    let url = state.gateway.url();
    match state.gateway.list_tools(None).await {
        Ok(tools) => DependencyStatus::new(
            "gateway",
            true,
            json!({
                "url": url,
                "tools": tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(),
            }),
        ),
        Err(error) => DependencyStatus::new(
            "gateway",
            false,
            json!({ "url": url, "error": error.to_string() }),
        ),
    }
}

async fn llm_status(state: &Shared) -> DependencyStatus {
    let Some(llm) = &state.llm else {
        return DependencyStatus::new(
            "llm",
            true,
            json!({
                "mode": "offline_planner",
                "message": format!("no LLM configured; the offline planner answers. {}", planner::CONFIGURE_HINT),
            }),
        );
    };
    let mut last = state.llm_probe.last.lock().await;
    if let Some((at, status)) = last.as_ref()
        && at.elapsed() < LLM_PROBE_TTL
    {
        return status.clone();
    }
    let settings = llm.settings();
    let mut detail = json!({
        "mode": "llm",
        "provider": settings.provider.as_str(),
        "base_url": settings.base_url,
        "model": settings.model,
    });
    let ready = match llm.probe().await {
        Ok(message) => {
            detail["message"] = message.into();
            true
        }
        Err(error) => {
            detail["error"] = error.to_string().into();
            false
        }
    };
    let status = DependencyStatus::new("llm", ready, detail);
    *last = Some((Instant::now(), status.clone()));
    status
}
