//! The gateway's connected client sessions: to tell them when the lists change, and the
//! logging level each asked for.
//!
//! Sessions are keyed by their `mcp-session-id`. A session is added when its client sends
//! `notifications/initialized` (or sets a logging level) and dropped when a notification to it
//! finds its transport closed. Clients on protocol 2026-07-28 and later ask for change
//! notifications with `subscriptions/listen` instead; those streams follow [`Sessions::changes`]:
//! the catalog's changes, and those of the catalog of their own caller
//! (`crate::gateway::own_lists`).
#![allow(deprecated)] // Logging is deprecated by SEP-2577 but still part of the protocol.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use rmcp::{Peer, RoleServer, model::LoggingLevel};

use crate::upstream::Owner;

/// Which lists changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListChanges {
    pub tools: bool,
    pub resources: bool,
    pub prompts: bool,
}

impl ListChanges {
    pub fn any(self) -> bool {
        self.tools || self.resources || self.prompts
    }
}

/// A change for `subscriptions/listen` streams: of everyone's lists, or of one owner's own.
#[derive(Debug, Clone)]
pub struct Change {
    /// `None`: the catalog everyone shares.
    pub owner: Option<Owner>,
    pub lists: ListChanges,
}

struct Entry {
    peer: Peer<RoleServer>,
    level: Option<LoggingLevel>,
}

impl Entry {
    fn new(peer: Peer<RoleServer>) -> Self {
        Self { peer, level: None }
    }
}

pub struct Sessions {
    entries: Mutex<HashMap<Arc<str>, Entry>>,
    /// Every change, for `subscriptions/listen` streams (protocol 2026-07-28 and later).
    changes: tokio::sync::broadcast::Sender<Change>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            changes: tokio::sync::broadcast::channel(16).0,
        }
    }
}

/// The `mcp-session-id` of the HTTP request that carried an MCP message, if any.
pub fn session_id(extensions: &rmcp::model::Extensions) -> Option<Arc<str>> {
    header_session_id(&extensions.get::<axum::http::request::Parts>()?.headers)
}

/// The `mcp-session-id` among HTTP request headers, if any.
pub fn header_session_id(headers: &axum::http::HeaderMap) -> Option<Arc<str>> {
    headers.get("mcp-session-id")?.to_str().ok().map(Arc::from)
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember a session (idempotent).
    pub fn register(&self, id: Arc<str>, peer: Peer<RoleServer>) {
        let mut entries = self.lock();
        entries.retain(|_, e| !e.peer.is_transport_closed());
        entries.entry(id).or_insert_with(|| Entry::new(peer));
    }

    pub fn set_level(&self, id: Arc<str>, peer: Peer<RoleServer>, level: LoggingLevel) {
        self.lock()
            .entry(id)
            .or_insert_with(|| Entry::new(peer))
            .level = Some(level);
    }

    /// The logging level session `id` set, if any (a new upstream session of its own is told).
    pub fn level(&self, id: &str) -> Option<LoggingLevel> {
        self.lock().get(id).and_then(|e| e.level)
    }

    /// The peer of open session `id`.
    pub fn peer(&self, id: &str) -> Option<Peer<RoleServer>> {
        self.lock()
            .get(id)
            .filter(|e| !e.peer.is_transport_closed())
            .map(|e| e.peer.clone())
    }

    /// Forget session `id` (it ended).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Whether a log message of `level` should go to session `id` (sessions that set no level
    /// get everything, as the specification leaves the default to the server).
    pub fn wants_log(&self, id: Option<&str>, level: LoggingLevel) -> bool {
        let Some(id) = id else { return true };
        match self.lock().get(id).and_then(|e| e.level) {
            Some(min) => rank(level) >= rank(min),
            None => true,
        }
    }

    /// Every open session that set a logging level at or below `level`: where an upstream's
    /// log message goes when no call is in flight to say whose it is.
    pub fn listening(&self, level: LoggingLevel) -> Vec<(Peer<RoleServer>, Arc<str>)> {
        self.lock()
            .iter()
            .filter(|(_, e)| !e.peer.is_transport_closed())
            .filter(|(_, e)| e.level.is_some_and(|min| rank(level) >= rank(min)))
            .map(|(id, e)| (e.peer.clone(), id.clone()))
            .collect()
    }

    /// A receiver of every future change (for a `subscriptions/listen` stream).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Send `list_changed` notifications to every session; each send runs in its own task so a
    /// slow client delays nobody.
    pub fn broadcast(&self, changes: ListChanges) {
        if !changes.any() {
            return;
        }
        // No receivers (no listen streams) is not an error.
        let _ = self.changes.send(Change {
            owner: None,
            lists: changes,
        });
        let peers: Vec<Peer<RoleServer>> = {
            let mut entries = self.lock();
            entries.retain(|_, e| !e.peer.is_transport_closed());
            entries.values().map(|e| e.peer.clone()).collect()
        };
        for peer in peers {
            notify(peer, changes);
        }
    }

    /// Tell `owner` alone that its own lists changed: its session, or its listen streams.
    pub fn tell(&self, owner: &Owner, changes: ListChanges) {
        match owner.session().and_then(|id| self.peer(id)) {
            Some(peer) => notify(peer, changes),
            None => {
                let _ = self.changes.send(Change {
                    owner: Some(owner.clone()),
                    lists: changes,
                });
            }
        }
    }
}

/// Send `peer` the `list_changed` notifications of `changes`, in a task of their own so a slow
/// client delays nobody.
fn notify(peer: Peer<RoleServer>, changes: ListChanges) {
    tokio::spawn(async move {
        let result = async {
            if changes.tools {
                peer.notify_tool_list_changed().await?;
            }
            if changes.resources {
                peer.notify_resource_list_changed().await?;
            }
            if changes.prompts {
                peer.notify_prompt_list_changed().await?;
            }
            Ok::<(), rmcp::service::ServiceError>(())
        }
        .await;
        if let Err(error) = result {
            tracing::debug!(%error, "list_changed not delivered; the session ended");
        }
    });
}
