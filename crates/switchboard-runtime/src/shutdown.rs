//! Shutdown plumbing: one root [`CancellationToken`] cancelled by SIGINT or SIGTERM.
//!
//! The binary creates the root token; each service gets a `child_token()`, so `switchboard up`
//! stops all services together while tests can stop one service alone.

use tokio_util::sync::CancellationToken;

/// Cancel `token` on the first SIGINT (Ctrl-C) or SIGTERM. A second signal is left to the
/// default handler only after the drain deadline of [`crate::http::serve`] has passed.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::warn!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
            _ = terminate => tracing::info!("SIGTERM received, shutting down"),
            _ = token.cancelled() => return,
        }
        token.cancel();
    });
}
