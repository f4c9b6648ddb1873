//! The peers of the open sessions, by session id: what a request answered on the endpoint's
//! own path is handled with, as rmcp's session loop would hand it the session's peer.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rmcp::{Peer, RoleServer, service::NotificationContext};

/// Below this many sessions closed ones are not swept out.
const SWEEP_FLOOR: usize = 64;

/// The peers of a handler's sessions. The handler's `on_initialized` registers each
/// ([`SessionPeers::register`]); a session never registered is served by rmcp alone.
#[derive(Clone, Default)]
pub struct SessionPeers(Arc<Mutex<Table>>);

#[derive(Default)]
struct Table {
    open: HashMap<Arc<str>, Known>,
    /// Closed sessions are swept out when the table reaches this size.
    sweep_at: usize,
}

struct Known {
    peer: Peer<RoleServer>,
    /// When rmcp's session worker was last told of activity.
    touched: Instant,
}

impl Table {
    /// Drop the sessions rmcp closed (idle, deleted, shut down: they leave with their
    /// transport), and sweep again when the table has doubled.
    fn sweep(&mut self) {
        self.open
            .retain(|_, known| !known.peer.is_transport_closed());
        self.sweep_at = self.open.len() * 2;
    }
}

impl SessionPeers {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // Inserts, removes and lookups only: a panic cannot leave the table inconsistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record the session of an `notifications/initialized` (from its `Mcp-Session-Id`).
    pub fn register(&self, context: &NotificationContext<RoleServer>) {
        let Some(id) = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|value| value.to_str().ok())
        else {
            return;
        };
        let mut table = self.lock();
        if table.open.len() >= table.sweep_at.max(SWEEP_FLOOR) {
            // The sweep is amortised over as many registrations as there are sessions.
            table.sweep();
        }
        table.open.insert(
            Arc::from(id),
            Known {
                peer: context.peer.clone(),
                touched: Instant::now(),
            },
        );
    }

    /// The peer of open session `id`, and whether rmcp's worker is due to be told that the
    /// session is in use (at most once per `touch_every`; it closes sessions it thinks idle).
    pub(super) fn for_request(
        &self,
        id: &str,
        touch_every: Option<Duration>,
    ) -> Option<(Peer<RoleServer>, bool)> {
        let mut table = self.lock();
        let known = table.open.get_mut(id)?;
        if known.peer.is_transport_closed() {
            table.open.remove(id);
            return None;
        }
        let now = Instant::now();
        let touch = touch_every.is_some_and(|every| now.duration_since(known.touched) >= every);
        if touch {
            known.touched = now;
        }
        Some((known.peer.clone(), touch))
    }

    /// The peer of open session `id` (to send it a notification outside any request).
    pub fn peer(&self, id: &str) -> Option<Peer<RoleServer>> {
        self.for_request(id, None).map(|(peer, _)| peer)
    }

    /// Every open session's peer (closed ones are swept out on the way).
    pub fn open(&self) -> Vec<Peer<RoleServer>> {
        let mut table = self.lock();
        table.sweep();
        table
            .open
            .values()
            .map(|known| known.peer.clone())
            .collect()
    }

    /// How many sessions are registered (some may have closed since).
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget session `id` (it ended).
    pub fn remove(&self, id: &str) {
        self.lock().open.remove(id);
    }
}
