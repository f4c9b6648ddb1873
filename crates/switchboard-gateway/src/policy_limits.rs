//! Rate limits per caller and tool: `[limits."<tool pattern>"]` entries of the policy, each a
//! token bucket (`rate_per_second`, `burst`) and/or a cap on calls in flight
//! (`max_in_flight`), kept per (caller, tool) with the runtime's
//! [`switchboard_runtime::auth::limits::Limiter`].
//!
//! A call must pass every entry whose pattern matches the tool's gateway name; over one it is
//! refused with when to retry (MCP: a tool error saying so; REST: 429 with `Retry-After`).
//! Nothing is locked out: buckets refill, and the entry that refuses a call takes no token for
//! it. The buckets start afresh when the policy file is reloaded. Only calls of tools the
//! gateway knows, and the policy lets the caller call, are counted.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::Deserialize;
use switchboard_runtime::auth::limits::{Admitted, LimitSettings, Limiter};

use super::{Permissions, matches};

/// `[limits."<pattern>"]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimit {
    rate_per_second: Option<f64>,
    burst: Option<u32>,
    max_in_flight: Option<usize>,
}

/// Every `[limits]` entry, with its callers' buckets.
#[derive(Default)]
pub(super) struct ToolLimits {
    entries: Vec<Entry>,
}

struct Entry {
    pattern: String,
    /// Rate and burst, and their buckets per (tool, caller).
    rate: Option<(f64, u32, Limiter)>,
    /// Cap on calls in flight, and its counts per (tool, caller).
    in_flight: Option<(usize, Limiter)>,
}

impl fmt::Debug for ToolLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.pattern))
            .finish()
    }
}

/// Held while an admitted call runs (the in-flight caps).
#[derive(Default)]
pub struct ToolPermits(#[allow(dead_code)] Vec<Admitted>);

/// Over a limit: when to retry, and a sentence saying which limit and when.
#[derive(Debug, Clone, PartialEq)]
pub struct OverLimit {
    pub retry_after: Duration,
    pub why: String,
}

impl OverLimit {
    /// `why` is given the wait in whole seconds, as [`OverLimit::retry_after_seconds`].
    fn new(retry_after: Duration, why: impl FnOnce(u64) -> String) -> Self {
        let seconds = whole_seconds(retry_after);
        Self {
            retry_after,
            why: why(seconds),
        }
    }

    /// Whole seconds, rounded up, at least 1: what `Retry-After` and the message say.
    pub fn retry_after_seconds(&self) -> u64 {
        whole_seconds(self.retry_after)
    }
}

fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl ToolLimits {
    pub(super) fn new(raw: BTreeMap<String, RawLimit>) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(raw.len());
        for (pattern, limit) in raw {
            let at = |e: &str| format!("limits.\"{pattern}\": {e}");
            let rate = match (limit.rate_per_second, limit.burst) {
                (None, None) => None,
                (None, Some(_)) => return Err(at("burst needs rate_per_second")),
                (Some(rate), burst) => {
                    if !(rate.is_finite() && rate > 0.0) {
                        return Err(at(&format!(
                            "rate_per_second = {rate} is not a positive number"
                        )));
                    }
                    let burst = burst.unwrap_or_else(|| ((rate * 2.0).ceil() as u32).max(1));
                    if burst == 0 {
                        return Err(at("burst must be at least 1"));
                    }
                    let limiter = Limiter::new(LimitSettings {
                        rate: Some((rate, burst)),
                        concurrent: None,
                    });
                    Some((rate, burst, limiter))
                }
            };
            let in_flight = match limit.max_in_flight {
                None => None,
                Some(0) => return Err(at("max_in_flight must be at least 1")),
                Some(cap) => Some((
                    cap,
                    Limiter::new(LimitSettings {
                        rate: None,
                        concurrent: Some(cap),
                    }),
                )),
            };
            if rate.is_none() && in_flight.is_none() {
                return Err(at("set rate_per_second, max_in_flight or both"));
            }
            entries.push(Entry {
                pattern,
                rate,
                in_flight,
            });
        }
        Ok(Self { entries })
    }
}

impl Permissions {
    /// Let one call of `tool` (its gateway name) by this caller in under every matching
    /// `[limits]` entry, or say when to retry. Hold the permits while the call runs.
    pub fn admit_tool(&self, tool: &str) -> Result<ToolPermits, OverLimit> {
        let mut permits = Vec::new();
        let matching = self
            .rules
            .limits
            .entries
            .iter()
            .filter(|e| matches(&e.pattern, tool));
        for entry in matching {
            // Tool names hold no NUL, so the key names one (tool, caller) pair.
            let key = format!("{tool}\0{}", self.who);
            let pattern = &entry.pattern;
            if let Some((rate, burst, limiter)) = &entry.rate
                && let Err(over) = limiter.admit(&key)
            {
                return Err(OverLimit::new(over.retry_after, |seconds| {
                    format!(
                        "rate limit: '{}' may call '{tool}' {rate} times per second (burst {burst}) under the policy's [limits.\"{pattern}\"]; retry after {seconds} s",
                        self.who
                    )
                }));
            }
            if let Some((cap, limiter)) = &entry.in_flight {
                let permit = limiter.admit(&key).map_err(|over| {
                    OverLimit::new(over.retry_after, |seconds| {
                        format!(
                            "rate limit: '{}' already has {cap} calls of '{tool}' running, the most the policy's [limits.\"{pattern}\"] allows; retry after {seconds} s (or once one ends)",
                            self.who
                        )
                    })
                })?;
                permits.push(permit);
            }
        }
        Ok(ToolPermits(permits))
    }
}
