//! A circuit breaker per upstream, lock-free so it costs a few atomic operations per call.
//!
//! - **Closed**: calls pass; consecutive failures are counted, a success resets the count. At
//!   `failures` in a row the circuit opens.
//! - **Open**: calls are rejected at once (the caller gets a tool error naming the upstream)
//!   until `cooldown` has passed since the circuit opened.
//! - **Half-open**: the first call after the cool-down is let through as a probe; the others are
//!   still rejected. The probe's success closes the circuit, its failure opens it again for
//!   another cool-down. A probe that ends without an outcome (its caller went away) lets the
//!   next call probe instead.
//!
//! A failure is what says the upstream is unwell: a timeout or a transport error. An upstream
//! that answers, even with an error, is working.

use std::{
    sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::config::BreakerSettings;

/// The breaker's state, also exported as the gauge `mcp_upstream_circuit_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CircuitState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl CircuitState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::HalfOpen,
            2 => Self::Open,
            _ => Self::Closed,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// Why a call was not let through.
#[derive(Debug, Clone, Copy)]
pub struct Rejected {
    /// Time until a probe will be let through (zero while a probe is in flight).
    pub retry_in: Duration,
}

#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    /// Reference point for `opened_at_ms`.
    epoch: Instant,
    state: AtomicU8,
    failures: AtomicU32,
    opened_at_ms: AtomicU64,
}

/// Permission to make one call; report its outcome with [`Ticket::success`] or
/// [`Ticket::failure`]. Dropped without either, it records nothing (and frees the probe slot).
#[must_use]
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            epoch: Instant::now(),
            state: AtomicU8::new(CircuitState::Closed as u8),
            failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> CircuitState {
        CircuitState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Ask to make a call.
    pub fn admit(&self) -> Result<Ticket<'_>, Rejected> {
        match self.state() {
            CircuitState::Closed => Ok(Ticket {
                breaker: self,
                probe: false,
                done: false,
            }),
            CircuitState::HalfOpen => Err(Rejected {
                retry_in: Duration::ZERO,
            }),
            CircuitState::Open => {
                let cooldown = self.settings.cooldown.as_millis() as u64;
                let elapsed = self
                    .now_ms()
                    .saturating_sub(self.opened_at_ms.load(Ordering::Acquire));
                if elapsed < cooldown {
                    return Err(Rejected {
                        retry_in: Duration::from_millis(cooldown - elapsed),
                    });
                }
                match self.state.compare_exchange(
                    CircuitState::Open as u8,
                    CircuitState::HalfOpen as u8,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => Ok(Ticket {
                        breaker: self,
                        probe: true,
                        done: false,
                    }),
                    Err(_) => Err(Rejected {
                        retry_in: Duration::ZERO,
                    }),
                }
            }
        }
    }

    /// Forget past failures and close (the upstream was re-initialized).
    pub fn reset(&self) {
        self.failures.store(0, Ordering::Release);
        self.state
            .store(CircuitState::Closed as u8, Ordering::Release);
    }

    fn open(&self) {
        self.opened_at_ms.store(self.now_ms(), Ordering::Release);
        self.state
            .store(CircuitState::Open as u8, Ordering::Release);
    }
}

impl Ticket<'_> {
    pub fn success(mut self) {
        self.done = true;
        let b = self.breaker;
        if b.failures.load(Ordering::Relaxed) != 0 {
            b.failures.store(0, Ordering::Release);
        }
        if self.probe {
            b.state.store(CircuitState::Closed as u8, Ordering::Release);
        }
    }

    /// Returns true when this failure opened the circuit.
    pub fn failure(mut self) -> bool {
        self.done = true;
        let b = self.breaker;
        if self.probe {
            b.open();
            return true;
        }
        let failures = b.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= b.settings.failures
            && b.state
                .compare_exchange(
                    CircuitState::Closed as u8,
                    CircuitState::Open as u8,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            b.opened_at_ms.store(b.now_ms(), Ordering::Release);
            b.failures.store(0, Ordering::Release);
            return true;
        }
        false
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.done {
            // The probe's caller went away: let the next call probe at once.
            let b = self.breaker;
            let cooldown = b.settings.cooldown.as_millis() as u64;
            b.opened_at_ms
                .store(b.now_ms().saturating_sub(cooldown), Ordering::Release);
            b.state.store(CircuitState::Open as u8, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cooldown_ms: u64) -> Breaker {
        Breaker::new(BreakerSettings {
            failures: 3,
            cooldown: Duration::from_millis(cooldown_ms),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(60_000);
        assert!(!b.admit().expect("closed").failure());
        assert!(!b.admit().expect("closed").failure());
        b.admit().expect("closed").success();
        assert!(!b.admit().expect("closed").failure());
        assert!(!b.admit().expect("closed").failure());
        assert!(b.admit().expect("closed").failure(), "third in a row opens");
        assert_eq!(b.state(), CircuitState::Open);
        let rejected = b.admit().err().expect("open rejects");
        assert!(rejected.retry_in > Duration::from_secs(50));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_outcome_decides() {
        let b = breaker(0);
        for _ in 0..3 {
            let _ = b.admit().expect("closed").failure();
        }
        let probe = b.admit().expect("cool-down of zero has passed");
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.admit().is_err(), "only one probe at a time");
        assert!(probe.failure(), "a failed probe re-opens");
        assert_eq!(b.state(), CircuitState::Open);
        b.admit().expect("probe again").success();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let b = breaker(0);
        for _ in 0..3 {
            let _ = b.admit().expect("closed").failure();
        }
        drop(b.admit().expect("probe"));
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.admit().is_ok(), "next call probes");
    }
}
