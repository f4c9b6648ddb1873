//! Settings of the code-executor.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_runtime::{
    Error, HttpSettings,
    auth::Secret,
    config::{parse_socket_addr, seconds},
};

/// Default listen address (docs/design.md: code-executor on 8004).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8004";
/// Default sandbox address (docs/design.md: sandbox on 8001).
pub const DEFAULT_SANDBOX_URL: &str = "http://127.0.0.1:8001";

/// Settings as given on the command line, in the environment or in `[code-executor]`.
#[derive(Clone, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on [default: 127.0.0.1:8004].
    #[arg(long, env = "CODE_EXECUTOR_LISTEN", value_parser = parse_socket_addr, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// Base URL of a sandbox's REST API; repeat it (or separate with commas) for several
    /// sandboxes, which share the executions [default: http://127.0.0.1:8001].
    #[arg(
        long,
        env = "CODE_EXECUTOR_SANDBOX_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    #[serde(default, deserialize_with = "one_or_many")]
    pub sandbox_url: Option<Vec<String>>,
    /// Treat each http sandbox URL's host name as a set of sandboxes: every address it
    /// resolves to (a Kubernetes headless Service) is one, re-resolved every probe interval
    /// [default: false].
    #[arg(long, env = "CODE_EXECUTOR_SANDBOX_RESOLVE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub sandbox_resolve: Option<bool>,
    /// How often each sandbox's readiness, free interpreters and packages are checked (an
    /// ejected sandbox is probed back at this pace) [default: 1].
    #[arg(
        long,
        env = "CODE_EXECUTOR_SANDBOX_PROBE_SECONDS",
        value_name = "SECONDS"
    )]
    pub sandbox_probe_seconds: Option<f64>,
    /// Longest wait for the sandbox's answer to an execution, queueing included; keep it above
    /// the sandbox's queue timeout plus its longest run [default: 120].
    #[arg(
        long,
        env = "CODE_EXECUTOR_EXECUTE_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub execute_timeout_seconds: Option<f64>,
    /// Longest wait for the sandbox's answer to a package install (pip runs behind it)
    /// [default: 660].
    #[arg(
        long,
        env = "CODE_EXECUTOR_INSTALL_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub install_timeout_seconds: Option<f64>,
    /// Longest wait for a TCP connection to the sandbox [default: 2].
    #[arg(
        long,
        env = "CODE_EXECUTOR_CONNECT_TIMEOUT_SECONDS",
        value_name = "SECONDS"
    )]
    pub connect_timeout_seconds: Option<f64>,
    /// The credential sent to the sandbox (`Authorization: Bearer`), when the sandbox
    /// authenticates its callers: `env:NAME`, `file:PATH` or the token itself.
    #[arg(long, env = "CODE_EXECUTOR_SANDBOX_TOKEN", value_name = "SECRET")]
    pub sandbox_token: Option<String>,
}

/// The token never appears in logs or debug output.
impl std::fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawConfig")
            .field("listen", &self.listen)
            .field("sandbox_url", &self.sandbox_url)
            .field(
                "sandbox_token",
                &self.sandbox_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    pub listen: SocketAddr,
    /// The sandboxes, each without a trailing slash (at least one).
    pub sandbox_urls: Vec<String>,
    /// Expand each http URL's host name into the addresses it resolves to.
    pub sandbox_resolve: bool,
    pub sandbox_probe_interval: Duration,
    pub execute_timeout: Duration,
    pub install_timeout: Duration,
    pub connect_timeout: Duration,
    /// Sent to the sandbox as a bearer credential.
    pub sandbox_token: Option<Secret>,
    pub http: HttpSettings,
}

impl Config {
    pub fn from_parts(raw: RawConfig, http: HttpSettings) -> Result<Self, Error> {
        let sandbox_urls = raw
            .sandbox_url
            .filter(|urls| !urls.is_empty())
            .unwrap_or_else(|| vec![DEFAULT_SANDBOX_URL.to_owned()])
            .iter()
            .map(|url| check_url(url))
            .collect::<Result<Vec<_>, _>>()?;
        let secs = |name: &str, env: &str, value: Option<f64>, default: u64| match value {
            Some(v) => seconds(&format!("{name} (--{} / {env})", name.replace('_', "-")), v),
            None => Ok(Duration::from_secs(default)),
        };
        let listen = match raw.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| Error::Config(format!("built-in listen address: {e}")))?,
        };
        Ok(Self {
            listen,
            sandbox_urls,
            sandbox_resolve: raw.sandbox_resolve.unwrap_or(false),
            sandbox_probe_interval: match raw.sandbox_probe_seconds {
                Some(v) => seconds(
                    "sandbox_probe_seconds (--sandbox-probe-seconds / CODE_EXECUTOR_SANDBOX_PROBE_SECONDS)",
                    v,
                )?,
                None => Duration::from_secs(1),
            },
            execute_timeout: secs(
                "execute_timeout_seconds",
                "CODE_EXECUTOR_EXECUTE_TIMEOUT_SECONDS",
                raw.execute_timeout_seconds,
                120,
            )?,
            install_timeout: secs(
                "install_timeout_seconds",
                "CODE_EXECUTOR_INSTALL_TIMEOUT_SECONDS",
                raw.install_timeout_seconds,
                660,
            )?,
            connect_timeout: secs(
                "connect_timeout_seconds",
                "CODE_EXECUTOR_CONNECT_TIMEOUT_SECONDS",
                raw.connect_timeout_seconds,
                2,
            )?,
            sandbox_token: raw
                .sandbox_token
                .as_deref()
                .map(|source| {
                    Secret::resolve(
                        "sandbox_token (--sandbox-token / CODE_EXECUTOR_SANDBOX_TOKEN)",
                        source,
                    )
                })
                .transpose()?,
            http,
        })
    }

    /// Defaults, pointed at `sandbox_url` (for tests and `switchboard up`).
    pub fn for_sandbox(sandbox_url: &str) -> Result<Self, Error> {
        Self::from_parts(
            RawConfig {
                sandbox_url: Some(vec![sandbox_url.to_owned()]),
                ..Default::default()
            },
            HttpSettings::default(),
        )
    }
}

/// `sandbox_url` in TOML: one URL or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        Option::<OneOrMany>::deserialize(deserializer)?.map(|urls| match urls {
            OneOrMany::One(url) => vec![url],
            OneOrMany::Many(urls) => urls,
        }),
    )
}

fn check_url(url: &str) -> Result<String, Error> {
    let trimmed = url.trim().trim_end_matches('/');
    let valid = reqwest::Url::parse(trimmed)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Error::Config(format!(
            "sandbox_url (--sandbox-url / CODE_EXECUTOR_SANDBOX_URL): '{url}' is not an http(s) URL; expected e.g. http://127.0.0.1:8001"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_url_checks() {
        let c =
            Config::from_parts(RawConfig::default(), HttpSettings::default()).expect("defaults");
        assert_eq!(c.sandbox_urls, ["http://127.0.0.1:8001"]);
        assert_eq!(c.listen.port(), 8004);
        assert_eq!(
            Config::for_sandbox("http://h:1/").expect("ok").sandbox_urls,
            ["http://h:1"]
        );
        let err = Config::for_sandbox("localhost:8001").expect_err("no scheme");
        assert!(
            err.to_string().contains("CODE_EXECUTOR_SANDBOX_URL"),
            "{err}"
        );
    }

    #[test]
    fn one_sandbox_url_or_several() {
        let one: RawConfig = toml::from_str(r#"sandbox_url = "http://a:1""#).expect("one");
        assert_eq!(one.sandbox_url, Some(vec!["http://a:1".to_owned()]));
        let many: RawConfig =
            toml::from_str(r#"sandbox_url = ["http://a:1", "http://b:1/"]"#).expect("many");
        let c = Config::from_parts(many, HttpSettings::default()).expect("valid");
        assert_eq!(c.sandbox_urls, ["http://a:1", "http://b:1"]);
    }
}
