//! Task metrics: how many wait and run now, and how tasks ended.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use switchboard_runtime::Metrics;

use super::State;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone)]
pub(super) struct TaskMetrics {
    live: Family<StateLabel, Gauge>,
    ended: Family<OutcomeLabel, Counter>,
}

impl TaskMetrics {
    pub(super) fn register(metrics: &Metrics) -> Self {
        let this = Self {
            live: Family::default(),
            ended: Family::default(),
        };
        metrics.register(
            "mcp_tasks",
            "Tasks (task-augmented tool calls) now, by state: waiting or running",
            this.live.clone(),
        );
        metrics.register(
            "mcp_task_outcomes",
            "Tasks by how they ended: completed, failed, cancelled; refused when the queue was full",
            this.ended.clone(),
        );
        this
    }

    /// Set the gauges from `state`.
    pub(super) fn observe(&self, state: &State) {
        let (mut waiting, mut running) = (0, 0);
        for live in state.tasks.values().filter_map(|e| e.live.as_ref()) {
            if live.running_since.is_some() {
                running += 1;
            } else {
                waiting += 1;
            }
        }
        self.live
            .get_or_create(&StateLabel { state: "waiting" })
            .set(waiting);
        self.live
            .get_or_create(&StateLabel { state: "running" })
            .set(running);
    }

    pub(super) fn ended(&self, outcome: &'static str) {
        self.ended.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}
