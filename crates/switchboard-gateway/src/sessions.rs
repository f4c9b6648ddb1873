//! The gateway's connected client sessions: to tell them when the lists change, and the
//! logging level each asked for.
//!
//! Sessions are keyed by their `mcp-session-id`. A session is added when its client sends
//! `notifications/initialized` and dropped when it ends (`DELETE`) or its transport is found
//! closed. Clients on protocol 2026-07-28 and later ask for change
//! notifications with `subscriptions/listen` instead; those streams follow [`Sessions::changes`]:
//! the catalog's changes, and those of the catalog of their own caller
//! (`crate::gateway::own_lists`).
#![allow(deprecated)] // Logging is deprecated by SEP-2577 but still part of the protocol.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use rmcp::{Peer, RoleServer, model::LoggingLevel};
use switchboard_protocol::mcp_server::endpoint::SessionPeers;

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

/// The client sessions: their peers are the endpoint's own table ([`SessionPeers`], filled by
/// `on_initialized`); this adds the logging level each set and the changes for listen streams.
pub struct Sessions {
    peers: SessionPeers,
    /// The level each session set with `logging/setLevel` (those of closed sessions go at the
    /// gateway's periodic sweep, [`Sessions::forget_closed`]).
    levels: Mutex<HashMap<Arc<str>, LoggingLevel>>,
    /// Every change, for `subscriptions/listen` streams (protocol 2026-07-28 and later).
    changes: tokio::sync::broadcast::Sender<Change>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            peers: SessionPeers::default(),
            levels: Mutex::default(),
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
    fn levels(&self) -> MutexGuard<'_, HashMap<Arc<str>, LoggingLevel>> {
        // Inserts, removes and lookups only: a panic cannot leave the map inconsistent.
        self.levels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sessions' peers: the table the MCP endpoint serves requests with.
    pub fn peers(&self) -> &SessionPeers {
        &self.peers
    }

    pub fn set_level(&self, id: Arc<str>, level: LoggingLevel) {
        self.levels().insert(id, level);
    }

    /// Forget the levels of sessions that closed without a `DELETE` (rmcp expired them, or
    /// their transport went away).
    pub fn forget_closed(&self) {
        self.levels().retain(|id, _| self.peers.peer(id).is_some());
    }

    /// The logging level session `id` set, if any (a new upstream session of its own is told).
    pub fn level(&self, id: &str) -> Option<LoggingLevel> {
        self.levels().get(id).copied()
    }

    /// The peer of open session `id`.
    pub fn peer(&self, id: &str) -> Option<Peer<RoleServer>> {
        self.peers.peer(id)
    }

    /// Forget session `id` (it ended).
    pub fn remove(&self, id: &str) {
        self.levels().remove(id);
        self.peers.remove(id);
    }

    /// Whether a log message of `level` should go to session `id` (sessions that set no level
    /// get everything, as the specification leaves the default to the server).
    pub fn wants_log(&self, id: Option<&str>, level: LoggingLevel) -> bool {
        let Some(id) = id else { return true };
        match self.level(id) {
            Some(min) => rank(level) >= rank(min),
            None => true,
        }
    }

    /// Every open session that set a logging level at or below `level`: where an upstream's
    /// log message goes when no call is in flight to say whose it is.
    pub fn listening(&self, level: LoggingLevel) -> Vec<(Peer<RoleServer>, Arc<str>)> {
        let wanted: Vec<Arc<str>> = self
            .levels()
            .iter()
            .filter(|(_, min)| rank(level) >= rank(**min))
            .map(|(id, _)| id.clone())
            .collect();
        wanted
            .into_iter()
            .filter_map(|id| Some((self.peers.peer(&id)?, id)))
            .collect()
    }

    /// A receiver of every future change (for a `subscriptions/listen` stream).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub fn len(&self) -> usize {
        self.peers.len()
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
        for peer in self.peers.open() {
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
