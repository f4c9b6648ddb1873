//! The result cache: answers to calls of read-only, idempotent tools, kept for a while so the
//! same call within the time to live is answered without reaching the upstream.
//!
//! - **Opt-in per tool.** `--cache PATTERN=SECONDS` rules (see `crate::config::cache`) name
//!   tools by their gateway name. A matched tool is cached only when its upstream annotates it
//!   `readOnlyHint: true` and `idempotentHint: true`: for any other tool a second call may do or
//!   answer something else. A rule that matches such a tool is reported (a warning, once per
//!   tool, and `cache` in `GET /api/tools`); the tool is called as usual. When several rules
//!   match, the shortest time to live wins (the safe choice, whatever their order).
//! - **Decided once.** Each route of the catalog carries its [`Plan`], set when the catalog is
//!   built (the annotations come with the listing). A call of a tool without a rule costs one
//!   comparison of that plan.
//! - **After the policy.** The gateway looks up a call only after [`crate::Gateway::admit_call`]
//!   let the caller call the tool (policy, rate limits, audit), so a cached answer is only ever
//!   served to a caller allowed to call the tool, and every call is audited whether or not it
//!   was cached. The caller's identity is therefore not part of the key as such.
//! - **Whose answer.** What an upstream answers can differ per caller only where it can tell
//!   callers apart. Where it cannot (stateless, stdio or `shared_session` upstreams: every
//!   caller on one session) an answer is everyone's. Where it can, it is partitioned
//!   ([`Partition`]): on an upstream that gives each client a session of its own
//!   (`crate::upstream::pool`) a read-only tool may still read what that session holds, so the
//!   key includes the [`Owner`]: a client session's answers are its own, and a caller without a
//!   session gets its own (across replicas too: its sessionless requests already land on any
//!   replica's session of it). A request whose `_meta` names a user for a delegate
//!   ([`ON_BEHALF_OF`], passed on to the upstream) is partitioned by that user as well.
//! - **What is kept.** Complete results only: never one with `isError: true`, never an
//!   upstream's `input_required` or task answer, never a gateway failure, and no result over
//!   `cache_max_entry_bytes`. A call that answers an upstream's questions
//!   (`inputResponses`/`requestState`) continues one caller's exchange and is neither looked up
//!   nor stored.
//! - **Progress tokens** do not change a result, only whether the upstream reports progress on
//!   the way, which it may do or not: a call with one is answered from the cache at once (with no
//!   progress notifications), and its result is stored like any other. The rest of `_meta`
//!   (trace context, client info) is not part of the key.
//! - **Where.** In this process ([`memory`], bounded in entries and bytes, least recently used
//!   evicted first), or in Redis when `cache_redis_url` is set, shared by every replica using it
//!   ([`redis`]). A Redis that fails or is slow costs at most [`redis::TIMEOUT`] per call and
//!   then nothing for [`redis::RETRY_AFTER`]: calls go to their upstreams as if uncached,
//!   counted in `mcp_cache_errors_total`, and `/ready` shows the cache degraded while the
//!   gateway stays ready. Writes to Redis run beside the call; they never delay its answer.

pub mod key;
mod memory;
mod redis;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use serde_json::{Value, json};
use switchboard_runtime::{DependencyStatus, Metrics, auth::ON_BEHALF_OF};

pub use self::key::{Key, Partition};
use crate::{
    catalog::Catalog,
    config::CacheSettings,
    metrics::CacheMetrics,
    policy::matches,
    upstream::{Owner, Upstream},
};

/// What the cache does for one tool, decided when the catalog is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plan {
    /// No rule matches the tool.
    #[default]
    Off,
    /// Cached for this long.
    Cached(Duration),
    /// A rule matches, but the upstream does not annotate the tool read-only and idempotent.
    Unsafe,
}

/// The cache's name in `/ready`: with a space, so no upstream (whose names have none) can
/// take it.
pub const READINESS_NAME: &str = "result cache";

/// Why a matched tool is not cached (for `GET /api/tools` and the log).
pub const UNSAFE_REASON: &str =
    "its upstream does not annotate it readOnlyHint: true and idempotentHint: true";

impl Plan {
    /// `cache` of a tool in `GET /api/tools`: null without a rule.
    pub fn describe(&self) -> Value {
        match self {
            Plan::Off => Value::Null,
            Plan::Cached(ttl) => json!({ "cached": true, "ttl_seconds": ttl.as_secs_f64() }),
            Plan::Unsafe => json!({ "cached": false, "reason": UNSAFE_REASON }),
        }
    }
}

enum Store {
    Memory(memory::Memory),
    // Boxed: the client and its connection state are large, and only one store exists.
    Redis(Box<redis::Redis>),
}

/// The result cache of one gateway.
pub struct Cache {
    rules: Vec<(String, Duration)>,
    store: Store,
    max_entry_bytes: usize,
    metrics: CacheMetrics,
    /// (upstream, tool) pairs already warned about, so a rebuilt catalog does not repeat it.
    warned: Mutex<HashSet<(String, String)>>,
}

impl Cache {
    /// The cache `settings` describe, its counters in `metrics`. Nothing connects here.
    pub fn new(settings: &CacheSettings, metrics: &Metrics) -> Result<Self, String> {
        let store = match &settings.redis {
            Some(redis) => Store::Redis(Box::new(redis::Redis::new(redis)?)),
            None => Store::Memory(memory::Memory::new(
                settings.max_entries,
                settings.max_bytes,
            )),
        };
        // No counters for a cache that caches nothing.
        let name = match store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        };
        let metrics = if settings.rules.is_empty() {
            CacheMetrics::register(&Metrics::new(crate::SERVICE), name)
        } else {
            CacheMetrics::register(metrics, name)
        };
        Ok(Self {
            rules: settings.rules.clone(),
            store,
            max_entry_bytes: settings.max_entry_bytes,
            metrics,
            warned: Mutex::default(),
        })
    }

    /// Whether any tool may be cached at all.
    pub fn is_enabled(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Connect to Redis now, when that is the store (so `/ready` tells at once).
    pub async fn connect(&self) {
        if let Store::Redis(redis) = &self.store {
            redis.connect().await;
        }
    }

    /// What to do for `tool` (published as `name`) of `upstream`.
    pub fn plan(&self, name: &str, tool: &Tool, upstream: &str) -> Plan {
        let Some(ttl) = self
            .rules
            .iter()
            .filter(|(pattern, _)| matches(pattern, name))
            .map(|(_, ttl)| *ttl)
            .min()
        else {
            return Plan::Off;
        };
        let annotations = tool.annotations.as_ref();
        let safe = annotations
            .is_some_and(|a| a.read_only_hint == Some(true) && a.idempotent_hint == Some(true));
        if safe {
            return Plan::Cached(ttl);
        }
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.insert((upstream.to_owned(), tool.name.to_string())) {
            tracing::warn!(tool = %name, upstream, "a cache rule matches this tool but it is not cached: {UNSAFE_REASON}");
        }
        Plan::Unsafe
    }

    /// Set the plan of every route of `catalog`.
    pub fn plan_catalog(&self, catalog: &mut Catalog, upstreams: &[Arc<Upstream>]) {
        if !self.is_enabled() {
            return;
        }
        for entry in &catalog.entries {
            let name = entry.tool.name.as_ref();
            let plan = self.plan(name, &entry.tool, &upstreams[entry.upstream].config.name);
            if let Some(route) = catalog.tool_routes.get_mut(name) {
                route.cache = plan;
            }
        }
    }

    /// The key of a call of `tool` (its upstream name) on `upstream` by `owner`, or `None`
    /// when this call must not use the cache.
    pub fn key(
        &self,
        upstream: &Upstream,
        tool: &str,
        params: &CallToolRequestParams,
        owner: &Owner,
    ) -> Option<Key> {
        if params.input_responses.is_some() || params.request_state.is_some() {
            return None;
        }
        let user = params.meta.as_ref().and_then(|meta| meta.get(ON_BEHALF_OF));
        let own_session = upstream.isolates_clients().then(|| match owner {
            Owner::Session(id) => format!("session {id}"),
            Owner::Identity(subject) => format!("caller {subject}"),
            Owner::Anonymous => "anonymous".to_owned(),
        });
        let whose = match (own_session, user) {
            (None, None) => None,
            (session, user) => {
                let mut whose = session.unwrap_or_default().into_bytes();
                if let Some(user) = user {
                    whose.extend_from_slice(b" for ");
                    key::write_canonical(user, &mut whose);
                }
                Some(String::from_utf8_lossy(&whose).into_owned())
            }
        };
        let partition = whose.as_deref().map_or(Partition::Shared, Partition::Of);
        Some(Key::new(
            &upstream.config.name,
            tool,
            partition,
            params.arguments.as_ref(),
        ))
    }

    /// The stored answer under `key`, if there is one. Every failure is a miss.
    pub async fn lookup(&self, key: &Key) -> Option<CallToolResult> {
        let found = match &self.store {
            Store::Memory(memory) => memory
                .get(key, Instant::now())
                .map(|result| (*result).clone()),
            Store::Redis(redis) => match redis.get(key).await {
                Ok(Some(json)) => match serde_json::from_slice::<CallToolResult>(&json) {
                    Ok(result) => Some(result),
                    Err(error) => {
                        // Another version's entry, or not ours: the call goes upstream and
                        // its result replaces it.
                        tracing::debug!(%error, "result cache: unreadable entry in Redis");
                        self.metrics.errors.inc();
                        None
                    }
                },
                Ok(None) => None,
                Err(_) => {
                    self.metrics.errors.inc();
                    return None;
                }
            },
        };
        match &found {
            Some(_) => self.metrics.hits.inc(),
            None => self.metrics.misses.inc(),
        };
        found
    }

    /// Keep `result` under `key` for `ttl`, if it may be kept: complete, not an error, not
    /// too large. A Redis write runs in the background.
    pub fn store(self: &Arc<Self>, key: Key, result: &CallToolResult, ttl: Duration) {
        if result.is_error == Some(true) {
            return;
        }
        let json = match serde_json::to_vec(result) {
            Ok(json) if json.len() <= self.max_entry_bytes => json,
            Ok(_) => return,
            Err(error) => {
                tracing::debug!(%error, "result cache: result does not serialize; not cached");
                return;
            }
        };
        match &self.store {
            Store::Memory(memory) => {
                let size = memory.put(
                    key,
                    Arc::new(result.clone()),
                    json.len(),
                    ttl,
                    Instant::now(),
                );
                self.metrics.stores.inc();
                self.metrics.entries.set(size.entries as i64);
                self.metrics.bytes.set(size.bytes as i64);
            }
            Store::Redis(_) => {
                let cache = self.clone();
                tokio::spawn(async move {
                    let Store::Redis(redis) = &cache.store else {
                        return;
                    };
                    match redis.set(&key, &json, ttl).await {
                        Ok(()) => cache.metrics.stores.inc(),
                        Err(_) => cache.metrics.errors.inc(),
                    };
                });
            }
        }
    }

    /// The cache's line in `/ready`, when it caches anything: degraded (not ready) while its
    /// Redis fails. The gateway's readiness does not depend on it.
    pub fn readiness(&self) -> Option<DependencyStatus> {
        if !self.is_enabled() {
            return None;
        }
        Some(match &self.store {
            Store::Memory(memory) => {
                let size = memory.size();
                DependencyStatus::new(
                    READINESS_NAME,
                    true,
                    json!({ "store": "memory", "state": "ok", "entries": size.entries, "bytes": size.bytes }),
                )
            }
            Store::Redis(redis) => {
                let error = redis.error();
                let state = if error.is_some() { "degraded" } else { "ok" };
                DependencyStatus::new(
                    READINESS_NAME,
                    error.is_none(),
                    json!({ "store": "redis", "state": state, "error": error }),
                )
            }
        })
    }
}
