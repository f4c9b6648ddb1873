//! One upstream MCP server: its sessions, its state, and the way a request reaches it.
//!
//! The supervisor ([`supervisor`]) keeps one session of the gateway's own with each upstream:
//! it lists the upstream's tools, resources and prompts for the catalog and health-checks it.
//! Whose session a request then goes on depends on the upstream ([`pool`]):
//!
//! - A **stateful** upstream (a Streamable HTTP server that gave the session an
//!   `mcp-session-id`) gets one session per client — per client session of the gateway, or per
//!   caller for requests without a session ([`owner`]) — opened on the client's first request
//!   to it, so what a server keeps per session (resources a tool created, the logging level,
//!   subscriptions) and what it says unprompted (log messages, requests) stay with that client.
//! - A **stateless** upstream (no session id, protocol 2026-07-28), a stdio upstream (one
//!   process is one session) and one configured with `shared_session` serve every caller on
//!   the shared session, multiplexed (rmcp matches answers to requests).
//!
//! Every session of an upstream goes through the gateway's one HTTP client (one connection
//! pool), the upstream's circuit breaker and its concurrency slots. A session is swapped or
//! looked up without holding a lock across a call: the call path finds the session, passes the
//! circuit breaker, takes a concurrency slot, sends, and waits for the answer, the call timeout
//! or the caller's cancellation, whichever comes first ([`call`]). A timeout or cancellation is
//! passed on to the upstream as `notifications/cancelled`.

mod body;
mod call;
pub mod client_requests;
// `pub(crate)` for `crate::hop` (the benchmark's view of the call path) only.
pub(crate) mod exchange;
pub mod handler;
mod lists;
mod notices;
pub mod oauth;
pub mod owner;
pub mod pool;
pub mod stdio;
mod stdio_lane;
pub mod subscriptions;
mod supervisor;
pub mod task_owners;
pub mod tasks;
mod transport;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::SystemTime,
};

use arc_swap::{ArcSwap, ArcSwapOption};
use rmcp::{
    RoleClient,
    model::{Prompt, Resource, ResourceTemplate, Tool},
    service::RunningService,
};
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::{
    exchange::Direct,
    handler::{Routes, UpstreamHandler},
};
pub use self::{owner::Owner, supervisor::Timing};
use crate::{
    breaker::Breaker, config::UpstreamConfig, metrics::UpstreamMetrics, sessions::Sessions,
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

/// One MCP session with the upstream: rmcp's client, the direct path on the same session, and
/// where what the upstream says on it goes.
pub(crate) struct Session {
    client: RunningService<RoleClient, UpstreamHandler>,
    /// The direct path on the same session (its headers are written down by the transport).
    direct: Direct,
    /// A stdio upstream's raw requests (tasks), beside rmcp's on the same pipes.
    lane: Option<stdio_lane::Lane>,
    routes: Arc<Routes>,
    /// What this session lists, when it is a client's own and has been listed
    /// ([`lists::follow`]); the gateway lists it to that client where it differs.
    own_listing: Arc<ArcSwapOption<Listing>>,
    /// Cancelled when the session is closed (ends the tasks that serve it).
    closed: CancellationToken,
    /// The upstream's `capabilities` as its `initialize` answer declared them, when the
    /// transport saw it whole ([`tasks::capture`]).
    declared: tasks::Declared,
}

pub struct Upstream {
    /// Access tokens (OAuth client credentials) sent with every request, if configured.
    token: Option<Arc<oauth::TokenSource>>,
    /// The tag of this upstream's task ids (`crate::task_ids::tag` of its name), made once:
    /// every task request and listed task is rewritten with it.
    pub(crate) task_tag: String,
    pub config: UpstreamConfig,
    pub name: Arc<str>,
    /// The gateway's own session: lists, health checks, and the calls of every client when
    /// the upstream is not stateful.
    session: ArcSwapOption<Session>,
    /// Whether the current shared session showed the upstream stateful: clients then get
    /// sessions of their own ([`pool`]).
    isolated: AtomicBool,
    /// The sessions of clients, on a stateful upstream.
    pool: pool::Pool,
    listing: ArcSwap<Listing>,
    /// What it offers of tasks, listed with `listing` from the shared session ([`tasks`]).
    tasks: ArcSwap<tasks::TaskSupport>,
    /// Whether `listing` came from the upstream (rather than being the empty start value).
    listed: AtomicBool,
    state: watch::Sender<UpstreamState>,
    pub breaker: Breaker,
    permits: Arc<Semaphore>,
    /// The routes of the shared session.
    routes: Arc<Routes>,
    sessions: Arc<Sessions>,
    timing: Timing,
    /// Told the owner whose own session's lists changed (or that session closed).
    own_lists: mpsc::UnboundedSender<Owner>,
    /// The last stderr line of a stdio upstream's program (for its error messages).
    stderr: stdio::StderrTail,
    /// A client of its own (its CA, client certificate, headers), else the gateway's.
    own_client: Option<reqwest::Client>,
    /// Woken when a call failed in a way that suggests the upstream is gone.
    check_now: Notify,
    pub metrics: UpstreamMetrics,
}

impl Upstream {
    pub fn new(
        config: UpstreamConfig,
        timing: Timing,
        sessions: Arc<Sessions>,
        own_lists: mpsc::UnboundedSender<Owner>,
        metrics: UpstreamMetrics,
    ) -> Self {
        let name: Arc<str> = Arc::from(config.name.as_str());
        let token = config
            .oauth
            .clone()
            .map(|settings| Arc::new(oauth::TokenSource::new(settings, timing.http.clone())));
        Self {
            token,
            task_tag: crate::task_ids::tag(&config.name),
            breaker: Breaker::new(config.breaker),
            permits: Arc::new(Semaphore::new(config.max_concurrent_calls)),
            routes: Arc::new(Routes::new(name.clone(), sessions.clone())),
            sessions,
            timing,
            own_lists,
            name,
            config,
            session: ArcSwapOption::empty(),
            isolated: AtomicBool::new(false),
            pool: pool::Pool::default(),
            listing: ArcSwap::from_pointee(Listing::default()),
            tasks: Default::default(),
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
    fn http(&self) -> &reqwest::Client {
        self.own_client.as_ref().unwrap_or(&self.timing.http)
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

    /// Write down that `owner` started the task of `created` (the upstream's
    /// `CreateTaskResult`), when the upstream does not keep clients apart ([`task_owners`]).
    pub(crate) fn started_task(&self, created: &serde_json::Value, owner: &Owner) {
        if !self.isolates_clients()
            && let Some(id) = created["task"]["taskId"].as_str()
        {
            let ttl = created["task"]["ttl"].as_u64();
            self.routes.task_owners.record(id, owner, ttl);
        }
    }

    /// Whether `owner` may reach task `id` (the upstream's): any where the upstream keeps
    /// clients apart (it decides), else only one it started ([`task_owners`]).
    pub(crate) fn shows_task(&self, id: &str, owner: &Owner) -> bool {
        self.isolates_clients() || self.routes.task_owners.owns(id, owner)
    }

    /// Whether clients get upstream sessions of their own (the upstream is up and stateful).
    pub fn isolates_clients(&self) -> bool {
        self.isolated.load(Ordering::Acquire)
    }

    /// Whether the upstream's session is on protocol 2026-07-28, whose servers ask their
    /// client for input in `InputRequiredResult` rounds (`crate::gateway::rounds`).
    pub fn speaks_rounds(&self) -> bool {
        self.session.load().as_ref().is_some_and(|session| {
            session
                .client
                .peer_info()
                .is_some_and(|info| !info.protocol_version.has_initialize())
        })
    }

    /// Upstream sessions of clients open (or opening) now.
    pub fn client_sessions(&self) -> usize {
        self.pool.len()
    }

    /// The last listing, and whether there has been one.
    pub fn listing(&self) -> (Arc<Listing>, bool) {
        (
            self.listing.load_full(),
            self.listed.load(Ordering::Acquire),
        )
    }
}
