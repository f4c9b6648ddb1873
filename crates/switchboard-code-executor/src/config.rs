//! Settings of the code-executor.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

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
    /// Where tasks (task-augmented calls) and their results are kept across restarts: a
    /// directory of the service's own, mode 0700, created at the first task [default:
    /// /var/lib/switchboard/code-executor as root, else
    /// $XDG_STATE_HOME/switchboard/code-executor or ~/.local/state/switchboard/code-executor].
    #[arg(long, env = "CODE_EXECUTOR_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Most tasks at once, running and waiting; over it a task-augmented call is refused with
    /// "queue full, retry after N s" [default: 64].
    #[arg(long, env = "CODE_EXECUTOR_MAX_TASKS", value_name = "N")]
    pub max_tasks: Option<usize>,
    /// Most tasks running at once; the others wait their turn [default: 8].
    #[arg(long, env = "CODE_EXECUTOR_MAX_RUNNING_TASKS", value_name = "N")]
    pub max_running_tasks: Option<usize>,
    /// How long a task and its result are kept when the call names no `ttl` [default: 3600].
    #[arg(long, env = "CODE_EXECUTOR_TASK_TTL_SECONDS", value_name = "SECONDS")]
    pub task_ttl_seconds: Option<f64>,
    /// The longest `ttl` granted; a longer (or unlimited) request gets this [default: 86400].
    #[arg(
        long,
        env = "CODE_EXECUTOR_TASK_MAX_TTL_SECONDS",
        value_name = "SECONDS"
    )]
    pub task_max_ttl_seconds: Option<f64>,
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
            .field("state_dir", &self.state_dir)
            .field("max_tasks", &self.max_tasks)
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
    /// Tasks: where they are kept, how many, for how long.
    pub tasks: TaskSettings,
    pub http: HttpSettings,
}

/// Task-augmented calls (MCP 2025-11-25 tasks): see [`crate::tasks`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskSettings {
    /// `None`: no default could be found (not root, no `$HOME`); a task-augmented call then
    /// says to set one.
    pub state_dir: Option<PathBuf>,
    /// Running and waiting, together.
    pub max_tasks: usize,
    pub max_running: usize,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    /// Tasks per `tasks/list` page (no flag; tests make it small).
    pub page_size: usize,
    /// The `pollInterval` suggested to clients.
    pub poll_interval: Duration,
}

impl TaskSettings {
    fn from_raw(raw: &RawConfig) -> Result<Self, Error> {
        let count = |name: &str, env: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(Error::Config(format!(
                "{name} (--{} / {env}) must be at least 1",
                name.replace('_', "-")
            ))),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let ttl = |name: &str, env: &str, value: Option<f64>, default: u64| match value {
            Some(v) => seconds(&format!("{name} (--{} / {env})", name.replace('_', "-")), v),
            None => Ok(Duration::from_secs(default)),
        };
        let default_ttl = ttl(
            "task_ttl_seconds",
            "CODE_EXECUTOR_TASK_TTL_SECONDS",
            raw.task_ttl_seconds,
            3600,
        )?;
        let max_ttl = ttl(
            "task_max_ttl_seconds",
            "CODE_EXECUTOR_TASK_MAX_TTL_SECONDS",
            raw.task_max_ttl_seconds,
            86_400,
        )?;
        if default_ttl > max_ttl {
            return Err(Error::Config(format!(
                "task_ttl_seconds ({} s) is longer than task_max_ttl_seconds ({} s)",
                default_ttl.as_secs_f64(),
                max_ttl.as_secs_f64()
            )));
        }
        let state_dir = match &raw.state_dir {
            Some(dir) if dir.is_absolute() => Some(dir.clone()),
            Some(dir) => {
                return Err(Error::Config(format!(
                    "state_dir (--state-dir / CODE_EXECUTOR_STATE_DIR): '{}' must be an absolute path",
                    dir.display()
                )));
            }
            None => default_state_dir(),
        };
        Ok(Self {
            state_dir,
            max_tasks: count("max_tasks", "CODE_EXECUTOR_MAX_TASKS", raw.max_tasks, 64)?,
            max_running: count(
                "max_running_tasks",
                "CODE_EXECUTOR_MAX_RUNNING_TASKS",
                raw.max_running_tasks,
                8,
            )?,
            default_ttl,
            max_ttl,
            page_size: 50,
            poll_interval: Duration::from_secs(1),
        })
    }
}

/// Where tasks are kept when not configured: `/var/lib/switchboard/code-executor` as root,
/// else under `$XDG_STATE_HOME` (when absolute) or `~/.local/state`.
/// Where tasks are kept when no state directory is given: `/var/lib/switchboard/code-executor`
/// as root, else under `$XDG_STATE_HOME` or `~/.local/state`; `None` when neither exists.
pub fn default_state_dir() -> Option<PathBuf> {
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } == 0 {
        return Some(PathBuf::from("/var/lib/switchboard/code-executor"));
    }
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|home| home.join(".local/state"))
    })?;
    Some(base.join("switchboard/code-executor"))
}

impl Config {
    pub fn from_parts(raw: RawConfig, http: HttpSettings) -> Result<Self, Error> {
        let tasks = TaskSettings::from_raw(&raw)?;
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
            tasks,
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
    fn task_settings_from_flags_and_their_checks() {
        use clap::{CommandFactory, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            raw: RawConfig,
        }
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "code-executor",
            "--state-dir",
            "/var/tmp/tasks",
            "--max-tasks",
            "2",
            "--max-running-tasks",
            "1",
            "--task-ttl-seconds",
            "60",
        ])
        .expect("parses");
        let c = Config::from_parts(cli.raw, HttpSettings::default()).expect("valid");
        assert_eq!(c.tasks.state_dir, Some(PathBuf::from("/var/tmp/tasks")));
        assert_eq!((c.tasks.max_tasks, c.tasks.max_running), (2, 1));
        assert_eq!(c.tasks.default_ttl, Duration::from_secs(60));
        assert_eq!(c.tasks.max_ttl, Duration::from_secs(86_400));
        for (raw, says) in [
            (
                RawConfig {
                    state_dir: Some("tasks".into()),
                    ..Default::default()
                },
                "absolute",
            ),
            (
                RawConfig {
                    max_tasks: Some(0),
                    ..Default::default()
                },
                "CODE_EXECUTOR_MAX_TASKS",
            ),
            (
                RawConfig {
                    task_ttl_seconds: Some(10.0),
                    task_max_ttl_seconds: Some(5.0),
                    ..Default::default()
                },
                "longer than task_max_ttl_seconds",
            ),
        ] {
            let error = Config::from_parts(raw, HttpSettings::default()).expect_err(says);
            assert!(error.to_string().contains(says), "{error}");
        }
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
