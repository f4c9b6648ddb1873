//! The gateway itself: its upstreams, the current catalog, and routing a request to the
//! upstream that serves it. The MCP face ([`crate::server`]) and the REST face
//! ([`crate::rest`]) both call [`Gateway::call_tool`] and friends, naming the request's
//! [`Owner`]: whose upstream sessions it goes on (see `crate::upstream::pool`) and whose
//! catalog routes it ([`own_lists`]).

use std::{collections::HashSet, sync::Arc, time::Instant};

use arc_swap::ArcSwap;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest,
    ServerResult,
};
use switchboard_runtime::Metrics;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

mod access;
mod admission;
// `pub(crate)` for `crate::hop` (the benchmark's view of the call path) only.
pub(crate) mod calls;
mod isolation;
pub mod own_lists;
mod prompts;
mod resources;
mod rounds;
pub mod tasks;

pub(crate) use calls::name_in;
pub use calls::{CallAudit, Refused};

use switchboard_runtime::auth::{Identity, ON_BEHALF_OF};

use crate::{
    cache::{Cache, Plan},
    catalog::Catalog,
    config::Config,
    error::CallError,
    metrics::GatewayMetrics,
    naming::Renamed,
    policy::{Permissions, Policy},
    sessions::Sessions,
    upstream::{Owner, Timing, Upstream, handler::Caller},
};

/// A running gateway. Cheap to clone; every clone is the same gateway.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    upstreams: Vec<Arc<Upstream>>,
    catalog: ArcSwap<Catalog>,
    /// Bumped after every catalog swap (tests and `up` can wait on it).
    generation: watch::Sender<u64>,
    sessions: Arc<Sessions>,
    metrics: Metrics,
    gateway_metrics: GatewayMetrics,
    /// The upstream supervisors, waited for at shutdown (they close their sessions).
    supervisors: tokio_util::task::TaskTracker,
    policy: Option<Policy>,
    audit: switchboard_runtime::audit::Audit,
    delegates: Vec<String>,
    /// The catalogs of clients whose own upstream sessions list something else.
    own: own_lists::OwnCatalogs,
    /// Results of read-only, idempotent tools (see `crate::cache`).
    cache: Arc<Cache>,
    /// 2026-07-28 calls waiting for their clients' input (`crate::server::input_rounds`).
    input_rounds: crate::server::input_rounds::AllRounds,
}

impl Gateway {
    /// Start supervising every upstream of `config` (in the background) and return at once:
    /// the gateway serves before, and whether or not, any upstream is reachable.
    ///
    /// Fails only when the HTTP client cannot be set up (an unusable CA file or proxy).
    pub fn start(
        config: &Config,
        shutdown: CancellationToken,
    ) -> Result<Self, switchboard_runtime::Error> {
        let client = switchboard_runtime::client::ClientOptions::from_http(&config.http)
            .with_connect_timeout(config.connect_timeout);
        for upstream in &config.upstreams {
            client.check_proxy_for(&upstream.url)?;
        }
        let http = client.build()?;
        // Task ids name their upstream by a digest of its name (`crate::task_ids`).
        let mut tags = HashSet::new();
        for upstream in &config.upstreams {
            if !tags.insert(crate::task_ids::tag(&upstream.name)) {
                return Err(switchboard_runtime::Error::Config(format!(
                    "upstream '{}': its task id tag is another upstream's; rename it",
                    upstream.name
                )));
            }
        }
        let mut own_clients = Vec::with_capacity(config.upstreams.len());
        for upstream in &config.upstreams {
            let setting = format!("upstream '{}'", upstream.name);
            own_clients.push(upstream.access.client(&setting, &client)?);
        }
        let metrics = Metrics::new(crate::SERVICE);
        let gateway_metrics = GatewayMetrics::register(&metrics);
        let cache =
            Arc::new(Cache::new(&config.cache, &metrics).map_err(|e| {
                switchboard_runtime::Error::Config(format!("cache_redis_url: {e}"))
            })?);
        let sessions = Arc::new(Sessions::default());
        let timing = Timing {
            connect_timeout: config.connect_timeout,
            health_interval: config.health_interval,
            session_idle_timeout: config.session_idle_timeout,
            http,
            client,
        };
        // Owners whose own upstream sessions' lists changed (see `own_lists`).
        let (own_lists, own_changes) = mpsc::unbounded_channel();
        let upstreams: Vec<Arc<Upstream>> = config
            .upstreams
            .iter()
            .zip(own_clients)
            .map(|(u, own_client)| {
                Arc::new(
                    Upstream::new(
                        u.clone(),
                        timing.clone(),
                        sessions.clone(),
                        own_lists.clone(),
                        gateway_metrics.upstream(&u.name),
                    )
                    .with_client(own_client),
                )
            })
            .collect();
        let gateway = Self {
            inner: Arc::new(Inner {
                upstreams,
                catalog: ArcSwap::from_pointee(Catalog::default()),
                generation: watch::Sender::new(0),
                sessions,
                metrics,
                gateway_metrics,
                supervisors: tokio_util::task::TaskTracker::new(),
                policy: config.policy.clone(),
                audit: config.http.audit.clone(),
                delegates: config.delegates.clone(),
                own: Default::default(),
                cache,
                input_rounds: Default::default(),
            }),
        };
        if gateway.inner.cache.is_enabled() {
            let cache = gateway.inner.cache.clone();
            tokio::spawn(async move { cache.connect().await });
        }
        let changed = Arc::new(Notify::new());
        for upstream in &gateway.inner.upstreams {
            gateway.inner.supervisors.spawn(
                upstream
                    .clone()
                    .supervise(changed.clone(), shutdown.clone()),
            );
        }
        gateway.inner.supervisors.close();
        tokio::spawn(
            gateway
                .clone()
                .maintain_catalog(changed, own_changes, shutdown.clone()),
        );
        tokio::spawn(
            gateway
                .clone()
                .sweep_sessions(config.session_idle_timeout, shutdown),
        );
        Ok(gateway)
    }

    /// Wait (at most `limit`) until every upstream supervisor has stopped, after the
    /// shutdown token given to [`Gateway::start`] fired: their sessions are then closed.
    pub async fn stopped(&self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, self.inner.supervisors.wait()).await;
    }

    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.inner.upstreams
    }

    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.inner.upstreams.iter().find(|u| u.config.name == name)
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.load_full()
    }

    /// A receiver that changes whenever a new catalog is in place.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// What the caller may call: `None` when no policy is configured (everything). A caller
    /// the authentication layer did not record gets nothing (fail closed).
    pub fn permissions(&self, identity: Option<&Identity>) -> Option<Permissions> {
        let policy = self.inner.policy.as_ref()?;
        Some(match identity {
            Some(identity) => policy.for_caller(identity),
            None => policy.for_nobody(),
        })
    }

    /// Whether a caller with `permissions` may call tool `name` of upstream number
    /// `upstream` (everything when there is no policy).
    pub fn may_call(&self, permissions: Option<&Permissions>, name: &str, upstream: usize) -> bool {
        permissions.is_none_or(|p| p.allows(name, &self.inner.upstreams[upstream].config.name))
    }

    /// The `tools/list` a caller with `permissions` sees, of `owner`'s catalog.
    pub fn visible_tools(
        &self,
        permissions: Option<&Permissions>,
        owner: &Owner,
    ) -> Vec<rmcp::model::Tool> {
        let catalog = self.catalog_for(owner);
        if permissions.is_none() {
            return catalog.tools.clone();
        }
        catalog
            .tools
            .iter()
            .filter(|tool| {
                catalog
                    .tool_routes
                    .get(tool.name.as_ref())
                    .is_some_and(|route| self.may_call(permissions, &tool.name, route.upstream))
            })
            .cloned()
            .collect()
    }

    /// The identity a request is judged as: the authenticated caller's, or, when it names a
    /// user in `_meta` ([`ON_BEHALF_OF`]), that user's — only if the caller is a configured
    /// delegate; anyone else naming a user is refused.
    pub fn effective_identity(
        &self,
        authenticated: Option<Identity>,
        meta: Option<&serde_json::Value>,
    ) -> Result<Option<Identity>, String> {
        let Some(user) = meta else {
            return Ok(authenticated);
        };
        let Some(caller) = authenticated else {
            return Err(format!(
                "an unidentified caller may not act for another ({ON_BEHALF_OF})"
            ));
        };
        if !self
            .inner
            .delegates
            .iter()
            .any(|pattern| crate::policy::matches(pattern, &caller.subject))
        {
            return Err(format!(
                "'{}' may not act for another caller ({ON_BEHALF_OF}); list it in --delegate / MCP_SERVER_DELEGATES",
                caller.subject
            ));
        }
        Identity::delegated(user, &caller).map(Some)
    }

    /// Where tool calls are recorded.
    pub fn audit(&self) -> &switchboard_runtime::audit::Audit {
        &self.inner.audit
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The result cache.
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// The 2026-07-28 calls waiting for their clients' input.
    pub(crate) fn input_rounds(&self) -> &crate::server::input_rounds::AllRounds {
        &self.inner.input_rounds
    }

    pub(crate) fn sessions(&self) -> &Arc<Sessions> {
        &self.inner.sessions
    }

    /// Rebuild the catalog whenever an upstream changes, and tell connected clients what
    /// changed; rebuild a client's own catalog whenever its own lists change. One task, so
    /// rebuilds never race.
    async fn maintain_catalog(
        self,
        changed: Arc<Notify>,
        mut own_changes: mpsc::UnboundedReceiver<Owner>,
        shutdown: CancellationToken,
    ) {
        let mut logged: HashSet<Renamed> = HashSet::new();
        loop {
            let owner = tokio::select! {
                () = changed.notified() => None,
                Some(owner) = own_changes.recv() => Some(owner),
                () = shutdown.cancelled() => return,
            };
            if let Some(owner) = owner {
                self.refresh_own(&owner);
                continue;
            }
            let (mut catalog, renamed) =
                Catalog::build(&self.inner.upstreams, &self.inner.gateway_metrics, &[]);
            self.inner
                .cache
                .plan_catalog(&mut catalog, &self.inner.upstreams);
            for r in renamed {
                if !logged.contains(&r) {
                    tracing::info!(upstream = %r.upstream, original = %r.original, public = %r.public, "name offered by several upstreams (or not a valid tool name); published with the upstream's prefix");
                    logged.insert(r);
                }
            }
            let changes = own_lists::changes(&self.inner.catalog.load(), &catalog);
            self.inner.catalog.store(Arc::new(catalog));
            self.inner.generation.send_modify(|g| *g += 1);
            if changes.any() {
                tracing::debug!(
                    ?changes,
                    sessions = self.inner.sessions.len(),
                    "catalog changed"
                );
                self.inner.sessions.broadcast(changes);
            }
            self.refresh_all_own();
        }
    }

    /// Route a `tools/call` to its upstream under the tool's original name.
    #[tracing::instrument(level = "debug", skip_all, fields(tool = %params.name))]
    pub async fn call_tool(
        &self,
        mut params: CallToolRequestParams,
        owner: &Owner,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<CallToolResponse, CallError> {
        let start = Instant::now();
        let catalog = self.catalog_for(owner);
        let Some(route) = catalog.tool_routes.get(params.name.as_ref()) else {
            return Err(CallError::Unknown {
                kind: "tool",
                name: params.name.into_owned(),
                list: "tools/list (or GET /api/tools)",
            });
        };
        let upstream = &self.inner.upstreams[route.upstream];
        // The tool's plan was decided with the catalog: a tool without a cache rule pays this
        // one comparison. The policy has already let the caller call the tool (`admit_call`).
        let cached = match route.cache {
            Plan::Cached(ttl) => self
                .inner
                .cache
                .key(upstream, &route.original, &params, owner)
                .map(|key| (key, ttl)),
            _ => None,
        };
        if let Some((key, _)) = &cached
            && let Some(result) = self.inner.cache.lookup(key).await
        {
            route
                .metrics
                .record("cached", start.elapsed().as_secs_f64());
            return Ok(CallToolResponse::Complete(result));
        }
        // The caller's `_meta` goes along; rmcp replaces its progress token with the upstream
        // leg's own, which the upstream handler maps back to the caller's.
        params.name = route.original.clone();
        // A 2026-07-28 upstream's rounds are answered here for a client that cannot (`rounds`).
        let answer = rounds::request(
            upstream,
            params,
            |params| ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            owner,
            caller,
            ct,
        )
        .await;
        let result = match answer {
            Ok(ServerResult::CallToolResult(mut result)) => {
                complete(&mut result.result_type);
                Ok(CallToolResponse::Complete(result))
            }
            Ok(ServerResult::InputRequiredResult(result)) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            Ok(ServerResult::CreateTaskResult(result)) => Ok(CallToolResponse::Task(result)),
            Ok(ServerResult::EmptyResult(_)) => Ok(CallToolResponse::Complete(
                CallToolResult::success(Vec::new()),
            )),
            Ok(_) => Err(CallError::Unexpected {
                upstream: upstream.config.name.clone(),
            }),
            Err(error) => Err(error),
        };
        if let (Some((key, ttl)), Ok(CallToolResponse::Complete(result))) = (cached, &result) {
            self.inner.cache.store(key, result, ttl);
        }
        let outcome = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => "tool_error",
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        route.metrics.record(outcome, start.elapsed().as_secs_f64());
        result
    }
}

/// Mark an upstream's result as complete when it does not say (a 2025-era upstream never does).
/// A client on protocol 2026-07-28 requires `resultType` on every result; rmcp removes the
/// `"complete"` marker again when it answers a client of an older revision.
fn complete(result_type: &mut Option<rmcp::model::ResultType>) {
    result_type.get_or_insert(rmcp::model::ResultType::COMPLETE);
}
