//! Code-interpreter session settings (part of [`super::Config`]).

use std::time::Duration;

use switchboard_runtime::Error;

use super::{RawConfig, setting};

/// How many sessions, and for how long.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionSettings {
    /// All callers together; 0: sessions are off.
    pub max_sessions: usize,
    pub max_per_caller: usize,
    /// Default and longest idle time.
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        // Each session holds an interpreter (and up to the memory limit) for its life: a few
        // per machine, like the pool. 10 minutes idle is the usual notebook-kernel cull.
        Self {
            max_sessions: 8,
            max_per_caller: 3,
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

impl SessionSettings {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, Error> {
        let d = Self::default();
        let positive = |name: &str, value: Option<u64>, default: Duration| match value {
            Some(0) => Err(Error::Config(format!(
                "{}: must be greater than 0",
                setting(name, &name.replace('_', "-"))
            ))),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(default),
        };
        let this = Self {
            max_sessions: raw.max_sessions.unwrap_or(d.max_sessions),
            max_per_caller: match raw.max_sessions_per_caller {
                Some(0) => {
                    return Err(Error::Config(format!(
                        "{}: must be greater than 0 (set max_sessions = 0 to turn sessions off)",
                        setting("max_sessions_per_caller", "max-sessions-per-caller")
                    )));
                }
                Some(n) => n,
                None => d.max_per_caller,
            },
            idle_timeout: positive(
                "session_idle_seconds",
                raw.session_idle_seconds,
                d.idle_timeout,
            )?,
            max_lifetime: positive(
                "session_max_lifetime_seconds",
                raw.session_max_lifetime_seconds,
                d.max_lifetime,
            )?,
        };
        if this.idle_timeout > this.max_lifetime {
            return Err(Error::Config(format!(
                "{} ({} s) must not exceed {} ({} s)",
                setting("session_idle_seconds", "session-idle-seconds"),
                this.idle_timeout.as_secs(),
                setting(
                    "session_max_lifetime_seconds",
                    "session-max-lifetime-seconds"
                ),
                this.max_lifetime.as_secs()
            )));
        }
        Ok(this)
    }
}
