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

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_runtime::{Error, HttpSettings, config::parse_socket_addr, config::seconds};

use crate::naming;

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
}

/// One upstream as configured: `"name=url"` or a table with optional overrides.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamSpec {
    Short { name: String, url: String },
    Table(UpstreamTable),
}

/// The table form of an upstream in the config file: `url`, or `command` (with optional
/// `args`, `env`, `cwd`) for a stdio upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTable {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    pub call_timeout_seconds: Option<f64>,
    pub max_concurrent_calls: Option<usize>,
    pub breaker_failures: Option<u32>,
    pub breaker_cooldown_seconds: Option<f64>,
}

/// clap value parser for `--upstream`: only splits; [`Config::from_parts`] validates.
fn parse_upstream_arg(value: &str) -> Result<UpstreamSpec, String> {
    match value.trim().split_once('=') {
        Some((name, url)) => Ok(UpstreamSpec::Short {
            name: name.trim().to_owned(),
            url: url.trim().to_owned(),
        }),
        None => Err(format!(
            "'{value}' is not NAME=URL, e.g. time-client=http://127.0.0.1:8003/mcp"
        )),
    }
}

impl Serialize for UpstreamSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            UpstreamSpec::Short { name, url } => serializer.serialize_str(&format!("{name}={url}")),
            UpstreamSpec::Table(table) => table.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for UpstreamSpec {
    /// A string `"name=url"` or a table; hand-written so each form reports its own error
    /// (serde's untagged enums only say "did not match any variant").
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UpstreamSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"NAME=URL\" or a table { name, url, ... }")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<UpstreamSpec, E> {
                parse_upstream_arg(value).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<UpstreamSpec, A::Error> {
                UpstreamTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(UpstreamSpec::Table)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Circuit-breaker settings of one upstream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// How long the open circuit rejects calls before a probe.
    pub cooldown: Duration,
}

/// A program the gateway runs as an MCP server over stdio.
#[derive(Debug, Clone, PartialEq)]
pub struct StdioCommand {
    /// A path, or a name looked up in the gateway's `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// The program's whole environment besides `PATH`: the gateway's own variables (and so
    /// its secrets) are never passed on.
    pub env: BTreeMap<String, String>,
    /// Its working directory (the gateway's when `None`).
    pub cwd: Option<PathBuf>,
}

impl StdioCommand {
    pub fn new(
        command: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            command: command.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            cwd: None,
        }
    }
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }
    /// `stdio:COMMAND ARG...`, how it is shown in logs, `/ready` and `/api/tools`.
    pub fn display(&self) -> String {
        let mut text = format!("stdio:{}", self.command);
        for arg in &self.args {
            text.push(' ');
            text.push_str(arg);
        }
        text
    }
}

/// One validated upstream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpstreamConfig {
    /// Unique, `[A-Za-z0-9_-]{1,32}`; the prefix of its tools' names on collisions.
    pub name: String,
    /// Its Streamable HTTP MCP endpoint, e.g. `http://127.0.0.1:8003/mcp`; for a stdio
    /// upstream, `stdio:COMMAND ARG...` (shown, never fetched).
    pub url: String,
    /// Set for an upstream the gateway runs over stdio.
    pub stdio: Option<StdioCommand>,
    pub call_timeout: Duration,
    pub max_concurrent_calls: usize,
    pub breaker: BreakerSettings,
}

impl UpstreamConfig {
    /// An upstream with the default limits. `name` and `url` are not validated here; use
    /// [`Config::from_parts`] for input from outside.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            stdio: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            breaker: BreakerSettings {
                failures: DEFAULT_BREAKER_FAILURES,
                cooldown: DEFAULT_BREAKER_COOLDOWN,
            },
        }
    }
    /// An upstream the gateway runs as `command`, speaking MCP over its stdin and stdout.
    pub fn stdio(name: impl Into<String>, command: StdioCommand) -> Self {
        let mut upstream = Self::new(name, command.display());
        upstream.stdio = Some(command);
        upstream
    }
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }
    pub fn with_max_concurrent_calls(mut self, n: usize) -> Self {
        self.max_concurrent_calls = n;
        self
    }
    pub fn with_breaker(mut self, failures: u32, cooldown: Duration) -> Self {
        self.breaker = BreakerSettings { failures, cooldown };
        self
    }
}

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
            http: HttpSettings::default(),
        }
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
        let breaker_failures = positive(
            raw.breaker_failures.unwrap_or(DEFAULT_BREAKER_FAILURES) as usize,
            "breaker_failures (--breaker-failures / MCP_SERVER_BREAKER_FAILURES)",
        )? as u32;

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
                .with_breaker(breaker_failures, breaker_cooldown);
            if let Some(t) = table {
                let setting = |key: &str| format!("{UPSTREAMS_SETTING}: upstream '{name}': {key}");
                if let Some(v) = t.call_timeout_seconds {
                    upstream.call_timeout = seconds(&setting("call_timeout_seconds"), v)?;
                }
                if let Some(n) = t.max_concurrent_calls {
                    upstream.max_concurrent_calls = positive(n, &setting("max_concurrent_calls"))?;
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
            http,
        })
    }
}

const UPSTREAMS_SETTING: &str = "upstreams (--upstream / MCP_SERVER_UPSTREAMS)";

/// Where an upstream is reached.
enum Target {
    Http(String),
    Stdio(StdioCommand),
}

/// `NAME=URL` or `NAME=stdio:COMMAND ARG...` (arguments split at whitespace).
fn short_target(name: &str, value: &str) -> Result<Target, Error> {
    let Some(command_line) = value.strip_prefix("stdio:") else {
        return Ok(Target::Http(value.to_owned()));
    };
    let mut words = command_line.split_whitespace();
    let Some(command) = words.next() else {
        return Err(Error::Config(format!(
            "{UPSTREAMS_SETTING}: upstream '{name}': 'stdio:' names no command; expected NAME=stdio:COMMAND ARG..., e.g. time=stdio:mcp-server-time --local-timezone UTC"
        )));
    };
    Ok(Target::Stdio(StdioCommand::new(command, words)))
}

fn table_target(table: &UpstreamTable) -> Result<Target, Error> {
    let name = &table.name;
    match (&table.url, &table.command) {
        (Some(url), None) => {
            if table.args.is_some() || table.env.is_some() || table.cwd.is_some() {
                return Err(Error::Config(format!(
                    "{UPSTREAMS_SETTING}: upstream '{name}': args, env and cwd belong to a stdio upstream (command = ...), not to one with a url"
                )));
            }
            short_target(name, url)
        }
        (None, Some(command)) => Ok(Target::Stdio(StdioCommand {
            command: command.clone(),
            args: table.args.clone().unwrap_or_default(),
            env: table.env.clone().unwrap_or_default(),
            cwd: table.cwd.clone(),
        })),
        (Some(_), Some(_)) => Err(Error::Config(format!(
            "{UPSTREAMS_SETTING}: upstream '{name}': give either url (Streamable HTTP) or command (stdio), not both"
        ))),
        (None, None) => Err(Error::Config(format!(
            "{UPSTREAMS_SETTING}: upstream '{name}': needs url = \"http(s)://...\" or command = \"...\""
        ))),
    }
}

/// The command must exist now (a path, or a name in `PATH`), and so must the working
/// directory: a typo stops the start with a message instead of a crash loop.
fn validate_command(name: &str, command: &StdioCommand) -> Result<(), Error> {
    let setting = format!("{UPSTREAMS_SETTING}: upstream '{name}'");
    if crate::upstream::stdio::resolve(&command.command).is_none() {
        return Err(Error::Config(format!(
            "{setting}: command '{}' is not an executable file or a program in PATH",
            command.command
        )));
    }
    if let Some(cwd) = &command.cwd
        && !cwd.is_dir()
    {
        return Err(Error::Config(format!(
            "{setting}: cwd '{}' is not a directory",
            cwd.display()
        )));
    }
    if let Some(bad) = command
        .env
        .keys()
        .find(|key| key.is_empty() || key.contains('=') || key.contains('\0'))
    {
        return Err(Error::Config(format!(
            "{setting}: '{bad}' is not an environment variable name"
        )));
    }
    Ok(())
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

fn validate_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > MAX_UPSTREAM_NAME_LEN
        || !name.bytes().all(naming::is_name_byte)
    {
        return Err(Error::Config(format!(
            "{UPSTREAMS_SETTING}: '{name}' is not an upstream name; expected 1 to {MAX_UPSTREAM_NAME_LEN} characters of A-Z a-z 0-9 _ - (it prefixes tool names, which MCP limits to 64 such characters)"
        )));
    }
    Ok(())
}

fn validate_url(name: &str, url: &str) -> Result<(), Error> {
    let problem = match reqwest::Url::parse(url) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            format!("scheme '{}' is not supported", u.scheme())
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => "it names no host".to_owned(),
        Ok(_) => return Ok(()),
        Err(e) => e.to_string(),
    };
    Err(Error::Config(format!(
        "{UPSTREAMS_SETTING}: upstream '{name}': '{url}' is not a usable URL ({problem}); expected http(s)://HOST:PORT/PATH, e.g. http://127.0.0.1:8003/mcp"
    )))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
