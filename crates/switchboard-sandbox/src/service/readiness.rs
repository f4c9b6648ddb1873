//! `/ready`, and the packages installed at start that it waits for.

use futures::future::BoxFuture;
use switchboard_protocol::sandbox::{InstallRequest, InstallStatus};
use switchboard_runtime::{DependencyStatus, Readiness, health::ReadinessReport};

use super::Sandbox;

impl Sandbox {
    /// Install the configured pins in the background, through the same checks as any request
    /// (already installed ones are answered at once); `/ready` waits for it.
    pub(super) fn start_preinstall(&self) {
        let sandbox = self.clone();
        tokio::spawn(async move {
            let mut done = Vec::new();
            for pin in &sandbox.inner.preinstall_pins {
                let request = InstallRequest {
                    package: pin.clone(),
                    version: None,
                };
                let outcome = sandbox.inner.packages.request(&request).await;
                if outcome.is_error() || outcome.status != InstallStatus::Installed {
                    tracing::error!(pin, status = ?outcome.status, reason = ?outcome.reason, "a preinstalled package was not installed");
                } else {
                    tracing::info!(pin, "preinstalled");
                }
                done.push(serde_json::json!({
                    "package": pin,
                    "status": outcome.status,
                    "reason": outcome.reason,
                }));
            }
            if let Ok(mut slot) = sandbox.inner.preinstall.lock() {
                *slot = Some(done);
            }
        });
    }
}

/// `/ready`: the pool can start interpreters; details of isolation and packages. Isolation
/// with accepted degraded layers is still ready (the operator chose it); its detail says
/// "degraded" for each.
pub(crate) struct SandboxReadiness(pub(super) Sandbox);

impl Readiness for SandboxReadiness {
    fn check(&self) -> BoxFuture<'_, ReadinessReport> {
        Box::pin(async move {
            let inner = &self.0.inner;
            let (ready, pool) = inner.pool.status();
            let preinstall = match inner.preinstall.lock() {
                Ok(done) => done.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            let preinstall_status = match preinstall {
                _ if inner.preinstall_pins.is_empty() => {
                    DependencyStatus::new("preinstall", true, "none configured")
                }
                None => DependencyStatus::new(
                    "preinstall",
                    false,
                    serde_json::json!({"installing": inner.preinstall_pins}),
                ),
                Some(done) => DependencyStatus::new("preinstall", true, done),
            };
            ReadinessReport::all(vec![
                preinstall_status,
                DependencyStatus::new("pool", ready, pool),
                DependencyStatus::new("isolation", true, inner.isolation.clone()),
                DependencyStatus::new("packages", true, inner.packages.describe()),
                DependencyStatus::new("sessions", true, inner.sessions.describe()),
            ])
        })
    }
}
