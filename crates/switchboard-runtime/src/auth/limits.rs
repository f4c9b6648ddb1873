//! Overload per caller: a token bucket (requests per second, with a burst) and a cap on
//! requests in flight, each per identity, so that one caller cannot starve the others. Over
//! either, the answer is 429 with `Retry-After`; nothing is locked out — the bucket refills.
//!
//! The key is the authenticated subject; an anonymous caller is keyed by its address. A
//! delegate (the middleware) counts as itself here: the users it acts for are only known to
//! the gateway's handler.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Past this many callers tracked, full (idle) buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

/// Limits per caller; `None` fields are off.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitSettings {
    /// Sustained requests per second per caller, and the burst allowed above it.
    pub rate: Option<(f64, u32)>,
    /// Requests in flight per caller.
    pub concurrent: Option<usize>,
}

impl LimitSettings {
    pub fn enabled(&self) -> bool {
        self.rate.is_some() || self.concurrent.is_some()
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The limiter of one service. Cheap to clone.
#[derive(Clone, Default)]
pub struct Limiter {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    settings: LimitSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Over a limit: how long until a retry can succeed, and which limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Overloaded {
    pub retry_after: Duration,
    pub why: String,
}

/// Held while a request runs (the in-flight cap).
pub struct Admitted(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Limiter {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            inner: settings.enabled().then(|| {
                Arc::new(Inner {
                    settings,
                    buckets: Mutex::default(),
                    in_flight: Mutex::default(),
                })
            }),
        }
    }

    /// Whether any limit is set (otherwise [`Limiter::admit`] lets everything in).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Let one request of `caller` in, or say when to retry.
    pub fn admit(&self, caller: &str) -> Result<Admitted, Overloaded> {
        let Some(inner) = &self.inner else {
            return Ok(Admitted(None));
        };
        if let Some((rate, burst)) = inner.settings.rate {
            let mut buckets = inner.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if buckets.len() >= MAX_TRACKED && !buckets.contains_key(caller) {
                buckets.retain(|_, b| {
                    b.tokens + b.at.elapsed().as_secs_f64() * rate < f64::from(burst)
                });
            }
            let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
                tokens: f64::from(burst),
                at: now,
            });
            bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate)
                .min(f64::from(burst));
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let wait = (1.0 - bucket.tokens) / rate;
                return Err(Overloaded {
                    retry_after: Duration::from_secs_f64(wait),
                    why: format!(
                        "'{caller}' is over its rate limit of {rate} requests per second (burst {burst})"
                    ),
                });
            }
            bucket.tokens -= 1.0;
        }
        let permit = match inner.settings.concurrent {
            None => None,
            Some(cap) => {
                let semaphore = inner
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(caller.to_owned())
                    .or_insert_with(|| Arc::new(Semaphore::new(cap)))
                    .clone();
                Some(semaphore.try_acquire_owned().map_err(|_| Overloaded {
                    retry_after: Duration::from_secs(1),
                    why: format!("'{caller}' already has {cap} requests in flight"),
                })?)
            }
        };
        Ok(Admitted(permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_over_its_rate_waits_and_others_do_not() {
        let limiter = Limiter::new(LimitSettings {
            rate: Some((1.0, 2)),
            concurrent: None,
        });
        assert!(limiter.admit("a").is_ok() && limiter.admit("a").is_ok());
        let over = limiter.admit("a").err().expect("the third is over");
        assert!(over.retry_after > Duration::ZERO && over.retry_after <= Duration::from_secs(1));
        assert!(over.why.contains("'a'"), "{over:?}");
        assert!(limiter.admit("b").is_ok(), "another caller is not affected");
    }

    #[test]
    fn in_flight_requests_are_capped_per_caller_and_released() {
        let limiter = Limiter::new(LimitSettings {
            rate: None,
            concurrent: Some(1),
        });
        let first = limiter.admit("a").expect("first");
        assert!(limiter.admit("a").is_err(), "a second one in flight");
        assert!(limiter.admit("b").is_ok());
        drop(first);
        assert!(limiter.admit("a").is_ok(), "released when the first ends");
    }

    #[test]
    fn off_admits_everything() {
        let limiter = Limiter::new(LimitSettings::default());
        for _ in 0..1000 {
            assert!(limiter.admit("a").is_ok());
        }
    }
}
