//! The gateway's upstreams as configured: the `"name=url"` / `"name=stdio:..."` strings and
//! the table form, their validation, and the validated [`UpstreamConfig`].

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_runtime::Error;

use super::{
    DEFAULT_BREAKER_COOLDOWN, DEFAULT_BREAKER_FAILURES, DEFAULT_CALL_TIMEOUT,
    DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_UPSTREAM_SESSIONS, MAX_UPSTREAM_NAME_LEN,
};
use crate::naming;

/// One upstream as configured: `"name=url"` or a table with optional overrides.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamSpec {
    Short { name: String, url: String },
    Table(Box<UpstreamTable>),
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
    /// HTTPS upstreams: a CA to trust, a client certificate, headers (see `access`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// OAuth client credentials for its access tokens (see `super::oauth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth: Option<super::oauth::OAuthTable>,
    pub call_timeout_seconds: Option<f64>,
    pub max_concurrent_calls: Option<usize>,
    pub breaker_failures: Option<u32>,
    pub breaker_cooldown_seconds: Option<f64>,
    /// Most sessions of its own clients the gateway keeps with it (a stateful upstream gets
    /// one per client session or caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<usize>,
    /// The operator vouches that it keeps no per-client state: one session for all clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_session: Option<bool>,
}

/// clap value parser for `--upstream`: only splits; [`Config::from_parts`] validates.
pub(super) fn parse_upstream_arg(value: &str) -> Result<UpstreamSpec, String> {
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
                    .map(|table| UpstreamSpec::Table(Box::new(table)))
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
    /// Per-upstream CA, client certificate and headers (HTTP upstreams).
    pub access: super::access::UpstreamAccess,
    /// Access tokens by OAuth client credentials, sent as `Authorization: Bearer`.
    pub oauth: Option<super::oauth::OAuthSettings>,
    pub call_timeout: Duration,
    pub max_concurrent_calls: usize,
    pub breaker: BreakerSettings,
    /// Most upstream sessions of its own clients at once, besides the gateway's shared one
    /// (`crate::upstream::pool`); more are refused with an error that says so.
    pub max_sessions: usize,
    /// One session for every client even if the upstream keeps sessions: set by an operator
    /// who knows it keeps no per-client state.
    pub shared_session: bool,
}

impl UpstreamConfig {
    /// An upstream with the default limits. `name` and `url` are not validated here; use
    /// [`Config::from_parts`] for input from outside.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            stdio: None,
            access: Default::default(),
            oauth: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            breaker: BreakerSettings {
                failures: DEFAULT_BREAKER_FAILURES,
                cooldown: DEFAULT_BREAKER_COOLDOWN,
            },
            max_sessions: DEFAULT_MAX_UPSTREAM_SESSIONS,
            shared_session: false,
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
    pub fn with_max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }
    pub fn with_oauth(mut self, oauth: super::oauth::OAuthSettings) -> Self {
        self.oauth = Some(oauth);
        self
    }
    pub fn with_shared_session(mut self, shared: bool) -> Self {
        self.shared_session = shared;
        self
    }
}

pub(super) const UPSTREAMS_SETTING: &str = "upstreams (--upstream / MCP_SERVER_UPSTREAMS)";

/// Where an upstream is reached.
pub(super) enum Target {
    Http(String),
    Stdio(StdioCommand),
}

/// `NAME=URL` or `NAME=stdio:COMMAND ARG...` (arguments split at whitespace).
pub(super) fn short_target(name: &str, value: &str) -> Result<Target, Error> {
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

pub(super) fn table_target(table: &UpstreamTable) -> Result<Target, Error> {
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
        (None, Some(_))
            if table.ca_file.is_some()
                || table.client_cert.is_some()
                || table.client_key.is_some()
                || table.headers.is_some()
                || table.oauth.is_some() =>
        {
            Err(Error::Config(format!(
                "{UPSTREAMS_SETTING}: upstream '{name}': ca_file, client_cert, client_key, headers and oauth belong to an upstream with a url, not to a stdio one"
            )))
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
pub(super) fn validate_command(name: &str, command: &StdioCommand) -> Result<(), Error> {
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

pub(super) fn validate_name(name: &str) -> Result<(), Error> {
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

pub(super) fn validate_url(name: &str, url: &str) -> Result<(), Error> {
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
