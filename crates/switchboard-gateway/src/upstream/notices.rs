//! What a client tells the gateway that concerns its own upstream sessions
//! ([`super::pool`]): the logging level it set, and that its roots changed. The gateway's
//! shared sessions are not told: it filters their log messages per client itself, and their
//! roots requests go to whichever client they are for.
#![allow(deprecated)] // Logging and roots are deprecated by SEP-2577 but still served.

use rmcp::model::{LoggingLevel, SetLevelRequestParams};

use super::{Owner, Session, Upstream};

impl Upstream {
    /// Tell `owner`'s own session the logging level its client set (`logging/setLevel`).
    pub async fn set_level(&self, owner: &Owner, level: LoggingLevel) {
        if !self.isolates_clients() {
            return; // The shared session's messages are filtered per client by the gateway.
        }
        if let Some(session) = self.current_session(owner) {
            self.tell_level(&session, level).await;
        }
    }

    pub(super) async fn tell_level(&self, session: &Session, level: LoggingLevel) {
        let peer = session.client.peer();
        if peer
            .peer_info()
            .is_none_or(|info| info.capabilities.logging.is_none())
        {
            return;
        }
        let request = peer.set_level(SetLevelRequestParams::new(level));
        match tokio::time::timeout(self.timing.connect_timeout, request).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(upstream = %self.name, %error, "logging level not set")
            }
            Err(_) => tracing::debug!(upstream = %self.name, "logging level not set in time"),
        }
    }

    /// Tell `owner`'s own session that its client's roots changed.
    pub async fn roots_changed(&self, owner: &Owner) {
        if !self.isolates_clients() {
            return;
        }
        if let Some(session) = self.current_session(owner)
            && let Err(error) = session.client.peer().notify_roots_list_changed().await
        {
            tracing::debug!(upstream = %self.name, %error, "roots change not passed on");
        }
    }
}
