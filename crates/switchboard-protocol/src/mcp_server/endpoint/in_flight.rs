//! The session requests the endpoint is answering, by session and request id, so that a
//! client's `notifications/cancelled` reaches the request it names.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use rmcp::model::{ClientNotification, RequestId};
use tokio_util::sync::CancellationToken;

type Key = (Arc<str>, RequestId);

#[derive(Default)]
pub(super) struct InFlight(Mutex<HashMap<Key, CancellationToken>>);

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, CancellationToken>> {
        // Inserts and removes only: a panic cannot leave the map inconsistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hold request `id` of `session`, cancelled through `ct`, until the registration drops.
    pub(super) fn register(
        self: &Arc<Self>,
        session: Arc<str>,
        id: RequestId,
        ct: &CancellationToken,
    ) -> Registration {
        let key = (session, id);
        self.lock().insert(key.clone(), ct.clone());
        Registration {
            in_flight: self.clone(),
            key,
        }
    }

    /// Cancel the request a `notifications/cancelled` names, if it is answered here.
    pub(super) fn cancel(&self, session: &Arc<str>, notification: &ClientNotification) -> bool {
        let ClientNotification::CancelledNotification(cancelled) = notification else {
            return false;
        };
        let Some(id) = &cancelled.params.request_id else {
            return false;
        };
        let token = self.lock().get(&(session.clone(), id.clone())).cloned();
        match token {
            Some(token) => {
                tracing::debug!(%id, reason = ?cancelled.params.reason, "request cancelled by the client");
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// A request in [`InFlight`] until its call ends, however it ends.
pub(super) struct Registration {
    in_flight: Arc<InFlight>,
    key: Key,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.in_flight.lock().remove(&self.key);
    }
}
