//! The gateway's client side of one upstream session: what it does with the upstream's
//! notifications, and which caller each in-flight request belongs to.
//!
//! - `list_changed` (tools, resources, prompts): wake the supervisor to list again.
//! - `progress`: rmcp gives every outbound request its own progress token; the call registers
//!   that token with its caller, and the notification goes to that caller under the token
//!   the caller chose (or nowhere, if it asked for no progress).
//! - `message` (logging), by the session's [`Audience`]: an upstream session of one client
//!   session ([`super::pool`]) tells only that session; one of a caller without a session,
//!   only its calls in flight. The gateway's shared session (stateless and stdio upstreams) is
//!   everyone's, and a log message names no request, so it goes to the sessions that have a
//!   call in flight to this upstream, once each; with no call in flight, to every session that
//!   set a level at or below the message's. Always only if it passes the level the session
//!   set with `logging/setLevel`.
//! - `resources/updated`: to the sessions subscribed to that resource on this upstream session
//!   ([`super::subscriptions`]).
//! - `tasks/status` (MCP 2025-11-25 tasks): to the client session that owns the upstream
//!   session, under the gateway's id for the task ([`super::tasks`]).
//! - requests (sampling, elicitation, roots) on rmcp's path: to the client session that owns
//!   the upstream session; on the shared session, to the one client session with calls in
//!   flight ([`super::client_requests`]).
//!
//! Progress and log messages are routed by [`Routes::observe`], which the session's transport
//! ([`super::transport`]) calls as each message arrives, in order. rmcp hands notifications to
//! the `ClientHandler` in tasks of their own, which may run after the request's answer has
//! been delivered and its caller unregistered; looking the caller up at arrival cannot miss.
#![allow(deprecated)] // Logging is deprecated by SEP-2577 but still part of the protocol.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use rmcp::{
    ClientHandler, ErrorData, Peer, RoleServer,
    model::{
        ClientConfig, ClientResult, CreateMessageRequest, CreateMessageRequestParams,
        CreateMessageResult, ElicitRequest, ElicitRequestParams, ElicitResult, ListRootsRequest,
        ListRootsResult, LoggingMessageNotification, LoggingMessageNotificationParam,
        NumberOrString, ProgressNotification, ProgressNotificationParam, ProgressToken, RequestId,
        ServerNotification, ServerRequest,
    },
    service::{NotificationContext, RequestContext, RoleClient},
};
use tokio::sync::Notify;

use crate::sessions::Sessions;

/// Who is waiting for an upstream request: the client session it came from.
#[derive(Clone)]
pub struct Caller {
    pub peer: Peer<RoleServer>,
    /// The progress token the caller put in its request, if any.
    pub progress_token: Option<ProgressToken>,
    /// The caller's `mcp-session-id`, to send each log message once per session.
    pub session: Option<Arc<str>>,
    /// The caller's answer stream, when its request is answered on its own HTTP response by
    /// the gateway's endpoint (`crate::endpoint`) rather than by rmcp: its progress goes there,
    /// and so do log messages when it has no session (a 2026-07-28 request); `None`: through
    /// `peer`.
    pub stream: Option<AnswerSink>,
    /// A 2026-07-28 call's: where the upstream's requests during it go (they become the
    /// call's `inputRequests`); `None`: to `peer`.
    pub input: Option<super::client_requests::InputSink>,
}

pub use switchboard_protocol::mcp_server::endpoint::AnswerSink;

/// Who hears what an upstream session says of its own accord (log messages, requests).
#[derive(Clone)]
pub enum Audience {
    /// The gateway's shared session: every client.
    Everyone,
    /// The upstream session of one client session: that session only.
    Session {
        peer: Peer<RoleServer>,
        id: Arc<str>,
    },
    /// The upstream session of a caller without a session: its calls in flight only.
    Callers,
}

/// In-flight requests of one upstream session, by the progress token rmcp gave them.
pub struct Routes {
    upstream: Arc<str>,
    audience: Audience,
    calls: Mutex<HashMap<ProgressToken, Caller>>,
    /// Woken by `list_changed` notifications.
    pub refresh: Notify,
    sessions: Arc<Sessions>,
    /// Resource subscriptions of client sessions to this upstream's resources.
    pub subscriptions: super::subscriptions::Subscriptions,
    /// Who started each task on this session, when several clients share it.
    pub task_owners: super::task_owners::TaskOwners,
}

/// Removes its entry from [`Routes`] when the call ends, however it ends.
pub struct Registration<'a> {
    routes: &'a Routes,
    token: ProgressToken,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.routes.lock().remove(&self.token);
    }
}

impl Routes {
    /// The routes of the gateway's shared session.
    pub fn new(upstream: Arc<str>, sessions: Arc<Sessions>) -> Self {
        Self::with_audience(upstream, sessions, Audience::Everyone)
    }

    /// The routes of an upstream session that `audience` alone hears.
    pub fn with_audience(upstream: Arc<str>, sessions: Arc<Sessions>, audience: Audience) -> Self {
        Self {
            upstream,
            audience,
            calls: Mutex::new(HashMap::new()),
            refresh: Notify::new(),
            sessions,
            subscriptions: Default::default(),
            task_owners: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ProgressToken, Caller>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, token: ProgressToken, caller: Caller) -> Registration<'_> {
        self.lock().insert(token.clone(), caller);
        Registration {
            routes: self,
            token,
        }
    }

    /// The caller of the direct request `id` (registered under its number).
    pub fn caller_of(&self, id: &RequestId) -> Option<Caller> {
        let RequestId::Number(n) = id else {
            return None;
        };
        self.lock()
            .get(&ProgressToken(NumberOrString::Number(*n)))
            .cloned()
    }

    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// Who a request from the upstream that names no call is for: the client session that owns
    /// this upstream session, else the caller when exactly one client session has calls in
    /// flight to it.
    pub fn sole_caller(&self) -> Option<Caller> {
        if let Audience::Session { peer, id } = &self.audience {
            return Some(Caller {
                peer: peer.clone(),
                progress_token: None,
                session: Some(id.clone()),
                stream: None,
                input: None,
            });
        }
        let calls = self.lock();
        let mut callers = calls.values();
        let first = callers.next()?.clone();
        let same = |c: &Caller| c.session.is_some() && c.session == first.session;
        callers.all(same).then_some(first)
    }

    /// Route a notification that just arrived from the upstream: find its recipients now, and
    /// send in the background.
    pub fn observe(&self, notification: &ServerNotification) {
        match notification {
            ServerNotification::ProgressNotification(n) => self.forward_progress(&n.params),
            ServerNotification::LoggingMessageNotification(n) => self.forward_log(&n.params),
            ServerNotification::ResourceUpdatedNotification(n) => {
                self.subscriptions.forward(&self.upstream, &n.params)
            }
            ServerNotification::CustomNotification(n)
                if n.method == super::tasks::STATUS_NOTIFICATION =>
            {
                self.forward_task_status(n.params.as_ref())
            }
            _ => {}
        }
    }

    /// A task's status goes to the client session that owns this upstream session (tasks
    /// are created on the owner's session), under the gateway's id for the task. On a session
    /// shared by several clients, to the client session that started the task
    /// ([`Routes::task_owners`]); a task started by a caller without a session is not
    /// passed on (it polls `tasks/get`).
    fn forward_task_status(&self, params: Option<&serde_json::Value>) {
        let peer = match &self.audience {
            Audience::Session { peer, .. } => peer.clone(),
            _ => {
                let owner = params
                    .and_then(|p| p["taskId"].as_str())
                    .and_then(|id| self.task_owners.owner(id));
                let Some(peer) = owner
                    .as_ref()
                    .and_then(|o| o.session())
                    .and_then(|session| self.sessions.peer(session))
                else {
                    return;
                };
                peer
            }
        };
        let Some(notice) = super::tasks::status_notice(&self.upstream, params) else {
            return;
        };
        let upstream = self.upstream.clone();
        tokio::spawn(async move {
            if let Err(error) = peer.send_notification(notice).await {
                tracing::debug!(%upstream, %error, "task status not delivered; the client left");
            }
        });
    }

    fn forward_progress(&self, params: &ProgressNotificationParam) {
        let target = self
            .lock()
            .get(&params.progress_token)
            .and_then(|c| Some((c.peer.clone(), c.progress_token.clone()?, c.stream.clone())));
        if let Some((peer, token, sink)) = target {
            let mut params = params.clone();
            params.progress_token = token;
            if let Some(sink) = sink {
                // The caller's answer stream; gone only when the caller is.
                let _ = sink.0.send(ServerNotification::ProgressNotification(
                    ProgressNotification::new(params),
                ));
                return;
            }
            let upstream = self.upstream.clone();
            tokio::spawn(async move {
                if let Err(error) = peer.notify_progress(params).await {
                    tracing::debug!(%upstream, %error, "progress not delivered; the caller left");
                }
            });
        }
    }

    fn forward_log(&self, params: &LoggingMessageNotificationParam) {
        let mut targets: Vec<(Peer<RoleServer>, Option<Arc<str>>)> = Vec::new();
        if let Audience::Session { peer, id } = &self.audience {
            // Its own client's session, whether or not a call is in flight.
            targets.push((peer.clone(), Some(id.clone())));
        } else {
            for caller in self.lock().values() {
                if caller.session.is_none()
                    && let Some(stream) = &caller.stream
                {
                    // A request without a session, answered on its own response: there.
                    let _ = stream
                        .0
                        .send(ServerNotification::LoggingMessageNotification(
                            LoggingMessageNotification::new(params.clone()),
                        ));
                    continue;
                }
                let duplicate =
                    caller.session.is_some() && targets.iter().any(|(_, s)| s == &caller.session);
                if !duplicate {
                    targets.push((caller.peer.clone(), caller.session.clone()));
                }
            }
        }
        if targets.is_empty() && matches!(self.audience, Audience::Everyone) {
            // No call in flight says whose message this is: every session that asked for
            // messages of this level (`logging/setLevel`) gets it.
            targets = self
                .sessions
                .listening(params.level)
                .into_iter()
                .map(|(peer, session)| (peer, Some(session)))
                .collect();
        }
        for (peer, session) in targets {
            if !self.sessions.wants_log(session.as_deref(), params.level) {
                continue;
            }
            let params = params.clone();
            let upstream = self.upstream.clone();
            tokio::spawn(async move {
                if let Err(error) = peer.notify_logging_message(params).await {
                    tracing::debug!(%upstream, %error, "log message not delivered; the caller left");
                }
            });
        }
    }
}

/// The rmcp `ClientHandler` of an upstream session (progress and log messages are routed
/// earlier, by the transport; see the module documentation).
#[derive(Clone)]
pub struct UpstreamHandler {
    pub routes: Arc<Routes>,
    pub info: ClientConfig,
}

impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.routes.refresh.notify_one();
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.routes.refresh.notify_one();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.routes.refresh.notify_one();
    }

    // Requests from the upstream on rmcp's path (stdio upstreams, requests that did not take
    // the direct path): forwarded to the one client with calls in flight, if there is one.
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let request = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
        match self.forward(request).await? {
            ClientResult::CreateMessageResult(result) => Ok(*result),
            _ => Err(unexpected()),
        }
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let request = ServerRequest::ListRootsRequest(ListRootsRequest::default());
        match self.forward(request).await? {
            ClientResult::ListRootsResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        match self.forward(request).await? {
            ClientResult::ElicitResult(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }
}

impl UpstreamHandler {
    async fn forward(&self, request: ServerRequest) -> Result<ClientResult, ErrorData> {
        let caller = self.routes.sole_caller();
        super::client_requests::forward(&self.routes.upstream, caller.as_ref(), request).await
    }
}

fn unexpected() -> ErrorData {
    ErrorData::internal_error("the client answered with another kind of result", None)
}
