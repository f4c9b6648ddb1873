//! The sandbox's own metrics: executions by outcome, their duration, the pool, package
//! decisions, and isolation layers running degraded.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};
use switchboard_protocol::sandbox::ExecutionResult;
use switchboard_runtime::{Metrics, metrics::latency_histogram};

use crate::{
    isolation::{Layer, layers::Degraded},
    packages::DecisionLabel,
    pool::PoolMetrics,
    worker::Kill,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LayerLabel {
    layer: &'static str,
}

#[derive(Clone)]
pub(crate) struct SandboxMetrics {
    executions: Family<OutcomeLabel, Counter>,
    duration: Histogram,
    pub pool: PoolMetrics,
    pub decisions: Family<DecisionLabel, Counter>,
    isolation_degraded: Family<LayerLabel, Gauge>,
}

impl SandboxMetrics {
    pub(crate) fn register(metrics: &Metrics, pool_size: usize) -> Self {
        let this = Self {
            executions: Family::default(),
            duration: latency_histogram(),
            pool: PoolMetrics::default(),
            decisions: Family::default(),
            isolation_degraded: Family::default(),
        };
        let size = Gauge::<i64>::default();
        size.set(pool_size as i64);
        metrics.register(
            "sandbox_executions",
            "Executions, by outcome: ok, error (non-zero exit), timeout, memory, output_limit, signal, rejected (bad request), unavailable",
            this.executions.clone(),
        );
        metrics.register(
            "sandbox_execution_duration_seconds",
            "Wall-clock time of executions, from handing the program over to the end of its process tree",
            this.duration.clone(),
        );
        metrics.register(
            "sandbox_pool_size",
            "Interpreters the pool keeps started",
            size,
        );
        metrics.register(
            "sandbox_pool_idle_workers",
            "Started interpreters waiting for a program",
            this.pool.idle.clone(),
        );
        metrics.register(
            "sandbox_worker_starts",
            "Sandboxed interpreters started and ready",
            this.pool.spawned.clone(),
        );
        metrics.register(
            "sandbox_worker_start_failures",
            "Sandboxed interpreters that failed to start",
            this.pool.spawn_failures.clone(),
        );
        metrics.register(
            "sandbox_idle_worker_deaths",
            "Idle interpreters that died before use and were replaced",
            this.pool.idle_deaths.clone(),
        );
        metrics.register(
            "sandbox_package_decisions",
            "Package install decisions: installed, rejected, pending_approval, failed, approved, approval_refused",
            this.decisions.clone(),
        );
        metrics.register(
            "sandbox_isolation_degraded",
            "1 for an isolation layer (memory, swap, pids, cpu, landlock) this host cannot enforce and allow_weaker_isolation accepts, 0 for one in force",
            this.isolation_degraded.clone(),
        );
        this
    }

    /// Every layer's gauge: 1 degraded, 0 enforced.
    pub(crate) fn isolation(&self, degraded: &[Degraded]) {
        for layer in Layer::ALL {
            let value = i64::from(degraded.iter().any(|d| d.layer == layer));
            self.isolation_degraded
                .get_or_create(&LayerLabel {
                    layer: layer.name(),
                })
                .set(value);
        }
    }

    /// Count a finished execution; returns its outcome label.
    pub(crate) fn record(&self, result: &ExecutionResult, killed: Option<Kill>) -> &'static str {
        let outcome = if result.timed_out {
            "timeout"
        } else if result.memory_exceeded {
            "memory"
        } else if killed == Some(Kill::Output) {
            "output_limit"
        } else if killed == Some(Kill::Abandoned) {
            "abandoned"
        } else if result.signal.is_some() {
            "signal"
        } else if result.success {
            "ok"
        } else {
            "error"
        };
        self.count(outcome);
        self.duration.observe(result.duration_ms / 1000.0);
        outcome
    }

    pub(crate) fn count(&self, outcome: &'static str) {
        self.executions
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
}
