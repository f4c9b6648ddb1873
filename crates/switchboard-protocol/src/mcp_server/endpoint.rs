//! Every service's `/mcp` endpoint: rmcp's Streamable HTTP service, with the frequent requests
//! answered on the HTTP request's own task.
//!
//! rmcp serves a request of a session by handing it to the session's worker task, which hands
//! it to the session's service loop, which spawns a task for the handler; the answer travels
//! back the same way and goes out as an SSE stream (a priming event, then the answer): three
//! task hops and channels each way. For `tools/call`, the lists, `resources/read`,
//! `prompts/get`, `ping` (and the handler's own custom methods named in
//! [`McpEndpointOptions::with_custom_methods`]) of a session that has completed `initialize`,
//! and the same requests of the 2026-07-28 revision (no session; [`stateless`]), this
//! endpoint calls the same handler through rmcp's own request dispatch
//! (`Service::handle_request`, so protocol-version handling and result shaping stay rmcp's)
//! and answers with plain JSON; when notifications come before the answer, with an SSE stream
//! of them followed by the answer, as rmcp would. A client's `notifications/cancelled` for a
//! request answered here cancels it here. The Streamable HTTP specification lets a server
//! answer any POSTed request with either JSON or a stream; every client must accept both.
//!
//! Everything else goes to rmcp unchanged: `initialize`, `server/discover`, other
//! notifications, GET streams, DELETE, and every request this endpoint is not certain to treat
//! exactly as rmcp would (an `Origin` header, a Host outside the allowlist, a session request
//! with standard `Mcp-*` headers or a protocol version in `_meta`, a 2026-07-28 request whose
//! headers and body disagree, an unknown session, no `Content-Length`...): rmcp then answers,
//! or rejects, as before.
//!
//! What a handler needs to know of this path:
//! - its `on_initialized` registers the session's peer ([`SessionPeers::register`]); a
//!   session it does not register is served by rmcp alone (correct, slower);
//! - a notification that belongs on a request's own stream (progress; a log message of a
//!   request without a session) goes to the [`AnswerSink`] in the request's extensions when
//!   there is one: the session's peer would send it to the session's GET stream instead.
//!
//! rmcp closes a session its worker has not heard from for the idle timeout; requests answered
//! here bypass the worker, so the endpoint tells it of the activity (a no-op message) at most
//! once per quarter of that timeout.

pub mod answer;
pub mod decode;
mod headers;
mod in_flight;
mod peers;
mod stateless;

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
};
use futures::future::BoxFuture;
use http::{Method, StatusCode, header, request::Parts};
use rmcp::{
    ErrorData, Peer, RoleServer, ServerHandler,
    model::{
        ClientRequest, GetExtensions, GetMeta, JsonRpcMessage, JsonRpcRequest, ServerNotification,
        ServerResult,
    },
    service::{RequestContext, Service},
    transport::{
        StreamableHttpService, streamable_http_server::session::local::LocalSessionManager,
    },
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::peers::SessionPeers;
use self::{
    answer::{Framing, respond},
    decode::{answerable, decode},
    headers::{AllowedHosts, accepts_json_and_sse, media_type_is},
    in_flight::InFlight,
    stateless::StatelessPeer,
};
use super::{
    McpEndpointOptions, envelope::Envelope, sealed::SealedSessions,
    streamable_http_service_with_sessions,
};

/// Protocol versions whose requests are served in sessions (`initialize`), as rmcp does.
const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// rmcp's session worker ignores closing a request stream it does not have; HTTP request ids
/// count up from 0 and never reach this one.
const NO_SUCH_STREAM: u64 = u64::MAX;

type Call = Pin<Box<dyn Future<Output = Result<ServerResult, ErrorData>> + Send>>;

/// The notifications that travel on the answer of one request answered by this endpoint,
/// before the answer (in the request's extensions).
#[derive(Clone)]
pub struct AnswerSink(pub mpsc::UnboundedSender<ServerNotification>);

/// The whole body of a request to `/mcp`, within `limit` bytes; else the 413 to answer. For
/// what reads a POST before rmcp does (this endpoint, and the tasks fronts in front of it).
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload Too Large: the request body is over {limit} bytes or could not be read"
            ),
        )
            .into_response()
    })
}

/// The `/mcp` service of `S`: see the module documentation.
///
/// Cloning it is one reference count: axum clones a route's service for every request, once
/// per middleware above it, and rmcp's service holds its configuration by value (a `Vec` of
/// allowed hosts among it). Cloned by value, it was 30 % of the time-client's allocations per
/// `tools/call` (~90 of ~294, counted with a `perf probe` on malloc).
pub struct McpEndpoint<S: ServerHandler + Clone> {
    rmcp: Arc<StreamableHttpService<S, SealedSessions>>,
    inner: Arc<Inner<S>>,
}

impl<S: ServerHandler + Clone> Clone for McpEndpoint<S> {
    fn clone(&self) -> Self {
        Self {
            rmcp: self.rmcp.clone(),
            inner: self.inner.clone(),
        }
    }
}

/// A POST the endpoint may answer itself, if its body qualifies too.
enum Candidate {
    /// A request of this open session.
    Session(Arc<str>),
    /// A 2026-07-28 request (no session).
    Stateless,
}

struct Inner<S: ServerHandler> {
    server: S,
    peers: SessionPeers,
    /// The peer 2026-07-28 requests answered here are handled with.
    stateless: StatelessPeer<S>,
    sessions: Arc<SealedSessions>,
    hosts: AllowedHosts,
    max_body_bytes: usize,
    custom_methods: &'static [&'static str],
    touch_every: Option<Duration>,
    /// Session requests being answered here, for `notifications/cancelled`.
    in_flight: Arc<InFlight>,
}

impl<S: ServerHandler + Clone> McpEndpoint<S> {
    /// The endpoint of `handler`, whose `on_initialized` registers its sessions in `peers`.
    /// Each session gets a clone of `handler`. Sessions end when `shutdown` is cancelled,
    /// which also closes open SSE streams so a graceful HTTP shutdown is not held up by them.
    pub fn new(
        handler: S,
        peers: SessionPeers,
        options: &McpEndpointOptions,
        shutdown: CancellationToken,
    ) -> Self {
        let mut local = LocalSessionManager::default();
        if let Some(idle) = options.idle_timeout {
            local.session_config.keep_alive = Some(idle);
        }
        let touch_every = local.session_config.keep_alive.map(|idle| idle / 4);
        let sessions = SealedSessions::new(local, options.session_keys.clone());
        let mut options = options.clone();
        if let Some(store) = sessions.store() {
            options = options.with_session_store(store);
        }
        let sessions = Arc::new(sessions);
        let stateless = StatelessPeer::new(handler.clone(), &shutdown);
        let rmcp = streamable_http_service_with_sessions(
            handler.clone(),
            &options,
            shutdown,
            sessions.clone(),
        );
        Self {
            rmcp: Arc::new(rmcp),
            inner: Arc::new(Inner {
                server: handler,
                peers,
                stateless,
                sessions,
                hosts: AllowedHosts::new(&options.allowed_hosts),
                max_body_bytes: options.max_body_bytes,
                custom_methods: options.custom_methods,
                touch_every,
                in_flight: Arc::default(),
            }),
        }
    }

    /// Answer one HTTP request to `/mcp`.
    pub async fn handle(&self, request: Request) -> Response {
        if request.method() == Method::DELETE {
            return self.end_session(request).await;
        }
        let Some(candidate) = self.inner.candidate(&request) else {
            if self.inner.sessions.sealing()
                && request.method() == Method::POST
                && !request.headers().contains_key("mcp-session-id")
            {
                return self.maybe_initialize(request).await;
            }
            return self.to_rmcp(request).await;
        };
        let (parts, body) = request.into_parts();
        // The length was checked against the limit, so only a broken connection fails here.
        let Ok(bytes) = axum::body::to_bytes(body, self.inner.max_body_bytes).await else {
            return (
                StatusCode::BAD_REQUEST,
                "Bad Request: the body could not be read",
            )
                .into_response();
        };
        match (candidate, decode(&bytes)) {
            (Candidate::Session(session), Ok(JsonRpcMessage::Request(request)))
                if answerable(&request.request, self.inner.custom_methods) =>
            {
                if let Some(peer) = self.inner.open_session(&session).await {
                    return self.inner.answer(parts, Some(session), peer, request).await;
                }
            }
            (Candidate::Session(session), Ok(JsonRpcMessage::Notification(notification)))
                if self
                    .inner
                    .in_flight
                    .cancel(&session, &notification.notification) =>
            {
                return StatusCode::ACCEPTED.into_response();
            }
            (Candidate::Stateless, Ok(JsonRpcMessage::Request(request)))
                if stateless::dispatchable(&parts.headers, &request.request) =>
            {
                let peer = self.inner.stateless.peer();
                return self.inner.answer(parts, None, peer, request).await;
            }
            _ => {}
        }
        self.to_rmcp(Request::from_parts(parts, Body::from(bytes)))
            .await
    }

    /// A POST without a session: when it is an `initialize`, rmcp handles it inside the scope
    /// that gives the new session a sealed id carrying the client's parameters.
    async fn maybe_initialize(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let bytes = match read_body(body, self.inner.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(refused) => return refused,
        };
        let init = Envelope::parse(&bytes)
            .filter(|envelope| envelope.method == Some("initialize"))
            .and_then(|_| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|mut message| {
                serde_json::from_value::<rmcp::model::InitializeRequestParams>(
                    message.get_mut("params")?.take(),
                )
                .ok()
            });
        let request = Request::from_parts(parts, Body::from(bytes));
        match init {
            Some(init) => SealedSessions::scope(init, self.to_rmcp(request)).await,
            None => self.to_rmcp(request).await,
        }
    }

    async fn to_rmcp(&self, request: Request) -> Response {
        self.rmcp.handle(request).await.into_response()
    }

    /// A client ends its session (rmcp decides whether it may).
    async fn end_session(&self, request: Request) -> Response {
        let session = request
            .headers()
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let response = self.to_rmcp(request).await;
        if response.status().is_success()
            && let Some(session) = session
        {
            self.inner.peers.remove(&session);
        }
        response
    }
}

impl<S: ServerHandler + Clone> tower::Service<Request> for McpEndpoint<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

impl<S: ServerHandler + Clone> Inner<S> {
    /// A POST this endpoint may answer (when its body qualifies too).
    fn candidate(&self, request: &Request) -> Option<Candidate> {
        let headers = request.headers();
        if request.method() != Method::POST
            || headers.contains_key(header::ORIGIN)
            || !self.hosts.allow(headers)
            || !media_type_is(headers.get(header::CONTENT_TYPE)?, "application/json")
            || !accepts_json_and_sse(headers)
        {
            return None;
        }
        let length: usize = headers
            .get(header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()?;
        if length > self.max_body_bytes {
            return None;
        }
        if stateless::candidate(headers) {
            return Some(Candidate::Stateless);
        }
        if let Some(version) = headers.get("mcp-protocol-version")
            && !SESSION_VERSIONS.iter().any(|v| version == v)
        {
            return None;
        }
        // Standard request headers (Mcp-Method, Mcp-Name, Mcp-Param-*) are rmcp's to check.
        let mut session = None;
        for (name, value) in headers {
            match name.as_str() {
                "mcp-session-id" => session = Some(value),
                "mcp-protocol-version" => {}
                other if other.starts_with("mcp-") => return None,
                _ => {}
            }
        }
        session?
            .to_str()
            .ok()
            .map(Arc::from)
            .map(Candidate::Session)
    }

    /// The client's peer if `id` is an open, initialized session; tells rmcp's worker of the
    /// activity when due.
    async fn open_session(&self, id: &Arc<str>) -> Option<Peer<RoleServer>> {
        let (peer, touch) = self.peers.for_request(id, self.touch_every)?;
        let sessions = self.sessions.local.sessions.read().await;
        let handle = sessions.get(id)?;
        if touch {
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = handle.close_request_wise_channel(NO_SUCH_STREAM).await;
            });
        }
        Some(peer)
    }

    /// Answer `request` of `session` (none: a 2026-07-28 request) with the handler, as rmcp's
    /// service loop would call it.
    async fn answer(
        self: &Arc<Self>,
        parts: Parts,
        session: Option<Arc<str>>,
        peer: Peer<RoleServer>,
        request: JsonRpcRequest<ClientRequest>,
    ) -> Response {
        let JsonRpcRequest {
            id, mut request, ..
        } = request;
        let mut context = RequestContext::new(id.clone(), peer);
        std::mem::swap(&mut context.meta, request.get_meta_mut());
        std::mem::swap(&mut context.extensions, request.extensions_mut());
        context.extensions.insert(parts);
        let (notices, notices_rx) = mpsc::unbounded_channel();
        context.extensions.insert(AnswerSink(notices));
        let framing = match session {
            Some(_) => Framing::Session,
            None => Framing::Stateless,
        };
        let registration =
            session.map(|session| self.in_flight.register(session, id.clone(), &context.ct));
        let server = self.server.clone();
        let call: Call = Box::pin(async move {
            let _registration = registration;
            Service::<RoleServer>::handle_request(&server, request, context).await
        });
        respond(id, framing, call, notices_rx).await
    }
}
