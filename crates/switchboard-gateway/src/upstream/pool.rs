//! The upstream sessions of clients: on a stateful upstream, each client gets a session of its
//! own, so what the server keeps per session and what it says unprompted stay with that client.
//!
//! - **Whose.** One per [`Owner`]: per client session of the gateway (`Mcp-Session-Id`), or,
//!   for requests without a session, per authenticated caller; unauthenticated sessionless
//!   callers share one.
//! - **When.** Opened on the owner's first request to the upstream (`initialize` within the
//!   connect timeout, on the gateway's one HTTP client: the connection pool stays shared). A
//!   client session's upstream session declares that client's own capabilities (sampling,
//!   elicitation, roots) and is told the logging level the client set; it hears only that
//!   client (log messages, resource updates, sampling/elicitation/roots requests: see
//!   [`super::handler::Audience`]). Its lists are followed ([`super::lists::follow`]) so the
//!   gateway can list to the client what the upstream offers that client.
//! - **Until.** Closed (HTTP `DELETE` of the upstream session, by rmcp's transport) when the
//!   client session ends — its `DELETE`, or the gateway expiring it after the session idle
//!   timeout — and, for a caller without a session, after the same idle timeout without a
//!   request. Also when the upstream goes down (its sessions went with it; the next request
//!   opens a new one) and when the gateway stops.
//! - **How many.** At most `max_sessions` per upstream (`--max-upstream-sessions`, 256 by
//!   default). A client that would need one more is refused with an error that names the
//!   limit, after the sessions of clients that are gone have been closed; nobody's session is
//!   taken away to make room.
//!
//! The call path finds a session with one short lock of this upstream's map (no lock is held
//! across a call); opening one happens once per owner, other requests of the same owner wait
//! for it (a `OnceCell` per owner).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rmcp::{Peer, RoleServer};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    Listing, Owner, Session, Upstream, client_requests,
    handler::{Audience, Routes},
};
use crate::error::CallError;

/// The sessions of one upstream's clients.
pub struct Pool {
    slots: Mutex<HashMap<Owner, Arc<Slot>>>,
    epoch: Instant,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            slots: Mutex::default(),
            epoch: Instant::now(),
        }
    }
}

/// One owner's session, opened once.
struct Slot {
    session: OnceCell<Arc<Session>>,
    /// When it was last used, in milliseconds since the pool's epoch.
    used: AtomicU64,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, HashMap<Owner, Arc<Slot>>> {
        // Inserts, lookups and removals only: a panic cannot leave the map inconsistent.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Session {
    fn alive(&self) -> bool {
        !self.closed.is_cancelled() && !self.client.peer().is_transport_closed()
    }

    /// End it: rmcp's transport sends the upstream `DELETE` for the session in the
    /// background; the tasks that serve it end.
    fn close(&self) {
        self.closed.cancel();
        self.client.cancellation_token().cancel();
    }

    /// Whether its client is gone: the client session that owns it has ended.
    fn orphaned(&self) -> bool {
        match self.routes.audience() {
            Audience::Session { peer, .. } => peer.is_transport_closed(),
            _ => false,
        }
    }
}

impl Upstream {
    /// The session `owner`'s requests go on: its own on a stateful upstream, opened now if need
    /// be (`peer`: the client session asking), else the shared one. Gives up when `ct` is
    /// cancelled.
    pub(super) async fn session_of(
        &self,
        owner: &Owner,
        peer: Option<&Peer<RoleServer>>,
        ct: &CancellationToken,
    ) -> Result<Arc<Session>, CallError> {
        if !self.isolates_clients() {
            return self.session.load_full().ok_or_else(|| self.down());
        }
        if self.session.load().is_none() {
            return Err(self.down());
        }
        let slot = self.slot(owner)?;
        if let Some(session) = slot.session.get()
            && session.alive()
        {
            return Ok(session.clone());
        }
        tokio::select! {
            biased;
            () = ct.cancelled() => Err(CallError::Cancelled),
            session = self.own_session(owner, slot, peer) => session,
        }
    }

    /// Open `owner`'s session in `slot` (once: other requests of the owner wait for it).
    async fn own_session(
        &self,
        owner: &Owner,
        mut slot: Arc<Slot>,
        peer: Option<&Peer<RoleServer>>,
    ) -> Result<Arc<Session>, CallError> {
        // A session found dead (the upstream dropped it) is replaced, once.
        for attempt in 0..2 {
            if attempt > 0 {
                slot = self.slot(owner)?;
            }
            let opened = slot
                .session
                .get_or_try_init(|| self.open_for(owner, peer))
                .await;
            match opened {
                Ok(session) if session.alive() => return Ok(session.clone()),
                _ => {
                    self.forget(owner, &slot);
                    opened?;
                }
            }
        }
        Err(CallError::Transport {
            upstream: self.config.name.clone(),
            message: "its session for this client closed as soon as it opened".to_owned(),
        })
    }

    /// `owner`'s slot, made now if it has none and the limit allows.
    fn slot(&self, owner: &Owner) -> Result<Arc<Slot>, CallError> {
        let now = self.pool.now();
        let mut slots = self.pool.lock();
        if let Some(slot) = slots.get(owner) {
            slot.used.store(now, Ordering::Relaxed);
            return Ok(slot.clone());
        }
        let mut retired = Vec::new();
        if slots.len() >= self.config.max_sessions {
            // Make room by closing the sessions of clients that are gone, and only those.
            slots.retain(|owner, slot| match slot.session.get() {
                Some(session) if !session.alive() || session.orphaned() => {
                    retired.push((owner.clone(), session.clone()));
                    false
                }
                _ => true,
            });
        }
        let result = if slots.len() >= self.config.max_sessions {
            self.metrics.sessions_refused.inc();
            Err(CallError::SessionLimit {
                upstream: self.config.name.clone(),
                limit: self.config.max_sessions,
            })
        } else {
            let slot = Arc::new(Slot {
                session: OnceCell::new(),
                used: AtomicU64::new(now),
            });
            slots.insert(owner.clone(), slot.clone());
            Ok(slot)
        };
        self.metrics.sessions.set(gauge(slots.len()));
        drop(slots);
        for (owner, session) in retired {
            self.retire(owner, &session);
        }
        result
    }

    /// Remove `owner`'s `slot` (if it is still the one in the map) and close its session.
    fn forget(&self, owner: &Owner, slot: &Arc<Slot>) {
        let mut slots = self.pool.lock();
        if slots.get(owner).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(owner);
        }
        self.metrics.sessions.set(gauge(slots.len()));
        drop(slots);
        if let Some(session) = slot.session.get() {
            self.retire(owner.clone(), session);
        }
    }

    /// Close `session`; the gateway stops listing `owner` its own lists of this upstream.
    fn retire(&self, owner: Owner, session: &Session) {
        session.close();
        if session.own_listing.load().is_some() {
            let _ = self.own_lists.send(owner);
        }
    }

    /// A new session for `owner`.
    async fn open_for(
        &self,
        owner: &Owner,
        peer: Option<&Peer<RoleServer>>,
    ) -> Result<Arc<Session>, CallError> {
        let (audience, capabilities) = match owner {
            Owner::Session(id) => {
                let peer = peer
                    .cloned()
                    .or_else(|| self.sessions.peer(id))
                    .ok_or_else(|| CallError::Down {
                        upstream: self.config.name.clone(),
                        reason: "the client session has ended".to_owned(),
                    })?;
                let capabilities = client_requests::declared(&peer);
                let id = id.clone();
                (Audience::Session { peer, id }, capabilities)
            }
            Owner::Identity(_) | Owner::Anonymous => {
                (Audience::Callers, client_requests::capabilities())
            }
        };
        let routes = Routes::with_audience(self.name.clone(), self.sessions.clone(), audience);
        // Under a span of its own, not the caller's: rmcp's session tasks outlive the call, and
        // their spans (children of the current one) would keep the call's span from ending.
        let opening = async {
            let session = self.open(Arc::new(routes), capabilities).await?;
            // The level the client set applies to its new session too.
            if let Some(level) = owner.session().and_then(|id| self.sessions.level(id)) {
                self.tell_level(&session, level).await;
            }
            Ok::<_, String>(session)
        };
        let span = tracing::info_span!(parent: None, "upstream_client_session", upstream = %self.name, owner = owner.kind());
        let session = opening
            .instrument(span)
            .await
            .map_err(|e| CallError::Transport {
                upstream: self.config.name.clone(),
                message: format!("opening its session for this client failed: {e}"),
            })?;
        super::lists::follow(
            &session,
            owner.clone(),
            self.timing.connect_timeout,
            self.own_lists.clone(),
        );
        tracing::debug!(upstream = %self.name, owner = owner.kind(), "opened an upstream session for a client");
        Ok(Arc::new(session))
    }

    /// `owner`'s session if it has one open now (or the shared one, on an upstream that is not
    /// stateful): for what concerns only a session that exists.
    pub(super) fn current_session(&self, owner: &Owner) -> Option<Arc<Session>> {
        if !self.isolates_clients() {
            return self.session.load_full();
        }
        let slot = self.pool.lock().get(owner).cloned()?;
        slot.session.get().cloned()
    }

    /// What `owner`'s own session lists, where that differs from what the shared one lists.
    pub fn own_listing(&self, owner: &Owner) -> Option<Arc<Listing>> {
        if !self.isolates_clients() {
            return None;
        }
        let own = self.current_session(owner)?.own_listing.load_full()?;
        (*own != **self.listing.load()).then_some(own)
    }

    /// Close `owner`'s session (its client session ended).
    pub fn end(&self, owner: &Owner) {
        let slot = self.pool.lock().get(owner).cloned();
        if let Some(slot) = slot {
            self.forget(owner, &slot);
        }
    }

    /// Close the sessions whose client is gone, whose upstream session closed, and those of
    /// callers without a session that went unused for the idle timeout.
    pub fn sweep(&self) {
        let idle = u64::try_from(self.timing.session_idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let now = self.pool.now();
        let mut retired = Vec::new();
        let mut slots = self.pool.lock();
        slots.retain(|owner, slot| {
            let Some(session) = slot.session.get() else {
                return true; // opening
            };
            let unused = now.saturating_sub(slot.used.load(Ordering::Relaxed)) >= idle
                && Arc::strong_count(session) == 1;
            let expired = owner.session().is_none() && unused;
            if !session.alive() || session.orphaned() || expired {
                retired.push((owner.clone(), session.clone()));
                return false;
            }
            true
        });
        self.metrics.sessions.set(gauge(slots.len()));
        drop(slots);
        for (owner, session) in retired {
            self.retire(owner, &session);
        }
    }

    /// Close every client's session (the upstream went down, or the gateway stops): at once,
    /// and the returned future waits (at most `limit`) until the upstream heard of each one
    /// no call holds any more.
    pub(super) fn close_client_sessions(&self, limit: Duration) -> impl Future<Output = ()> {
        let taken: Vec<(Owner, Arc<Slot>)> = {
            let mut slots = self.pool.lock();
            self.metrics.sessions.set(0);
            slots.drain().collect()
        };
        let mut closing = Vec::new();
        for (owner, slot) in taken {
            let session = slot.session.get().cloned();
            drop(slot);
            let Some(session) = session else {
                continue; // still opening: closed when its opener lets go of it
            };
            if session.own_listing.load().is_some() {
                let _ = self.own_lists.send(owner);
            }
            session.closed.cancel();
            match Arc::try_unwrap(session) {
                Ok(mut session) if !limit.is_zero() => closing.push(async move {
                    let _ = session.client.close_with_timeout(limit).await;
                }),
                Ok(session) => session.close(),
                Err(held) => held.close(),
            }
        }
        async move {
            futures::future::join_all(closing).await;
        }
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
