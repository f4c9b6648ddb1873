//! One conversation's sandbox session: created on first use, shared by the calls of the
//! conversation, dropped when it ended, closed when the conversation ends.

use std::{
    sync::{Mutex as StdMutex, atomic::AtomicUsize},
    time::{Duration, Instant},
};

use rmcp::model::JsonObject;
use serde_json::Value;
use switchboard_runtime::auth::Identity;

use super::{CLOSE_TIMEOUT, RETRY_AFTER};
use crate::{
    catalog::{self, Catalog},
    state::Shared,
};

/// An open sandbox session and the gateway's name of the tool that closes it.
#[derive(Debug, Clone)]
struct Open {
    id: String,
    close_tool: String,
}

#[derive(Debug, Default)]
struct Slot {
    open: Option<Open>,
    /// When creating a session last failed.
    failed: Option<Instant>,
}

/// One conversation's sandbox session.
#[derive(Debug)]
pub struct Conversation {
    /// The conversation id the client gave; `None` for a request that named none.
    pub(super) id: Option<String>,
    /// The id it is kept under: the client's, or one made up for a single request.
    pub(super) key_id: String,
    /// The person it belongs to, named to the gateway when the session is created and closed.
    pub(super) user: Option<Identity>,
    /// Held while a session is being created, so concurrent calls of one turn share it.
    slot: tokio::sync::Mutex<Slot>,
    last_used: StdMutex<Instant>,
    /// Requests running in it now; an active conversation is never idle.
    pub(super) active: AtomicUsize,
    /// False: its code runs one-shot, no session is ever created.
    sessions: bool,
}

impl Conversation {
    pub(super) fn new(id: Option<String>, key_id: String, user: Option<&Identity>) -> Self {
        Self {
            id,
            key_id,
            user: user.cloned(),
            slot: tokio::sync::Mutex::new(Slot::default()),
            last_used: StdMutex::new(Instant::now()),
            active: AtomicUsize::new(0),
            sessions: true,
        }
    }

    /// A conversation whose code runs one-shot: no session is created for it.
    pub fn one_shot() -> Self {
        Self {
            sessions: false,
            ..Self::new(None, String::new(), None)
        }
    }

    pub(super) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The conversation id the client gave.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub(super) fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(super) fn idle_since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(*self.last_used.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The session code of this conversation runs in: the open one, or one created now.
    /// `None` means one-shot (no session tools, or creating one failed).
    pub async fn session(&self, state: &Shared, catalog: &Catalog) -> Option<String> {
        if !self.sessions {
            return None;
        }
        self.touch();
        let mut slot = self.slot.lock().await;
        if let Some(open) = &slot.open {
            return Some(open.id.clone());
        }
        if slot.failed.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            return None;
        }
        let (Some(create), Some(close)) = (
            catalog.find_by_base_name("create_session"),
            catalog.find_by_base_name("close_session"),
        ) else {
            tracing::debug!(
                "the gateway offers no create_session/close_session: code runs one-shot"
            );
            return None;
        };
        let mut arguments = JsonObject::new();
        // A little longer than the middleware's own idle limit, so that the middleware, which
        // knows the conversation, is the one to end it; the sandbox's limit is the backstop.
        let idle = state.config.conversation_idle_timeout.as_secs() + 60;
        arguments.insert("idle_timeout_seconds".into(), Value::from(idle));
        let created = state
            .gateway
            .call_tool(
                &create.tool.name,
                arguments,
                state.config.tool_timeout,
                self.user.as_ref(),
            )
            .await;
        let id = match &created {
            Ok(result) if result.is_error != Some(true) => result
                .structured_content
                .as_ref()
                .and_then(|s| s.get("session_id"))
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| "its answer has no session_id".to_owned()),
            Ok(result) => Err(catalog::render(result)),
            Err(error) => Err(error.to_string()),
        };
        match id {
            Ok(id) => {
                tracing::debug!(session = %id, conversation = ?self.id, "sandbox session created");
                slot.open = Some(Open {
                    id: id.clone(),
                    close_tool: close.tool.name.to_string(),
                });
                slot.failed = None;
                Some(id)
            }
            Err(reason) => {
                tracing::debug!(%reason, "cannot create a sandbox session: code runs one-shot");
                slot.failed = Some(Instant::now());
                None
            }
        }
    }

    /// Forget session `id` (it ended, or the sandbox no longer knows it): the next code call
    /// creates a fresh one. A session other than `id` is kept.
    pub async fn forget(&self, id: &str) {
        let mut slot = self.slot.lock().await;
        if slot.open.as_ref().is_some_and(|o| o.id == id) {
            tracing::debug!(session = %id, "sandbox session dropped");
            slot.open = None;
        }
    }

    /// Close the session, if one is open (best effort: a failure is logged at debug, the
    /// sandbox's idle limit ends it anyway).
    pub async fn close(&self, state: &Shared) {
        let Some(open) = self.slot.lock().await.open.take() else {
            return;
        };
        let mut arguments = JsonObject::new();
        arguments.insert("session_id".into(), Value::from(open.id.clone()));
        match state
            .gateway
            .call_tool(
                &open.close_tool,
                arguments,
                CLOSE_TIMEOUT,
                self.user.as_ref(),
            )
            .await
        {
            Ok(result) if result.is_error != Some(true) => {
                tracing::debug!(session = %open.id, "sandbox session closed");
            }
            Ok(result) => {
                tracing::debug!(session = %open.id, reason = %catalog::render(&result), "closing the sandbox session failed");
            }
            Err(error) => {
                tracing::debug!(session = %open.id, %error, "closing the sandbox session failed");
            }
        }
    }
}
