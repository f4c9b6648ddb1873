//! The upstream sessions of clients seen from the gateway (see `crate::upstream::pool`): closed
//! when their client session ends, swept when their client is gone or idle, and told what
//! their client tells the gateway that concerns them (its logging level, its roots).
#![allow(deprecated)] // Logging is deprecated by SEP-2577 but still part of the protocol.

use std::{sync::Arc, time::Duration};

use rmcp::model::LoggingLevel;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use crate::upstream::Owner;

/// Longest time between sweeps; shorter with a shorter session idle timeout.
const SWEEP_MAX: Duration = Duration::from_secs(5);
/// Shortest time between sweeps.
const SWEEP_MIN: Duration = Duration::from_millis(50);

impl Gateway {
    /// Client session `id` ended (its `DELETE`): close its upstream sessions now.
    pub fn end_session(&self, id: &Arc<str>) {
        let owner = Owner::Session(id.clone());
        for upstream in &self.inner.upstreams {
            upstream.end(&owner);
        }
        self.inner.sessions.remove(id);
        self.drop_own(&owner);
    }

    /// Close, every so often, the upstream sessions whose client session is gone (the
    /// gateway expired it after `idle` without a request) and those of callers without a
    /// session unused for `idle`; forget the logging levels of client sessions gone.
    pub(super) async fn sweep_sessions(self, idle: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval((idle / 4).clamp(SWEEP_MIN, SWEEP_MAX));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            for upstream in &self.inner.upstreams {
                upstream.sweep();
            }
            self.inner.sessions.forget_closed();
        }
    }

    /// `owner` set its logging level: its own upstream sessions hear of it (the gateway
    /// filters what the shared sessions say itself).
    pub async fn set_level(&self, owner: &Owner, level: LoggingLevel) {
        let told = self
            .inner
            .upstreams
            .iter()
            .map(|u| u.set_level(owner, level));
        futures::future::join_all(told).await;
    }

    /// `owner`'s roots changed (`notifications/roots/list_changed`): its own upstream sessions
    /// hear of it, and ask it again when they care.
    pub async fn roots_changed(&self, owner: &Owner) {
        let told = self.inner.upstreams.iter().map(|u| u.roots_changed(owner));
        futures::future::join_all(told).await;
    }
}
