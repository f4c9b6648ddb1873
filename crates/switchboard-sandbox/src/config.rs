//! Settings of the sandbox: limits, the pool, the interpreter, isolation, and package installs.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::isolation::Layer;
use switchboard_runtime::{
    Error, HttpSettings,
    config::{parse_socket_addr, seconds},
};

/// Default listen address (docs/design.md: sandbox on 8001).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8001";

/// Settings as given on the command line, in the environment or in `[sandbox]`.
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on [default: 127.0.0.1:8001].
    #[arg(long, env = "SANDBOX_LISTEN", value_parser = parse_socket_addr, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// Python interpreter run in every sandbox; must lie under /usr or a --ro-paths entry
    /// [default: /usr/bin/python3].
    #[arg(long, env = "SANDBOX_PYTHON", value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Extra read-only directories mounted into every sandbox at the same path
    /// (comma-separated), e.g. an interpreter installed under /opt.
    #[arg(
        long,
        env = "SANDBOX_RO_PATHS",
        value_delimiter = ',',
        value_name = "DIRS"
    )]
    pub ro_paths: Option<Vec<PathBuf>>,
    /// Pre-started interpreters kept ready [default: 6].
    #[arg(long, env = "SANDBOX_POOL_SIZE", value_name = "N")]
    pub pool_size: Option<usize>,
    /// Programs running at once; more wait [default: 16].
    #[arg(long, env = "SANDBOX_MAX_CONCURRENT", value_name = "N")]
    pub max_concurrent: Option<usize>,
    /// Longest a request waits for a free interpreter before 503 [default: 30].
    #[arg(long, env = "SANDBOX_QUEUE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub queue_timeout_seconds: Option<f64>,
    /// Wall-clock limit of a run that names none [default: 10].
    #[arg(long, env = "SANDBOX_DEFAULT_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub default_timeout_seconds: Option<f64>,
    /// Largest wall-clock limit a request may ask for [default: 60].
    #[arg(long, env = "SANDBOX_MAX_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub max_timeout_seconds: Option<f64>,
    /// CPU time limit of each process, whole seconds [default: 30].
    #[arg(long, env = "SANDBOX_CPU_SECONDS", value_name = "SECONDS")]
    pub cpu_seconds: Option<u64>,
    /// CPU share of one run, in cores (cgroup quota) [default: 1].
    #[arg(long, env = "SANDBOX_CPUS", value_name = "CORES")]
    pub cpus: Option<f64>,
    /// Memory limit of one run (all its processes), MiB [default: 256].
    #[arg(long, env = "SANDBOX_MEMORY_MIB", value_name = "MIB")]
    pub memory_mib: Option<u64>,
    /// Most processes and threads of one run [default: 64].
    #[arg(long, env = "SANDBOX_MAX_PROCESSES", value_name = "N")]
    pub max_processes: Option<u64>,
    /// Bytes kept of each of stdout and stderr; more stops the program [default: 1048576].
    #[arg(long, env = "SANDBOX_MAX_OUTPUT_BYTES", value_name = "BYTES")]
    pub max_output_bytes: Option<usize>,
    /// Largest file a program may write [default: 16777216].
    #[arg(long, env = "SANDBOX_MAX_FILE_BYTES", value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Size of each scratch tmpfs (/work, /tmp, /dev/shm), MiB [default: 64].
    #[arg(long, env = "SANDBOX_SCRATCH_MIB", value_name = "MIB")]
    pub scratch_mib: Option<u64>,
    /// Let programs execute files they write to /work, /tmp and /dev/shm [default: false:
    /// mounted noexec].
    #[arg(
        long,
        env = "SANDBOX_ALLOW_EXEC_SCRATCH",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub allow_exec_scratch: Option<bool>,
    /// Isolation layers the service may run without where the host cannot enforce them,
    /// comma-separated: memory, swap, pids, cpu (or cgroups for all four), landlock
    /// [default: none: a missing layer stops the service from starting].
    #[arg(
        long,
        env = "SANDBOX_ALLOW_WEAKER_ISOLATION",
        value_delimiter = ',',
        value_name = "LAYERS"
    )]
    pub allow_weaker_isolation: Option<Vec<String>>,
    /// Host uid/gid programs run as when the service runs as root: a uid no other process
    /// uses, and not pip's [default: 65533].
    #[arg(long, env = "SANDBOX_HOST_UID", value_name = "UID")]
    pub host_uid: Option<u32>,
    #[arg(long, env = "SANDBOX_HOST_GID", value_name = "GID")]
    pub host_gid: Option<u32>,
    /// Host uid/gid pip runs as when the service runs as root (it owns the packages
    /// directory); must differ from the programs' [default: 65534].
    #[arg(long, env = "SANDBOX_INSTALLER_UID", value_name = "UID")]
    pub installer_uid: Option<u32>,
    #[arg(long, env = "SANDBOX_INSTALLER_GID", value_name = "GID")]
    pub installer_gid: Option<u32>,

    /// Managed site-packages directory: pip installs here, programs see it read-only at
    /// /packages [default: /var/lib/switchboard/site-packages as root, else
    /// $HOME/.local/share/switchboard/site-packages].
    #[arg(long, env = "SANDBOX_PACKAGES_DIR", value_name = "DIR")]
    pub packages_dir: Option<PathBuf>,
    /// The service's own files (requests held for approval): a directory of the service's uid,
    /// mode 0700, outside the packages directory, no parent writable by other users
    /// [default: the packages directory's path with `.state` appended, e.g.
    /// /var/lib/switchboard/site-packages.state].
    #[arg(long, env = "SANDBOX_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Package index URL given to pip (--index-url) [default: pip's own].
    #[arg(long, env = "SANDBOX_INDEX_URL", value_name = "URL")]
    pub index_url: Option<String>,
    /// Directory of wheels pip may install from (--find-links).
    #[arg(long, env = "SANDBOX_WHEEL_DIR", value_name = "DIR")]
    pub wheel_dir: Option<PathBuf>,
    /// Install only from the wheel directory, never from an index [default: false].
    #[arg(long, env = "SANDBOX_OFFLINE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub offline: Option<bool>,
    /// Packages refused, comma-separated, each `name` or `name: reason` [default: a built-in
    /// list of known-malicious names].
    #[arg(
        long,
        env = "SANDBOX_BLOCKED_PACKAGES",
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub blocked_packages: Option<Vec<String>>,
    /// Packages held for an operator's approval, comma-separated, each `name` or
    /// `name: reason` [default: none; near-misses of popular names are held regardless].
    #[arg(
        long,
        env = "SANDBOX_SUSPICIOUS_PACKAGES",
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub suspicious_packages: Option<Vec<String>>,
    /// Token for POST /packages/pending/{id}/approve (`X-Admin-Token`): `env:NAME`,
    /// `file:PATH` or the token itself; without one, nothing can be approved.
    #[arg(
        long,
        env = "SANDBOX_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Let pip build source distributions (runs their build code) [default: false: wheels
    /// only].
    #[arg(long, env = "SANDBOX_ALLOW_SOURCE_BUILDS", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub allow_source_builds: Option<bool>,
    /// Longest one pip run may take [default: 300].
    #[arg(long, env = "SANDBOX_INSTALL_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub install_timeout_seconds: Option<f64>,
    /// Packages installed at start, each an exact pin `name==version` (comma-separated),
    /// through the same checks as `install_package` (from `wheel_dir` when offline);
    /// `/ready` waits for them [default: none].
    #[arg(
        long,
        env = "SANDBOX_PREINSTALL",
        value_delimiter = ',',
        value_name = "PINS"
    )]
    pub preinstall: Option<Vec<String>>,
    /// Code-interpreter sessions open at once, all callers together; 0 turns sessions off
    /// [default: 8].
    #[arg(long, env = "SANDBOX_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<usize>,
    /// Sessions one caller may have open [default: 3].
    #[arg(long, env = "SANDBOX_MAX_SESSIONS_PER_CALLER", value_name = "N")]
    pub max_sessions_per_caller: Option<usize>,
    /// A session ends after this long without a call; a request may ask for less
    /// [default: 600].
    #[arg(long, env = "SANDBOX_SESSION_IDLE_SECONDS", value_name = "SECONDS")]
    pub session_idle_seconds: Option<u64>,
    /// A session ends this long after it started, whatever happens [default: 3600].
    #[arg(
        long,
        env = "SANDBOX_SESSION_MAX_LIFETIME_SECONDS",
        value_name = "SECONDS"
    )]
    pub session_max_lifetime_seconds: Option<u64>,
}

/// Limits of one run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    pub cpu_seconds: u64,
    pub cpus: f64,
    pub memory_bytes: u64,
    pub max_processes: u64,
    pub max_output_bytes: usize,
    pub max_file_bytes: u64,
    pub scratch_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(10),
            max_timeout: Duration::from_secs(60),
            cpu_seconds: 30,
            cpus: 1.0,
            memory_bytes: 256 << 20,
            max_processes: 64,
            max_output_bytes: 1 << 20,
            max_file_bytes: 16 << 20,
            scratch_bytes: 64 << 20,
        }
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    pub listen: SocketAddr,
    pub python: PathBuf,
    pub ro_paths: Vec<PathBuf>,
    pub pool_size: usize,
    pub max_concurrent: usize,
    pub queue_timeout: Duration,
    pub limits: Limits,
    /// Host uid/gid of the programs (when the service runs as root).
    pub host_uid: u32,
    pub host_gid: u32,
    /// Host uid/gid of pip (when the service runs as root): never the programs', so that a
    /// process pip or a package's build starts cannot reach a worker while it starts (between
    /// `execve` and the interpreter making itself undumpable).
    pub installer_uid: u32,
    pub installer_gid: u32,
    /// Programs may execute files in the scratch tmpfs.
    pub allow_exec_scratch: bool,
    /// Layers the service may run without where the host lacks them (`/ready` then shows
    /// them degraded).
    pub allow_weaker_isolation: Vec<Layer>,
    pub packages: PackageSettings,
    pub sessions: SessionSettings,
    pub http: HttpSettings,
}

fn setting(name: &str, flag: &str) -> String {
    format!("{name} (--{flag} / SANDBOX_{})", name.to_ascii_uppercase())
}

fn positive<T: PartialOrd + Default + Copy>(
    name: &str,
    value: Option<T>,
    default: T,
) -> Result<T, Error> {
    match value {
        Some(v) if v <= T::default() => Err(Error::Config(format!(
            "{}: must be greater than 0",
            setting(name, &name.replace('_', "-"))
        ))),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn duration(name: &str, value: Option<f64>, default: Duration) -> Result<Duration, Error> {
    match value {
        Some(v) => seconds(&setting(name, &name.replace('_', "-")), v),
        None => Ok(default),
    }
}

impl Config {
    pub fn from_parts(raw: RawConfig, http: HttpSettings) -> Result<Self, Error> {
        let sessions = SessionSettings::from_raw(&raw)?;
        let d = Limits::default();
        let limits = Limits {
            default_timeout: duration(
                "default_timeout_seconds",
                raw.default_timeout_seconds,
                d.default_timeout,
            )?,
            max_timeout: duration(
                "max_timeout_seconds",
                raw.max_timeout_seconds,
                d.max_timeout,
            )?,
            cpu_seconds: positive("cpu_seconds", raw.cpu_seconds, d.cpu_seconds)?,
            cpus: positive("cpus", raw.cpus, d.cpus)?,
            memory_bytes: positive("memory_mib", raw.memory_mib, d.memory_bytes >> 20)? << 20,
            max_processes: positive("max_processes", raw.max_processes, d.max_processes)?,
            max_output_bytes: positive(
                "max_output_bytes",
                raw.max_output_bytes,
                d.max_output_bytes,
            )?,
            max_file_bytes: positive("max_file_bytes", raw.max_file_bytes, d.max_file_bytes)?,
            scratch_bytes: positive("scratch_mib", raw.scratch_mib, d.scratch_bytes >> 20)? << 20,
        };
        if limits.default_timeout > limits.max_timeout {
            return Err(Error::Config(format!(
                "{}: {}s is above max_timeout_seconds ({}s)",
                setting("default_timeout_seconds", "default-timeout-seconds"),
                limits.default_timeout.as_secs_f64(),
                limits.max_timeout.as_secs_f64()
            )));
        }
        if !limits.cpus.is_finite() || limits.cpus > 1024.0 {
            return Err(Error::Config(format!(
                "{}: expected a number of cores, e.g. 1 or 0.5",
                setting("cpus", "cpus")
            )));
        }
        if limits.memory_bytes < 32 << 20 {
            return Err(Error::Config(format!(
                "{}: at least 32 MiB are needed to start Python",
                setting("memory_mib", "memory-mib")
            )));
        }
        if limits.max_processes < 4 {
            return Err(Error::Config(format!(
                "{}: at least 4 (the interpreter alone uses one)",
                setting("max_processes", "max-processes")
            )));
        }
        let pool_size = positive("pool_size", raw.pool_size, 6)?;
        if pool_size > 64 {
            return Err(Error::Config(format!(
                "{}: at most 64 (each idle interpreter holds ~3 MB and a process)",
                setting("pool_size", "pool-size")
            )));
        }
        let listen = match raw.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| Error::Config(format!("built-in listen address: {e}")))?,
        };
        let python = raw
            .python
            .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
        if !python.is_absolute() {
            return Err(Error::Config(format!(
                "{}: '{}' must be an absolute path, e.g. /usr/bin/python3",
                setting("python", "python"),
                python.display()
            )));
        }
        let ro_paths = raw.ro_paths.unwrap_or_default();
        if let Some(bad) = ro_paths.iter().find(|p| !p.is_absolute()) {
            return Err(Error::Config(format!(
                "{}: '{}' must be an absolute path",
                setting("ro_paths", "ro-paths"),
                bad.display()
            )));
        }
        let packages = PackageSettings {
            dir: match raw.packages_dir {
                Some(dir) => dir,
                None => default_packages_dir()?,
            },
            state_dir: raw.state_dir,
            index_url: raw.index_url.filter(|u| !u.trim().is_empty()),
            wheel_dir: raw.wheel_dir,
            offline: raw.offline.unwrap_or(false),
            blocked: raw.blocked_packages,
            suspicious: raw.suspicious_packages.unwrap_or_default(),
            // `env:NAME`, `file:PATH` (a Kubernetes Secret mount) or the token itself.
            admin_token: raw
                .admin_token
                .filter(|t| !t.is_empty())
                .map(|source| {
                    switchboard_runtime::auth::Secret::resolve(
                        &setting("admin_token", "admin-token"),
                        &source,
                    )
                    .map(|secret| secret.expose().to_owned())
                })
                .transpose()?,
            allow_source_builds: raw.allow_source_builds.unwrap_or(false),
            preinstall: raw.preinstall.unwrap_or_default(),
            install_timeout: duration(
                "install_timeout_seconds",
                raw.install_timeout_seconds,
                Duration::from_secs(300),
            )?,
        };
        if let Some(dir) = packages.state_dir.as_ref().filter(|d| !d.is_absolute()) {
            return Err(Error::Config(format!(
                "{}: '{}' must be an absolute path",
                setting("state_dir", "state-dir"),
                dir.display()
            )));
        }
        if let Some(bad) = packages.preinstall.iter().find(|p| {
            !p.split_once("==")
                .is_some_and(|(n, v)| !n.trim().is_empty() && !v.trim().is_empty())
        }) {
            return Err(Error::Config(format!(
                "{}: '{bad}' is not an exact pin; write name==version",
                setting("preinstall", "preinstall")
            )));
        }
        if packages.offline && packages.wheel_dir.is_none() {
            return Err(Error::Config(format!(
                "{}: offline installs need wheel_dir (--wheel-dir / SANDBOX_WHEEL_DIR)",
                setting("offline", "offline")
            )));
        }
        if let Some(token) = &packages.admin_token
            && token.len() < 16
        {
            return Err(Error::Config(format!(
                "{}: at least 16 characters",
                setting("admin_token", "admin-token")
            )));
        }
        let allow_weaker_isolation = Layer::parse_all(
            raw.allow_weaker_isolation.unwrap_or_default(),
            &setting("allow_weaker_isolation", "allow-weaker-isolation"),
        )
        .map_err(Error::Config)?;
        let (host_uid, host_gid) = (raw.host_uid.unwrap_or(65533), raw.host_gid.unwrap_or(65533));
        let installer_uid = raw.installer_uid.unwrap_or(65534);
        let installer_gid = raw.installer_gid.unwrap_or(65534);
        if host_uid == installer_uid || host_uid == 0 || installer_uid == 0 {
            return Err(Error::Config(format!(
                "host_uid ({host_uid}) and installer_uid ({installer_uid}) must be two different non-root uids: a process pip starts must not share the programs' uid"
            )));
        }
        Ok(Self {
            listen,
            python,
            ro_paths,
            pool_size,
            max_concurrent: positive("max_concurrent", raw.max_concurrent, 16)?,
            queue_timeout: duration(
                "queue_timeout_seconds",
                raw.queue_timeout_seconds,
                Duration::from_secs(30),
            )?,
            limits,
            host_uid,
            host_gid,
            installer_uid,
            installer_gid,
            allow_exec_scratch: raw.allow_exec_scratch.unwrap_or(false),
            allow_weaker_isolation,
            packages,
            sessions,
            http,
        })
    }

    /// Defaults with packages in `packages_dir` (for tests and embedding).
    pub fn with_packages_dir(packages_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            python: PathBuf::from("/usr/bin/python3"),
            ro_paths: Vec::new(),
            pool_size: 6,
            max_concurrent: 16,
            queue_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            host_uid: 65533,
            host_gid: 65533,
            installer_uid: 65534,
            installer_gid: 65534,
            allow_exec_scratch: false,
            allow_weaker_isolation: Vec::new(),
            packages: PackageSettings::new(packages_dir),
            sessions: SessionSettings::default(),
            http: HttpSettings::default(),
        }
    }
}

#[path = "config_packages.rs"]
mod packages;
pub use packages::{PackageSettings, default_packages_dir};

#[path = "config_sessions.rs"]
mod sessions;
pub use sessions::SessionSettings;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
