//! The JSON report: throughput and exact latency percentiles.
//!
//! Percentiles are computed from every sample, sorted (nearest-rank), not from a histogram:
//! a run holds at most a few hundred thousand samples, which sort in milliseconds, and exact
//! values avoid a bucket-width error at the microsecond scale the gateway target is about.

use std::time::Duration;

use serde::Serialize;

use crate::plan::{Plan, Stop};

/// Raw results of a run, merged from every worker.
#[derive(Debug, Default)]
pub struct Samples {
    /// Latencies of successful measured requests, in nanoseconds.
    pub latencies: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Warm-up requests sent before measuring began.
    pub warmup: u64,
}

/// The result of one run, printed as one JSON object.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `mcp`, `http` or `process`.
    pub mode: &'static str,
    /// What was loaded (URL and tool, or the command line).
    pub target: String,
    pub concurrency: usize,
    pub warmup_seconds: f64,
    /// Requests sent during the warm-up (not in any other figure; lets a caller divide the
    /// CPU time a server used over the whole run by every request it served).
    pub warmup_requests: u64,
    /// `duration` or `requests`, as planned.
    pub planned: Planned,
    /// The paced rate (`--rate`), or `None` for a closed loop at full speed.
    pub rate_per_second: Option<f64>,
    /// Measured requests that succeeded.
    pub requests: u64,
    /// Measured requests that failed (transport error, error status, tool error, wrong answer).
    pub errors: u64,
    /// The first failure, verbatim, so a failing run says why.
    pub first_error: Option<String>,
    /// From the end of the warm-up to the last measured answer.
    pub elapsed_seconds: f64,
    /// Successful requests per second over `elapsed_seconds`.
    pub throughput_per_second: f64,
    /// Latency of the successful requests, in microseconds.
    pub latency_us: Latency,
}

/// The planned extent of the measured part.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Planned {
    DurationSeconds(f64),
    Requests(u64),
}

/// Latency summary in microseconds; all zero when no request succeeded.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Report {
    pub fn new(
        mode: &'static str,
        target: String,
        plan: &Plan,
        elapsed: Duration,
        mut samples: Samples,
    ) -> Self {
        samples.latencies.sort_unstable();
        let requests = samples.latencies.len() as u64;
        let elapsed_seconds = elapsed.as_secs_f64();
        let throughput_per_second = if elapsed_seconds > 0.0 {
            requests as f64 / elapsed_seconds
        } else {
            0.0
        };
        Self {
            mode,
            target,
            concurrency: plan.concurrency,
            warmup_seconds: plan.warmup.as_secs_f64(),
            warmup_requests: samples.warmup,
            planned: match plan.stop {
                Stop::Duration(d) => Planned::DurationSeconds(d.as_secs_f64()),
                Stop::Requests(n) => Planned::Requests(n),
            },
            rate_per_second: plan.rate,
            requests,
            errors: samples.errors,
            first_error: samples.first_error,
            elapsed_seconds,
            throughput_per_second,
            latency_us: Latency::of_sorted(&samples.latencies),
        }
    }
}

impl Latency {
    /// Summarise sorted nanosecond samples.
    fn of_sorted(sorted: &[u64]) -> Self {
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return Self::default();
        };
        let micros = |nanos: u64| nanos as f64 / 1_000.0;
        let sum: u128 = sorted.iter().map(|&n| u128::from(n)).sum();
        Self {
            min: micros(min),
            mean: sum as f64 / sorted.len() as f64 / 1_000.0,
            p50: micros(percentile(sorted, 50.0)),
            p90: micros(percentile(sorted, 90.0)),
            p99: micros(percentile(sorted, 99.0)),
            max: micros(max),
        }
    }
}

/// Nearest-rank percentile of a sorted, non-empty slice: the smallest sample with at least
/// `p` percent of the samples at or below it.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[1, 2], 50.0), 1);
        assert_eq!(percentile(&[1, 2], 51.0), 2);
    }

    #[test]
    fn report_counts_throughput_and_micros() {
        let plan = Plan {
            concurrency: 2,
            warmup: Duration::ZERO,
            stop: Stop::Requests(4),
            rate: None,
        };
        let samples = Samples {
            latencies: vec![4_000, 1_000, 3_000, 2_000],
            errors: 1,
            first_error: Some("boom".into()),
            warmup: 3,
        };
        let report = Report::new("mcp", "t".into(), &plan, Duration::from_secs(2), samples);
        assert_eq!(report.requests, 4);
        assert_eq!(report.errors, 1);
        assert_eq!(report.warmup_requests, 3);
        assert!((report.throughput_per_second - 2.0).abs() < 1e-9);
        assert_eq!(
            report.latency_us,
            Latency {
                min: 1.0,
                mean: 2.5,
                p50: 2.0,
                p90: 4.0,
                p99: 4.0,
                max: 4.0
            }
        );
    }

    #[test]
    fn no_success_means_zero_latency() {
        assert_eq!(Latency::of_sorted(&[]), Latency::default());
    }
}
