//! Settings of the gateway: where it listens, its upstreams, and how it treats them.
//!
//! Upstreams come from `--upstream name=url` (repeatable), `MCP_SERVER_UPSTREAMS`
//! (comma-separated `name=url` pairs) or `upstreams` in `[mcp-server]`, where an entry is either
//! the same `"name=url"` string or a table that may also override the per-upstream limits. An
//! upstream is a Streamable HTTP endpoint (`http://`, `https://`) or a program the gateway
//! starts and speaks MCP with over its stdin/stdout (`NAME=stdio:COMMAND ARG...` on the command
//! line, arguments split at spaces; or a table with `command`, `args`, `env`, `cwd`):
//!
//! ```toml
//! [mcp-server]
//! upstreams = [
//!   "time-client=http://127.0.0.1:8003/mcp",
//!   { name = "code-executor", url = "http://127.0.0.1:8004/mcp", call_timeout_seconds = 120 },
//!   { name = "time", command = "/usr/bin/mcp-server-time", args = ["--local-timezone", "UTC"],
//!     env = { TZ = "UTC" }, cwd = "/tmp" },
//! ]
//! ```

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_runtime::{Error, HttpSettings, config::parse_socket_addr, config::seconds};

pub mod access;
pub mod cache;
pub mod oauth;
mod upstreams;

pub use self::cache::{CacheRule, CacheSettings, RedisSettings};
pub use self::oauth::{OAuthSettings, OAuthTable};

pub use self::upstreams::{
    BreakerSettings, StdioCommand, UpstreamConfig, UpstreamSpec, UpstreamTable,
};
use self::upstreams::{
    Target, UPSTREAMS_SETTING, parse_upstream_arg, short_target, table_target, validate_command,
    validate_name, validate_url,
};

/// Default listen address (docs/design.md: mcp-server on 8000).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8000);
/// The upstreams of a fresh installation: the two tool services of docs/design.md.
pub const DEFAULT_UPSTREAMS: &[(&str, &str)] = &[
    ("code-executor", "http://127.0.0.1:8004/mcp"),
    ("time-client", "http://127.0.0.1:8003/mcp"),
];
/// Longest upstream name. Collided tool names are `<upstream>_<tool>` and must stay within
/// [`naming::MAX_NAME_LEN`] characters; 32 leaves the tool half of the budget.
pub const MAX_UPSTREAM_NAME_LEN: usize = 32;
/// Default time one call to an upstream may take, waiting for a concurrency slot included.
/// Generous because `execute_code` runs programs; the sandbox has its own, shorter limits.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time to connect and initialize, and the limit of one health-check ping.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time between health checks of a connected upstream; also the longest wait between
/// reconnection attempts to one that is down.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// Default time a client session may go without a request before it is closed (rmcp's).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default calls in flight to one upstream; more wait (within their timeout) for a slot.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 64;
/// Default upstream sessions of clients one upstream may have at once (besides the shared one).
pub const DEFAULT_MAX_UPSTREAM_SESSIONS: usize = 256;
/// Default consecutive failures (timeouts, transport errors) that open an upstream's circuit.
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// Default time an open circuit rejects calls before one probe call is let through.
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(10);

/// Settings as given on the command line, in the environment or in `[mcp-server]`.
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on [default: 127.0.0.1:8000].
    #[arg(long, env = "MCP_SERVER_LISTEN", value_parser = parse_socket_addr, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// An upstream MCP server as NAME=URL, e.g. time-client=http://127.0.0.1:8003/mcp;
    /// repeat the flag (or separate with commas in the variable) for several. Replaces the
    /// default list [default: code-executor=http://127.0.0.1:8004/mcp,
    /// time-client=http://127.0.0.1:8003/mcp].
    #[arg(
        long = "upstream",
        env = "MCP_SERVER_UPSTREAMS",
        value_delimiter = ',',
        value_parser = parse_upstream_arg,
        value_name = "NAME=URL"
    )]
    pub upstreams: Option<Vec<UpstreamSpec>>,
    /// Seconds one upstream call may take before it fails with a timeout [default: 60].
    #[arg(long, env = "MCP_SERVER_CALL_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub call_timeout_seconds: Option<f64>,
    /// Seconds to connect to and initialize an upstream, and to answer a health ping [default: 5].
    #[arg(
        long,
        env = "MCP_SERVER_CONNECT_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub connect_timeout_seconds: Option<f64>,
    /// Seconds between health checks, and the longest wait between reconnection attempts
    /// [default: 5].
    #[arg(
        long,
        env = "MCP_SERVER_HEALTH_INTERVAL_SECONDS",
        value_name = "SECONDS"
    )]
    pub health_interval_seconds: Option<f64>,
    /// Calls in flight to one upstream at most; further calls wait for a slot [default: 64].
    #[arg(long, env = "MCP_SERVER_MAX_CONCURRENT_CALLS", value_name = "N")]
    pub max_concurrent_calls: Option<usize>,
    /// Sessions of its clients one stateful upstream may have at once (one per client session,
    /// or per caller without a session); more clients are refused until some leave
    /// [default: 256].
    #[arg(long, env = "MCP_SERVER_MAX_UPSTREAM_SESSIONS", value_name = "N")]
    pub max_upstream_sessions: Option<usize>,
    /// Consecutive failed calls that open an upstream's circuit breaker [default: 5].
    #[arg(long, env = "MCP_SERVER_BREAKER_FAILURES", value_name = "N")]
    pub breaker_failures: Option<u32>,
    /// Seconds an open circuit rejects calls before letting one probe through [default: 10].
    #[arg(
        long,
        env = "MCP_SERVER_BREAKER_COOLDOWN_SECONDS",
        value_name = "SECONDS"
    )]
    pub breaker_cooldown_seconds: Option<f64>,
    /// Seconds a client session may go without a request before the gateway closes it
    /// [default: 300].
    #[arg(
        long,
        env = "MCP_SERVER_SESSION_IDLE_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub session_idle_timeout_seconds: Option<f64>,
    /// A TOML policy of roles and grants: who may call which tools (see `policy`); reread
    /// when it changes. Unset: every caller authentication lets in may call every tool.
    #[arg(long, env = "MCP_SERVER_POLICY", value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// Callers (subject patterns, `*` wildcards; comma-separated) that may act for their own
    /// users by naming them in a request's `_meta["io.switchboard/on-behalf-of"]`: the
    /// middleware's credential. Anyone else naming a user is refused [default: none].
    #[arg(
        long = "delegate",
        env = "MCP_SERVER_DELEGATES",
        value_delimiter = ',',
        value_name = "SUBJECTS"
    )]
    pub delegates: Option<Vec<String>>,
    /// Cache the results of the tools whose gateway name matches PATTERN (`*` wildcards) for
    /// SECONDS, where that is safe: only tools their upstream annotates read-only and
    /// idempotent are cached. Repeat the flag (or separate with commas in the variable) for
    /// several [default: none: nothing is cached].
    #[arg(
        long = "cache",
        env = "MCP_SERVER_CACHE",
        value_delimiter = ',',
        value_parser = cache::parse_cache_arg,
        value_name = "PATTERN=SECONDS"
    )]
    #[serde(default, deserialize_with = "cache::deserialize_rules")]
    pub cache: Option<Vec<CacheRule>>,
    /// Entries the in-process result cache keeps at most; the least recently used go first
    /// [default: 10000].
    #[arg(long, env = "MCP_SERVER_CACHE_MAX_ENTRIES", value_name = "N")]
    pub cache_max_entries: Option<usize>,
    /// Bytes (results as JSON) the in-process result cache keeps at most [default: 67108864].
    #[arg(long, env = "MCP_SERVER_CACHE_MAX_BYTES", value_name = "BYTES")]
    pub cache_max_bytes: Option<usize>,
    /// Larger results are not cached [default: 1048576].
    #[arg(long, env = "MCP_SERVER_CACHE_MAX_ENTRY_BYTES", value_name = "BYTES")]
    pub cache_max_entry_bytes: Option<usize>,
    /// Keep cached results in this Redis (redis://[USER:PASSWORD@]HOST:PORT[/DB] or
    /// redis+unix:///PATH; `env:NAME` or `file:PATH` to read it from there), shared by every
    /// gateway replica using it, instead of in this process [default: none].
    #[arg(long, env = "MCP_SERVER_CACHE_REDIS_URL", value_name = "URL")]
    pub cache_redis_url: Option<String>,
    /// Put before every key the cache writes to Redis
    /// [default: switchboard:mcp-server:cache:].
    #[arg(long, env = "MCP_SERVER_CACHE_REDIS_PREFIX", value_name = "PREFIX")]
    pub cache_redis_prefix: Option<String>,
    /// Files of 32 random bytes (`head -c 32 /dev/urandom`) that gateway replicas share:
    /// session ids are then sealed with the first, and any replica holding one of them serves
    /// any session (no sticky load balancing, no shared store). Two for rotation
    /// (comma-separated). Unset: random ids, each served by the replica that issued it.
    #[arg(
        long = "session-key-file",
        env = "MCP_SERVER_SESSION_KEY_FILE",
        value_delimiter = ',',
        value_name = "FILES"
    )]
    #[serde(rename = "session_key_file")]
    pub session_key_files: Option<Vec<std::path::PathBuf>>,
}

/// How long a sealed session id stays valid after `initialize` (a client session rarely lasts
/// a day; one that does re-initializes).
pub const SEALED_SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Validated settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    pub listen: SocketAddr,
    pub upstreams: Vec<UpstreamConfig>,
    pub connect_timeout: Duration,
    pub health_interval: Duration,
    /// Client sessions without a request for this long are closed.
    pub session_idle_timeout: Duration,
    /// Who may call which tools; `None`: everyone let in may call everything.
    pub policy: Option<crate::policy::Policy>,
    /// Subject patterns of the callers that may act for their users.
    pub delegates: Vec<String>,
    /// Which tools' results are cached, for how long, where.
    pub cache: CacheSettings,
    /// Keys sealing session ids, shared by replicas; `None`: random ids.
    pub session_keys: Option<switchboard_protocol::mcp_server::sealed::SessionKeys>,
    pub http: HttpSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self::new(
            DEFAULT_UPSTREAMS
                .iter()
                .map(|(name, url)| UpstreamConfig::new(*name, *url))
                .collect(),
        )
    }
}

impl Config {
    /// Settings with these upstreams and every other value at its default.
    pub fn new(upstreams: Vec<UpstreamConfig>) -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            upstreams,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            health_interval: DEFAULT_HEALTH_INTERVAL,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            policy: None,
            delegates: Vec::new(),
            cache: CacheSettings::default(),
            session_keys: None,
            http: HttpSettings::default(),
        }
    }
    pub fn with_session_keys(
        mut self,
        keys: switchboard_protocol::mcp_server::sealed::SessionKeys,
    ) -> Self {
        self.session_keys = Some(keys);
        self
    }
    pub fn with_cache(mut self, cache: CacheSettings) -> Self {
        self.cache = cache;
        self
    }
    pub fn with_delegates(mut self, delegates: Vec<String>) -> Self {
        self.delegates = delegates;
        self
    }
    pub fn with_policy(mut self, policy: crate::policy::Policy) -> Self {
        self.policy = Some(policy);
        self
    }
    pub fn with_session_idle_timeout(mut self, timeout: Duration) -> Self {
        self.session_idle_timeout = timeout;
        self
    }
    pub fn with_health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval;
        self
    }
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    pub fn with_http(mut self, http: HttpSettings) -> Self {
        self.http = http;
        self
    }

    pub fn from_parts(raw: RawConfig, http: HttpSettings) -> Result<Self, Error> {
        let timeout = |value: Option<f64>, setting: &str, default: Duration| match value {
            Some(v) => seconds(setting, v),
            None => Ok(default),
        };
        let call_timeout = timeout(
            raw.call_timeout_seconds,
            "call_timeout_seconds (--call-timeout-seconds / MCP_SERVER_CALL_TIMEOUT_SECONDS)",
            DEFAULT_CALL_TIMEOUT,
        )?;
        let connect_timeout = timeout(
            raw.connect_timeout_seconds,
            "connect_timeout_seconds (--connect-timeout-seconds / MCP_SERVER_CONNECT_TIMEOUT_SECONDS)",
            DEFAULT_CONNECT_TIMEOUT,
        )?;
        let health_interval = timeout(
            raw.health_interval_seconds,
            "health_interval_seconds (--health-interval-seconds / MCP_SERVER_HEALTH_INTERVAL_SECONDS)",
            DEFAULT_HEALTH_INTERVAL,
        )?;
        let breaker_cooldown = timeout(
            raw.breaker_cooldown_seconds,
            "breaker_cooldown_seconds (--breaker-cooldown-seconds / MCP_SERVER_BREAKER_COOLDOWN_SECONDS)",
            DEFAULT_BREAKER_COOLDOWN,
        )?;
        let session_keys = raw
            .session_key_files
            .as_deref()
            .filter(|files| !files.is_empty())
            .map(session_keys)
            .transpose()?;
        let session_idle_timeout = timeout(
            raw.session_idle_timeout_seconds,
            "session_idle_timeout_seconds (--session-idle-timeout-seconds / MCP_SERVER_SESSION_IDLE_TIMEOUT_SECONDS)",
            DEFAULT_SESSION_IDLE_TIMEOUT,
        )?;
        let max_concurrent_calls = positive(
            raw.max_concurrent_calls
                .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS),
            "max_concurrent_calls (--max-concurrent-calls / MCP_SERVER_MAX_CONCURRENT_CALLS)",
        )?;
        let max_sessions = positive(
            raw.max_upstream_sessions
                .unwrap_or(DEFAULT_MAX_UPSTREAM_SESSIONS),
            "max_upstream_sessions (--max-upstream-sessions / MCP_SERVER_MAX_UPSTREAM_SESSIONS)",
        )?;
        let breaker_failures = positive(
            raw.breaker_failures.unwrap_or(DEFAULT_BREAKER_FAILURES) as usize,
            "breaker_failures (--breaker-failures / MCP_SERVER_BREAKER_FAILURES)",
        )? as u32;

        let cache = CacheSettings::from_raw(&raw)?;

        let specs = raw.upstreams.unwrap_or_else(|| {
            DEFAULT_UPSTREAMS
                .iter()
                .map(|(name, url)| UpstreamSpec::Short {
                    name: (*name).to_owned(),
                    url: (*url).to_owned(),
                })
                .collect()
        });
        let mut upstreams: Vec<UpstreamConfig> = Vec::with_capacity(specs.len());
        for spec in specs {
            let (name, target, table) = match spec {
                UpstreamSpec::Short { name, url } => {
                    let target = short_target(&name, &url)?;
                    (name, target, None)
                }
                UpstreamSpec::Table(t) => (t.name.clone(), table_target(&t)?, Some(t)),
            };
            validate_name(&name)?;
            if upstreams.iter().any(|u| u.name == name) {
                return Err(Error::Config(format!(
                    "{UPSTREAMS_SETTING}: upstream '{name}' is listed twice; expected unique names"
                )));
            }
            let upstream = match target {
                Target::Http(url) => {
                    validate_url(&name, &url)?;
                    UpstreamConfig::new(name.clone(), url)
                }
                Target::Stdio(command) => {
                    validate_command(&name, &command)?;
                    UpstreamConfig::stdio(name.clone(), command)
                }
            };
            let mut upstream = upstream
                .with_call_timeout(call_timeout)
                .with_max_concurrent_calls(max_concurrent_calls)
                .with_max_sessions(max_sessions)
                .with_breaker(breaker_failures, breaker_cooldown);
            if let Some(t) = table {
                let setting = |key: &str| format!("{UPSTREAMS_SETTING}: upstream '{name}': {key}");
                upstream.access = access::UpstreamAccess::from_settings(
                    &format!("{UPSTREAMS_SETTING}: upstream '{name}'"),
                    t.ca_file.clone(),
                    t.client_cert.clone(),
                    t.client_key.clone(),
                    t.headers.as_ref(),
                )?;
                if let Some(oauth) = &t.oauth {
                    upstream.oauth = Some(OAuthSettings::from_table(
                        &format!("{UPSTREAMS_SETTING}: upstream '{name}'"),
                        oauth,
                        &upstream.url,
                    )?);
                }
                if let Some(v) = t.call_timeout_seconds {
                    upstream.call_timeout = seconds(&setting("call_timeout_seconds"), v)?;
                }
                if let Some(n) = t.max_concurrent_calls {
                    upstream.max_concurrent_calls = positive(n, &setting("max_concurrent_calls"))?;
                }
                if let Some(n) = t.max_sessions {
                    upstream.max_sessions = positive(n, &setting("max_sessions"))?;
                }
                if let Some(shared) = t.shared_session {
                    upstream.shared_session = shared;
                }
                if let Some(n) = t.breaker_failures {
                    upstream.breaker.failures =
                        positive(n as usize, &setting("breaker_failures"))? as u32;
                }
                if let Some(v) = t.breaker_cooldown_seconds {
                    upstream.breaker.cooldown = seconds(&setting("breaker_cooldown_seconds"), v)?;
                }
            }
            upstreams.push(upstream);
        }
        Ok(Self {
            listen: raw.listen.unwrap_or(DEFAULT_LISTEN),
            upstreams,
            connect_timeout,
            health_interval,
            session_idle_timeout,
            policy: raw
                .policy
                .as_deref()
                .map(crate::policy::Policy::load)
                .transpose()?,
            delegates: raw
                .delegates
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .collect(),
            cache,
            session_keys,
            http,
        })
    }
}

fn positive(value: usize, setting: &str) -> Result<usize, Error> {
    if value == 0 {
        Err(Error::Config(format!(
            "{setting}: must be a positive whole number"
        )))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

/// Read the session key files (each exactly 32 bytes).
fn session_keys(
    files: &[std::path::PathBuf],
) -> Result<switchboard_protocol::mcp_server::sealed::SessionKeys, Error> {
    let setting = "session_key_file (--session-key-file / MCP_SERVER_SESSION_KEY_FILE)";
    let secrets = files
        .iter()
        .map(|file| {
            std::fs::read(file)
                .map_err(|e| Error::Config(format!("{setting}: {}: {e}", file.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    switchboard_protocol::mcp_server::sealed::SessionKeys::new(&secrets, SEALED_SESSION_LIFETIME)
        .map_err(|e| Error::Config(format!("{setting}: {e}")))
}
