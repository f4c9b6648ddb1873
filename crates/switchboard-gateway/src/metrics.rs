//! The gateway's own metrics, registered in the service registry at start-up.
//!
//! A route holds the handles of its series, created on first use, so later calls only
//! increment counters they already hold: no label allocation and no family lock per call.
//! Series appear when first used (not one per outcome per tool up front).

use std::sync::OnceLock;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};
use switchboard_runtime::{Metrics, metrics::latency_histogram};

use crate::breaker::CircuitState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    upstream: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

/// Outcomes of a routed tool call (the `outcome` label).
/// Calls of names the gateway does not know are not counted: their names come from callers.
/// `cached`: answered from the result cache, without reaching the upstream.
pub const OUTCOMES: [&str; 8] = [
    "ok",
    "cached",
    "tool_error",
    "unavailable",
    "timeout",
    "transport_error",
    "upstream_error",
    "cancelled",
];

/// The gateway's metric families.
#[derive(Clone)]
pub struct GatewayMetrics {
    calls: Family<CallLabels, Counter>,
    duration: Family<ToolLabels, Histogram, fn() -> Histogram>,
    up: Family<UpstreamLabel, Gauge>,
    circuit: Family<UpstreamLabel, Gauge>,
    connects: Family<UpstreamLabel, Counter>,
    sessions: Family<UpstreamLabel, Gauge>,
    sessions_refused: Family<UpstreamLabel, Counter>,
}

/// The series of one (tool, upstream).
pub struct ToolMetrics {
    family: GatewayMetrics,
    tool: String,
    upstream: String,
    calls: [OnceLock<Counter>; OUTCOMES.len()],
    duration: OnceLock<Histogram>,
}

impl ToolMetrics {
    /// Count one call with `outcome` (one of [`OUTCOMES`]) that took `seconds`.
    pub fn record(&self, outcome: &'static str, seconds: f64) {
        let index = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.calls[index]
            .get_or_init(|| {
                self.family
                    .calls
                    .get_or_create(&CallLabels {
                        tool: self.tool.clone(),
                        upstream: self.upstream.clone(),
                        outcome: OUTCOMES[index],
                    })
                    .clone()
            })
            .inc();
        self.duration
            .get_or_init(|| {
                self.family
                    .duration
                    .get_or_create(&ToolLabels {
                        tool: self.tool.clone(),
                        upstream: self.upstream.clone(),
                    })
                    .clone()
            })
            .observe(seconds);
    }
}

/// The gauges of one upstream.
#[derive(Clone)]
pub struct UpstreamMetrics {
    pub up: Gauge,
    circuit: Gauge,
    pub connects: Counter,
    /// Upstream sessions of clients open (or opening) now.
    pub sessions: Gauge,
    /// Clients refused because the upstream had as many sessions of clients as it may.
    pub sessions_refused: Counter,
}

impl UpstreamMetrics {
    pub fn set_circuit(&self, state: CircuitState) {
        self.circuit.set(state as i64);
    }
}

impl GatewayMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let this = Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            up: Family::default(),
            circuit: Family::default(),
            connects: Family::default(),
            sessions: Family::default(),
            sessions_refused: Family::default(),
        };
        metrics.register(
            "mcp_tool_calls",
            "Tool calls routed by the gateway, by public tool name, upstream and outcome (ok, cached, tool_error, unavailable, timeout, transport_error, upstream_error, cancelled)",
            this.calls.clone(),
        );
        metrics.register(
            "mcp_tool_call_duration_seconds",
            "Time from receiving a tool call to having its answer, by public tool name and upstream",
            this.duration.clone(),
        );
        metrics.register(
            "mcp_upstream_up",
            "1 when the upstream is connected and initialized, else 0",
            this.up.clone(),
        );
        metrics.register(
            "mcp_upstream_circuit_state",
            "Circuit breaker of the upstream: 0 closed, 1 half-open (probing), 2 open (rejecting)",
            this.circuit.clone(),
        );
        metrics.register(
            "mcp_upstream_connects",
            "Successful (re-)initializations of the upstream session",
            this.connects.clone(),
        );
        metrics.register(
            "mcp_upstream_sessions",
            "Sessions the gateway has open with a stateful upstream for its clients (one per client session, or per caller without one), besides its own",
            this.sessions.clone(),
        );
        metrics.register(
            "mcp_upstream_sessions_refused",
            "Clients refused a session with the upstream because it had max_sessions already",
            this.sessions_refused.clone(),
        );
        this
    }

    pub fn tool(&self, tool: &str, upstream: &str) -> ToolMetrics {
        ToolMetrics {
            family: self.clone(),
            tool: tool.to_owned(),
            upstream: upstream.to_owned(),
            calls: Default::default(),
            duration: OnceLock::new(),
        }
    }

    pub fn upstream(&self, upstream: &str) -> UpstreamMetrics {
        let label = UpstreamLabel {
            upstream: upstream.to_owned(),
        };
        UpstreamMetrics {
            up: self.up.get_or_create(&label).clone(),
            circuit: self.circuit.get_or_create(&label).clone(),
            connects: self.connects.get_or_create(&label).clone(),
            sessions: self.sessions.get_or_create(&label).clone(),
            sessions_refused: self.sessions_refused.get_or_create(&label).clone(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: &'static str,
}

/// The result cache's counters, for its one store (`memory` or `redis`).
#[derive(Clone)]
pub struct CacheMetrics {
    /// Lookups answered from the store.
    pub hits: Counter,
    /// Lookups the store had no entry for (or an expired or unreadable one).
    pub misses: Counter,
    /// Results written to the store.
    pub stores: Counter,
    /// Lookups and writes that could not use the store (it failed, timed out, or was down
    /// and not retried yet): those calls went to the upstream as if uncached.
    pub errors: Counter,
    /// Entries and bytes held (the in-process store only; Redis keeps its own count).
    pub entries: Gauge,
    pub bytes: Gauge,
}

impl CacheMetrics {
    pub fn register(metrics: &Metrics, store: &'static str) -> Self {
        let label = StoreLabel { store };
        let counter = |name: &str, help: &str| {
            let family = Family::<StoreLabel, Counter>::default();
            metrics.register(name, help, family.clone());
            family.get_or_create(&label).clone()
        };
        // The in-process store's size is ours to report; Redis reports its own.
        let gauge = |name: &str, help: &str| {
            if store != "memory" {
                return Gauge::default();
            }
            let family = Family::<StoreLabel, Gauge>::default();
            metrics.register(name, help, family.clone());
            family.get_or_create(&label).clone()
        };
        Self {
            hits: counter(
                "mcp_cache_hits",
                "Tool calls answered from the result cache, by store",
            ),
            misses: counter(
                "mcp_cache_misses",
                "Cacheable tool calls the result cache had no answer for, by store",
            ),
            stores: counter(
                "mcp_cache_stores",
                "Tool results written to the result cache, by store",
            ),
            errors: counter(
                "mcp_cache_errors",
                "Result cache lookups and writes that failed (the call went to the upstream as if uncached), by store",
            ),
            entries: gauge(
                "mcp_cache_entries",
                "Entries the in-process result cache holds",
            ),
            bytes: gauge(
                "mcp_cache_bytes",
                "Bytes (results as JSON) the in-process result cache holds",
            ),
        }
    }
}
