//! What one run does, and the shared clock every worker asks before each request.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// A run: `concurrency` workers, a warm-up whose requests are not counted, then a stop rule;
/// closed loop, or paced to a total rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub concurrency: usize,
    pub warmup: Duration,
    pub stop: Stop,
    /// Requests per second of all workers together; `None` = as fast as answers come.
    pub rate: Option<f64>,
}

impl Plan {
    /// Worker `index`'s pacing: its first send time and the interval between its sends
    /// (workers are staggered evenly over one interval). `None` when the run is not paced.
    pub fn pace(&self, index: usize, start: Instant) -> Option<(Instant, Duration)> {
        let rate = self.rate?;
        let interval = Duration::from_secs_f64(self.concurrency as f64 / rate);
        let offset = interval.mul_f64(index as f64 / self.concurrency as f64);
        Some((start + offset, interval))
    }
}

/// When the measured part ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long (requests still in flight then complete and count).
    Duration(Duration),
    /// After exactly this many requests have been sent.
    Requests(u64),
}

/// What a worker's next request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// Send it, but leave it out of the report.
    Warmup,
    /// Send it and record it.
    Measure,
    /// Do not send: the run is over.
    Stop,
}

/// The shared state of a running plan; workers call [`Control::next`] before each request.
#[derive(Debug)]
pub struct Control {
    /// When measuring begins (the end of the warm-up).
    pub measure_start: Instant,
    end: Option<Instant>,
    quota: Option<u64>,
    issued: AtomicU64,
}

impl Control {
    /// Start the plan's clock now.
    pub fn start(plan: &Plan) -> Self {
        let measure_start = Instant::now() + plan.warmup;
        let (end, quota) = match plan.stop {
            Stop::Duration(d) => (Some(measure_start + d), None),
            Stop::Requests(n) => (None, Some(n)),
        };
        Self {
            measure_start,
            end,
            quota,
            issued: AtomicU64::new(0),
        }
    }

    /// Whether the next request is warm-up, measured, or not to be sent.
    pub fn next(&self) -> Ticket {
        let now = Instant::now();
        if now < self.measure_start {
            return Ticket::Warmup;
        }
        if let Some(end) = self.end {
            return if now < end {
                Ticket::Measure
            } else {
                Ticket::Stop
            };
        }
        match self.quota {
            Some(quota) if self.issued.fetch_add(1, Ordering::Relaxed) < quota => Ticket::Measure,
            _ => Ticket::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request-count plan hands out exactly that many measured tickets, then stops.
    #[test]
    fn request_quota_is_exact() {
        let control = Control::start(&Plan {
            concurrency: 1,
            warmup: Duration::ZERO,
            stop: Stop::Requests(3),
            rate: None,
        });
        let tickets: Vec<_> = (0..5).map(|_| control.next()).collect();
        assert_eq!(
            tickets,
            [
                Ticket::Measure,
                Ticket::Measure,
                Ticket::Measure,
                Ticket::Stop,
                Ticket::Stop
            ]
        );
    }

    /// During the warm-up every ticket is a warm-up ticket.
    #[test]
    fn warmup_comes_first() {
        let control = Control::start(&Plan {
            concurrency: 1,
            warmup: Duration::from_secs(3600),
            stop: Stop::Requests(1),
            rate: None,
        });
        assert_eq!(control.next(), Ticket::Warmup);
    }

    /// 100 requests/s over 4 workers: each sends every 40 ms, staggered by 10 ms.
    #[test]
    fn pacing_spreads_workers_over_one_interval() {
        let plan = Plan {
            concurrency: 4,
            warmup: Duration::ZERO,
            stop: Stop::Requests(1),
            rate: Some(100.0),
        };
        let start = Instant::now();
        let (first, interval) = plan.pace(1, start).unwrap();
        assert_eq!(interval, Duration::from_millis(40));
        assert_eq!(first - start, Duration::from_millis(10));
        assert_eq!(Plan { rate: None, ..plan }.pace(0, start), None);
    }
}
