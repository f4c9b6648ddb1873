//! One upstream MCP server: its session, its state, and the way a request reaches it.
//!
//! The gateway keeps one rmcp client session per upstream and sends every caller's requests
//! over it concurrently (rmcp multiplexes them). The session is swapped atomically when the
//! supervisor ([`supervisor`]) reconnects, so the call path takes no lock: it loads the
//! current session, passes the circuit breaker, takes a concurrency slot, sends, and waits
//! for the answer, the call timeout or the caller's cancellation, whichever comes first.
//! A timeout or cancellation is passed on to the upstream as `notifications/cancelled`.

pub mod client_requests;
mod exchange;
pub mod handler;
pub mod stdio;
pub mod subscriptions;
mod supervisor;
mod transport;

use std::{sync::Arc, time::SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use rmcp::{
    Peer, RoleClient,
    model::{
        CancelledNotificationParam, ClientRequest, GetMeta, NumberOrString, ProgressToken, Prompt,
        RequestId, Resource, ResourceTemplate, ServerResult, Tool,
    },
    service::{PeerRequestOptions, RunningService, ServiceError},
};
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;

pub use self::supervisor::Timing;
use self::{
    exchange::{Direct, Exchange},
    handler::{Caller, Routes, UpstreamHandler},
};
use crate::{
    breaker::Breaker, config::UpstreamConfig, error::CallError, metrics::UpstreamMetrics,
    sessions::Sessions,
};

/// What an upstream offered when it was last listed. Kept while it is down, so the public
/// names of everyone's tools stay the same when it comes back.
#[derive(Debug, Default, PartialEq)]
pub struct Listing {
    pub tools: Vec<Tool>,
    pub resources: Vec<Resource>,
    pub resource_templates: Vec<ResourceTemplate>,
    pub prompts: Vec<Prompt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not reached yet since the gateway started.
    Connecting,
    /// Initialized and answering health checks; its tools are listed.
    Up,
    /// Unreachable or failing health checks; its tools are not listed, calls fail fast.
    Down,
}

/// An upstream's state as `/ready`, `/api/tools` and tests see it.
#[derive(Debug, Clone)]
pub struct UpstreamState {
    pub status: Status,
    /// Why it is down (the last connection or health-check error).
    pub error: Option<String>,
    /// `name version` from its `initialize` answer.
    pub server: Option<String>,
    pub since: SystemTime,
    /// Connection attempts (for a stdio upstream: starts of its program) that failed in a row
    /// since it was last up: a crash loop shows as a growing number.
    pub consecutive_failures: u32,
}

struct Session {
    client: RunningService<RoleClient, UpstreamHandler>,
    /// The direct path on the same session (its headers are written down by the transport).
    direct: Direct,
}

pub struct Upstream {
    pub config: UpstreamConfig,
    pub name: Arc<str>,
    session: ArcSwapOption<Session>,
    listing: ArcSwap<Listing>,
    /// Whether `listing` came from the upstream (rather than being the empty start value).
    listed: std::sync::atomic::AtomicBool,
    state: watch::Sender<UpstreamState>,
    pub breaker: Breaker,
    permits: Semaphore,
    routes: Arc<Routes>,
    /// The last stderr line of a stdio upstream's program (for its error messages).
    stderr: stdio::StderrTail,
    /// A client of its own (its CA, client certificate, headers), else the gateway's.
    own_client: Option<reqwest::Client>,
    /// Woken when a call failed in a way that suggests the upstream is gone.
    check_now: Notify,
    pub metrics: UpstreamMetrics,
}

impl Upstream {
    pub fn new(config: UpstreamConfig, sessions: Arc<Sessions>, metrics: UpstreamMetrics) -> Self {
        let name: Arc<str> = Arc::from(config.name.as_str());
        Self {
            breaker: Breaker::new(config.breaker),
            permits: Semaphore::new(config.max_concurrent_calls),
            routes: Arc::new(Routes::new(name.clone(), sessions)),
            name,
            config,
            session: ArcSwapOption::empty(),
            listing: ArcSwap::from_pointee(Listing::default()),
            listed: Default::default(),
            state: watch::Sender::new(UpstreamState {
                status: Status::Connecting,
                error: None,
                server: None,
                since: SystemTime::now(),
                consecutive_failures: 0,
            }),
            stderr: stdio::StderrTail::default(),
            own_client: None,
            check_now: Notify::new(),
            metrics,
        }
    }

    /// Use `client` for this upstream instead of the gateway's shared one.
    pub fn with_client(mut self, client: Option<reqwest::Client>) -> Self {
        self.own_client = client;
        self
    }

    /// The HTTP client requests to this upstream go through.
    fn http<'a>(&'a self, shared: &'a reqwest::Client) -> &'a reqwest::Client {
        self.own_client.as_ref().unwrap_or(shared)
    }

    pub fn state(&self) -> UpstreamState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of state (tests wait on it).
    pub fn subscribe(&self) -> watch::Receiver<UpstreamState> {
        self.state.subscribe()
    }

    pub fn is_up(&self) -> bool {
        self.state.borrow().status == Status::Up
    }

    /// The last listing, and whether there has been one.
    pub fn listing(&self) -> (Arc<Listing>, bool) {
        (
            self.listing.load_full(),
            self.listed.load(std::sync::atomic::Ordering::Acquire),
        )
    }

    /// Send `request` to this upstream for `caller` (None for REST callers), within the call
    /// timeout, giving up when `ct` is cancelled.
    pub async fn request(
        &self,
        request: ClientRequest,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<ServerResult, CallError> {
        let ticket = self
            .breaker
            .admit()
            .map_err(|rejected| CallError::CircuitOpen {
                upstream: self.config.name.clone(),
                retry_in: rejected.retry_in,
            })?;
        let result = self.send(request, caller, ct).await;
        match &result {
            Err(error) if error.is_upstream_failure() => {
                if ticket.failure() {
                    tracing::warn!(upstream = %self.name, %error, cooldown_seconds = self.config.breaker.cooldown.as_secs_f64(), "circuit breaker opened");
                }
                self.check_now.notify_one();
            }
            Err(CallError::Cancelled | CallError::Down { .. }) => drop(ticket),
            _ => ticket.success(),
        }
        self.metrics.set_circuit(self.breaker.state());
        result
    }

    async fn send(
        &self,
        mut request: ClientRequest,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<ServerResult, CallError> {
        let deadline = tokio::time::Instant::now() + self.config.call_timeout;
        let Some(session) = self.session.load_full() else {
            return Err(self.down());
        };
        let _permit = tokio::select! {
            biased;
            () = ct.cancelled() => return Err(CallError::Cancelled),
            permit = tokio::time::timeout_at(deadline, self.permits.acquire()) => match permit {
                Ok(Ok(permit)) => permit,
                Ok(Err(_closed)) => return Err(self.down()),
                Err(_elapsed) => return Err(self.timeout()),
            },
        };
        // The upstream's span becomes a child of the current one (the gateway's tool call).
        switchboard_protocol::mcp_trace::inject_request(&mut request);
        if let Some(link) = session.direct.link() {
            match self
                .send_direct(&session, &link, &mut request, &caller, ct, deadline)
                .await
            {
                Some(result) => return result,
                None => {
                    tracing::debug!(upstream = %self.name, "session expired; rmcp re-initializes it")
                }
            }
        }
        self.send_rmcp(&session, request, caller, ct, deadline)
            .await
    }

    /// The direct path ([`exchange`]); `None` when the upstream no longer knows the session,
    /// and nothing ran.
    async fn send_direct(
        &self,
        session: &Session,
        link: &Arc<exchange::Link>,
        request: &mut ClientRequest,
        caller: &Option<Caller>,
        ct: &CancellationToken,
        deadline: tokio::time::Instant,
    ) -> Option<Result<ServerResult, CallError>> {
        let number = session.direct.next_id();
        let id = RequestId::Number(number);
        // Registered under its own number (for log routing) whether or not the caller asked
        // for progress; the upstream is asked for progress only if the caller was.
        let _registration = caller.as_ref().map(|caller| {
            let token = ProgressToken(NumberOrString::Number(number));
            if caller.progress_token.is_some() {
                request.get_meta_mut().set_progress_token(token.clone());
            }
            self.routes.register(token, caller.clone())
        });
        let mut pending = Pending {
            peer: session.client.peer(),
            id: Some(id.clone()),
        };
        let exchange = session.direct.exchange(link, &id, request, &self.routes);
        let outcome = tokio::select! {
            biased;
            outcome = exchange => outcome,
            () = ct.cancelled() => {
                pending.cancel_now("cancelled by the client").await;
                return Some(Err(CallError::Cancelled));
            }
            () = tokio::time::sleep_until(deadline) => {
                pending.cancel("timed out at the gateway");
                return Some(Err(self.timeout()));
            }
        };
        pending.id = None;
        match outcome {
            Exchange::Answered(Ok(result)) => Some(Ok(result)),
            Exchange::Answered(Err(error)) => Some(Err(CallError::Upstream {
                upstream: self.config.name.clone(),
                error,
            })),
            Exchange::SessionExpired => None,
            Exchange::Failed(message) => Some(Err(CallError::Transport {
                upstream: self.config.name.clone(),
                message,
            })),
        }
    }

    /// rmcp's path: through the session's service loop and transport worker.
    async fn send_rmcp(
        &self,
        session: &Session,
        request: ClientRequest,
        caller: Option<Caller>,
        ct: &CancellationToken,
        deadline: tokio::time::Instant,
    ) -> Result<ServerResult, CallError> {
        let peer = session.client.peer();
        let mut handle = peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| self.transport(&e))?;
        let _registration = caller.map(|c| self.routes.register(handle.progress_token.clone(), c));
        let mut pending = Pending {
            peer,
            id: Some(handle.id.clone()),
        };
        let answer = tokio::select! {
            biased;
            answer = &mut handle.rx => answer,
            () = ct.cancelled() => {
                // Told before the slot is freed, so the slot bounds what the upstream runs.
                pending.cancel_now("cancelled by the client").await;
                return Err(CallError::Cancelled);
            }
            () = tokio::time::sleep_until(deadline) => {
                pending.cancel("timed out at the gateway");
                return Err(self.timeout());
            }
        };
        pending.id = None;
        match answer {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(ServiceError::McpError(error))) => Err(CallError::Upstream {
                upstream: self.config.name.clone(),
                error,
            }),
            Ok(Err(error)) => Err(self.transport(&error)),
            Err(_dropped) => Err(CallError::Transport {
                upstream: self.config.name.clone(),
                message: "the session closed before the answer came".to_owned(),
            }),
        }
    }

    fn down(&self) -> CallError {
        let state = self.state.borrow();
        CallError::Down {
            upstream: self.config.name.clone(),
            reason: match (&state.status, &state.error) {
                (_, Some(error)) => error.clone(),
                (Status::Connecting, None) => "not connected yet".to_owned(),
                _ => "not connected".to_owned(),
            },
        }
    }

    fn timeout(&self) -> CallError {
        CallError::Timeout {
            upstream: self.config.name.clone(),
            timeout: self.config.call_timeout,
        }
    }

    fn transport(&self, error: &ServiceError) -> CallError {
        CallError::Transport {
            upstream: self.config.name.clone(),
            message: crate::error::root_cause(error),
        }
    }
}

/// An upstream request that has been sent but not answered: cancelling it (explicitly or by
/// being dropped with the caller's future) tells the upstream with `notifications/cancelled`.
struct Pending<'a> {
    peer: &'a Peer<RoleClient>,
    id: Option<RequestId>,
}

/// How long a client's cancellation waits for the upstream to take the notice (the slot is
/// held meanwhile); a timeout does not wait, as the upstream is probably unwell.
const CANCEL_NOTICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

impl Pending<'_> {
    async fn cancel_now(&mut self, reason: &str) {
        if let Some(id) = self.id.take() {
            let params = CancelledNotificationParam::new(Some(id), Some(reason.to_owned()));
            let notice =
                tokio::time::timeout(CANCEL_NOTICE_TIMEOUT, self.peer.notify_cancelled(params));
            if !matches!(notice.await, Ok(Ok(()))) {
                tracing::debug!("cancellation not delivered upstream in time");
            }
        }
    }

    fn cancel(&mut self, reason: &str) {
        if let Some(id) = self.id.take() {
            let peer = self.peer.clone();
            let params = CancelledNotificationParam::new(Some(id), Some(reason.to_owned()));
            tokio::spawn(async move {
                if let Err(error) = peer.notify_cancelled(params).await {
                    tracing::debug!(%error, "cancellation not delivered upstream");
                }
            });
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.cancel("the caller went away");
    }
}
