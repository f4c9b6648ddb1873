//! One sandbox session per conversation: code a conversation runs keeps its variables, imports
//! and files from one call to the next.
//!
//! `/chat` is stateless (the client sends the whole history), so a conversation is what the
//! client names with `conversation_id`; a request that names none is a conversation of its
//! own, ended when the request ends (with the offline planner such a request runs its code
//! one-shot: the planner runs all of it in one concurrent turn, so a session would share
//! nothing). The session is created on the conversation's first code
//! call (the gateway's `create_session`, under whatever name the gateway publishes it), its id
//! is put into every `execute_code` call (and the session file tools) that does not name a
//! session itself, and it is closed (`close_session`) when the conversation ends: the client
//! says so (`DELETE /conversations/{id}`), it has been idle for `conversation_idle_timeout`,
//! or the middleware shuts down.
//!
//! Sessions are a convenience, never a requirement: without `create_session` in the catalog,
//! or when creating one fails, code runs one-shot as before (logged at debug; a failed create
//! is not retried for [`RETRY_AFTER`]). A run that reports `session_ended`, or a call the
//! sandbox refuses for the session, drops the id so that the next code call starts afresh.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as StdMutex, atomic::Ordering},
    time::{Duration, Instant},
};

use switchboard_runtime::auth::Identity;

use crate::{catalog, state::Shared};

mod conversation;

pub use conversation::Conversation;

/// Most conversations kept at once; past it a new conversation gets no kept session (its
/// requests still work, each as a conversation of its own). Each holds a sandbox interpreter,
/// so the sandbox's own session limit is usually reached first.
pub const MAX_CONVERSATIONS: usize = 10_000;
/// How long after a failed `create_session` code runs one-shot without trying again, so a
/// sandbox without sessions costs one failed call per conversation and half-minute, not one
/// per program.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Longest wait for `close_session`: closing is best effort and must not hold up shutdown.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Tools that run in a session when given its `session_id`.
const SESSION_TOOLS: &[&str] = &["execute_code", "upload_file", "list_files", "download_file"];

/// Whether the gateway tool `name` takes a session (by its contract name, also when prefixed).
pub fn takes_session(name: &str) -> bool {
    SESSION_TOOLS
        .iter()
        .any(|base| catalog::has_base_name(name, base))
}

/// The code-executor's tools that may run as MCP tasks (`execution.taskSupport` "optional"):
/// the long-running ones.
const TASK_TOOLS: &[&str] = &["execute_code", "install_package"];

/// Whether the gateway tool `name` may run as a task (by its contract name, also when
/// prefixed). rmcp's `Tool` does not carry `execution`, so the contract names it.
pub fn runs_as_task(name: &str) -> bool {
    TASK_TOOLS
        .iter()
        .any(|base| catalog::has_base_name(name, base))
}

/// Marks a conversation in use by one request; dropping it (the request ended, or its task was
/// aborted) makes it idle again.
#[derive(Debug)]
pub struct InUse(Arc<Conversation>);

impl std::ops::Deref for InUse {
    type Target = Conversation;
    fn deref(&self) -> &Conversation {
        &self.0
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who a conversation belongs to and what it is called. Requests that name no conversation
/// are kept under a made-up id, so that the idle sweep closes their session even when the
/// request is aborted before it could.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    user: String,
    id: String,
    named: bool,
}

fn key(user: Option<&Identity>, id: &str, named: bool) -> Key {
    Key {
        user: user
            .map(|u| u.on_behalf_of().to_string())
            .unwrap_or_default(),
        id: id.to_owned(),
        named,
    }
}

/// Every conversation with a session (or about to have one).
#[derive(Debug, Default)]
pub struct Conversations {
    kept: StdMutex<HashMap<Key, Arc<Conversation>>>,
}

impl Conversations {
    /// The conversation a request belongs to: the one `id` names for `user` (created on first
    /// use), or a new one for this request alone.
    pub fn enter(&self, id: Option<&str>, user: Option<&Identity>) -> InUse {
        let named = id.is_some();
        let made_up;
        let id = match id {
            Some(id) => id,
            None => {
                made_up = uuid::Uuid::new_v4().to_string();
                made_up.as_str()
            }
        };
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let key = key(user, id, named);
        let conversation = match kept.get(&key) {
            Some(existing) => existing.clone(),
            None => {
                let fresh = Arc::new(Conversation::new(
                    named.then(|| id.to_owned()),
                    id.to_owned(),
                    user,
                ));
                if kept.len() < MAX_CONVERSATIONS {
                    kept.insert(key, fresh.clone());
                } else {
                    tracing::warn!(
                        limit = MAX_CONVERSATIONS,
                        "too many open conversations: this one keeps no sandbox session"
                    );
                }
                fresh
            }
        };
        conversation.active.fetch_add(1, Ordering::AcqRel);
        conversation.touch();
        InUse(conversation)
    }

    /// A request is done: a conversation it did not name (or that could not be kept) ends
    /// with it.
    pub async fn leave(&self, state: &Shared, conversation: InUse) {
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            let key = key(
                conversation.user.as_ref(),
                conversation.key_id(),
                conversation.id.is_some(),
            );
            let ours = kept
                .get(&key)
                .is_some_and(|c| Arc::ptr_eq(c, &conversation.0));
            if ours && conversation.id.is_none() {
                kept.remove(&key);
            }
            ours && conversation.id.is_some()
        };
        if !kept {
            conversation.close(state).await;
        }
    }

    /// End the conversation `id` of `user` and close its session; false when there was none.
    pub async fn end(&self, state: &Shared, id: &str, user: Option<&Identity>) -> bool {
        let wanted = key(user, id, true);
        let mut gone = Vec::new();
        {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = kept.remove(&wanted) {
                gone.push(c);
            }
        }
        let found = !gone.is_empty();
        for conversation in gone {
            conversation.close(state).await;
        }
        found
    }

    fn remove(&self, mut which: impl FnMut(&Arc<Conversation>) -> bool) -> Vec<Arc<Conversation>> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<Key> = kept
            .iter()
            .filter(|(_, c)| which(c))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| kept.remove(k)).collect()
    }

    /// Take out the conversations no request has used for `idle`.
    fn take_idle(&self, idle: Duration, now: Instant) -> Vec<Arc<Conversation>> {
        self.remove(|c| c.active.load(Ordering::Acquire) == 0 && c.idle_since(now) >= idle)
    }

    /// How many conversations are kept.
    pub fn len(&self) -> usize {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End every conversation idle for the configured limit, closing their sessions.
    pub async fn close_idle(&self, state: &Shared) {
        let idle = self.take_idle(state.config.conversation_idle_timeout, Instant::now());
        for conversation in idle {
            tracing::debug!(conversation = ?conversation.id, "conversation idle: ending it");
            conversation.close(state).await;
        }
    }

    /// End every conversation (shutdown).
    pub async fn close_all(&self, state: &Shared) {
        for conversation in self.remove(|_| true) {
            conversation.close(state).await;
        }
    }
}

/// Check a client's conversation id: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`, so that it
/// can sit in a URL path and a log line as it is.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_conversations_are_shared_and_unnamed_ones_are_not() {
        let all = Conversations::default();
        let a = all.enter(Some("c1"), None);
        let b = all.enter(Some("c1"), None);
        assert!(Arc::ptr_eq(&a.0, &b.0));
        let c = all.enter(None, None);
        let d = all.enter(None, None);
        assert!(!Arc::ptr_eq(&c.0, &d.0));
        assert_eq!((a.id(), c.id()), (Some("c1"), None));
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn only_idle_conversations_not_in_use_are_swept() {
        let all = Conversations::default();
        let busy = all.enter(Some("busy"), None);
        drop(all.enter(Some("idle"), None));
        let later = Instant::now() + Duration::from_secs(120);
        let swept = all.take_idle(Duration::from_secs(60), later);
        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].id(), Some("idle"));
        assert!(
            all.take_idle(Duration::from_secs(60), Instant::now())
                .is_empty()
        );
        drop(busy);
        assert_eq!(all.take_idle(Duration::from_secs(60), later).len(), 1);
        assert!(all.is_empty());
    }

    #[test]
    fn ids_are_checked_and_session_tools_recognised() {
        assert!(valid_id("3f2a-b.c_d:1"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(&"x".repeat(129)));
        assert!(takes_session("execute_code"));
        assert!(takes_session("code-executor.upload_file"));
        assert!(!takes_session("get_current_time"));
        assert!(!takes_session("create_session"));
    }
}
