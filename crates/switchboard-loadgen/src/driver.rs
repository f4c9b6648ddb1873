//! Runs one operation per worker under a plan and turns the samples into a [`Report`].

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;

use crate::{
    operation::Operation,
    plan::{Control, Plan, Ticket},
    report::{Report, Samples},
};

/// What one worker brings back.
#[derive(Default)]
struct WorkerOutcome {
    /// Latencies of the measured requests that succeeded, in nanoseconds.
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// Warm-up requests sent (answered or not).
    warmup: u64,
    /// When this worker's last measured request completed.
    last_done: Option<Instant>,
}

/// Run `ops` (one per worker) under `plan`; `mode` and `target` name the run in the report.
pub async fn drive<O: Operation>(
    plan: &Plan,
    ops: Vec<O>,
    mode: &'static str,
    target: String,
) -> Report {
    let control = Arc::new(Control::start(plan));
    let mut workers = JoinSet::new();
    let start = Instant::now();
    for (index, op) in ops.into_iter().enumerate() {
        workers.spawn(work(op, Arc::clone(&control), plan.pace(index, start)));
    }
    let mut samples = Samples::default();
    let mut last_done = None::<Instant>;
    while let Some(joined) = workers.join_next().await {
        let outcome = joined.unwrap_or_else(|error| WorkerOutcome {
            errors: 1,
            first_error: Some(format!("worker failed: {error}")),
            ..WorkerOutcome::default()
        });
        samples.latencies.extend(outcome.latencies);
        samples.errors += outcome.errors;
        samples.warmup += outcome.warmup;
        if samples.first_error.is_none() {
            samples.first_error = outcome.first_error;
        }
        last_done = last_done.max(outcome.last_done);
    }
    let elapsed = last_done
        .map(|done| done.saturating_duration_since(control.measure_start))
        .unwrap_or_default();
    Report::new(mode, target, plan, elapsed, samples)
}

/// One worker: (wait for its slot when paced,) ask the control for a ticket, send, record;
/// until the ticket says stop. `pace` is the first slot and the interval between slots.
async fn work<O: Operation>(
    mut op: O,
    control: Arc<Control>,
    pace: Option<(Instant, Duration)>,
) -> WorkerOutcome {
    let mut outcome = WorkerOutcome::default();
    let mut slot = pace.map(|(first, _)| first);
    loop {
        if let (Some(at), Some((_, interval))) = (slot, pace) {
            tokio::time::sleep_until(at.into()).await;
            // A late worker restarts its schedule from now instead of owing requests.
            slot = Some(at.max(Instant::now()) + interval);
        }
        let ticket = control.next();
        if ticket == Ticket::Stop {
            return outcome;
        }
        let start = Instant::now();
        let result = op.call().await;
        let done = Instant::now();
        if ticket == Ticket::Warmup {
            outcome.warmup += 1;
            continue;
        }
        outcome.last_done = Some(done);
        match result {
            Ok(()) => {
                let nanos =
                    u64::try_from(done.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
                outcome.latencies.push(nanos);
            }
            Err(error) => {
                outcome.errors += 1;
                outcome.first_error.get_or_insert(error);
            }
        }
    }
}
