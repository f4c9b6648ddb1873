//! Starting an interpreter under Linux isolation, and finding out at start-up what this host
//! allows.
//!
//! Every sandboxed interpreter is PID 1 of its own user, pid, mount, net, ipc and uts
//! namespaces, runs as uid/gid 1000 inside (an unprivileged host uid outside), in a minimal
//! read-only root (`/usr`, the managed packages, noexec tmpfs `/work` and `/tmp`, a fresh,
//! masked `/proc`, five device nodes), with rlimits, per-worker cgroups, Landlock and stacked
//! seccomp filters, with an empty environment. A cgroup controller or Landlock the host lacks
//! stops the service from starting unless the operator named it as acceptable ([`layers`]).
//!
//! - [`plan`]: the child's instructions, prepared once.
//! - [`child`]: the child between `clone` and `execve` (raw system calls only).
//! - [`spawn`]: the parent's side of one start.
//! - [`seccomp`], [`landlock_rules`], [`cgroup`]: the individual layers.
//! - [`mounts`]: read-only trees all the way down, and the masks over the new `/proc`.
//! - [`layers`]: which promised layers the host cannot provide, and whether that was accepted.

pub(crate) mod cgroup;
pub(crate) mod child;
pub(crate) mod landlock_rules;
pub mod layers;
pub(crate) mod mounts;
pub(crate) mod plan;
pub(crate) mod seccomp;
pub(crate) mod spawn;
pub(crate) mod user_limits;

use std::path::PathBuf;

use serde_json::json;

pub(crate) use cgroup::{CgroupLimits, Cgroups, WorkerCgroup};
use child::Stage;
use landlock_rules::Availability;
pub use layers::Layer;
use layers::{Degraded, Probe};
use mounts::RecursiveReadOnly;
use plan::{Plan, RootLayout};
use spawn::IdMaps;
pub(crate) use spawn::Spawned;

/// The user and group every program runs as, inside its user namespace.
pub const SANDBOX_UID: u32 = 1000;
pub const SANDBOX_GID: u32 = 1000;

/// Why isolation cannot be set up at all.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// A setting cannot work (a path that does not exist, ...).
    #[error("{0}")]
    Config(String),
    /// The kernel or the container refuses something the sandbox requires.
    #[error("{0}")]
    Unsupported(String),
}

/// Why one sandbox could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    #[error("clone with new namespaces failed: {}", describe_errno(*.0))]
    Clone(i32),
    #[error("{0}")]
    IdMap(String),
    #[error("{0}")]
    Host(String),
    #[error("sandbox set-up failed at {}: {}", stage_name(*stage, *index), describe_errno(*errno))]
    Child {
        stage: Option<Stage>,
        index: usize,
        errno: i32,
    },
    #[error("sandbox set-up did not finish within 10 s")]
    Timeout,
    #[error("the sandbox process exited during set-up without a report")]
    Vanished,
}

impl SpawnError {
    /// How to grant what is missing, when the failure means the host refuses isolation.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        const USERNS: &str = "user namespaces are refused. On the host: `sysctl -w user.max_user_namespaces=15000` (and `kernel.unprivileged_userns_clone=1` on Debian/Ubuntu kernels that have it, `kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04+). In a container: allow clone/unshare with namespace flags, mount, umount2, pivot_root and sethostname in the seccomp profile (deploy/seccomp/sandbox.json) and run unconfined by AppArmor (docker run --security-opt seccomp=deploy/seccomp/sandbox.json --security-opt apparmor=unconfined; Kubernetes: securityContext.seccompProfile Localhost and appArmorProfile Unconfined).";
        const PROC: &str = "a fresh /proc cannot be mounted, usually because the container runtime masks parts of the host's /proc. Docker: --security-opt systempaths=unconfined; Kubernetes: securityContext.procMount: Unmasked (with hostUsers: false).";
        const MOUNT: &str = "mounting inside the sandbox's own namespaces is refused: allow mount, umount2 and pivot_root in the container's seccomp profile and run unconfined by AppArmor/SELinux.";
        const USER_LIMITS: &str = "the per-user limits of the sandbox's own user namespace (/proc/sys/user/max_*) cannot be written from inside it; a security module (AppArmor, SELinux) or the container runtime forbids it. The sandbox does not run code that could exhaust the service user's per-user counts on the host.";
        const SECCOMP: &str = "the kernel refuses seccomp filters (CONFIG_SECCOMP_FILTER missing?); the sandbox does not run code without them.";
        match self {
            Self::Clone(_) | Self::IdMap(_) => Some(USERNS),
            Self::Child { stage, .. } => match stage {
                Some(Stage::Proc) => Some(PROC),
                Some(
                    Stage::PrivateMounts
                    | Stage::Staging
                    | Stage::Bind
                    | Stage::BindPath
                    | Stage::Remount
                    | Stage::ReadOnlyTree
                    | Stage::ProcMask
                    | Stage::Tmpfs
                    | Stage::PivotRoot
                    | Stage::DetachOldRoot
                    | Stage::RemountRoot
                    | Stage::Hostname,
                ) => Some(MOUNT),
                Some(Stage::Seccomp | Stage::NoNewPrivs) => Some(SECCOMP),
                Some(Stage::UserLimits) => Some(USER_LIMITS),
                Some(Stage::Gid | Stage::Uid | Stage::Groups) => Some(USERNS),
                _ => None,
            },
            _ => None,
        }
    }
}

fn stage_name(stage: Option<Stage>, index: usize) -> String {
    match stage {
        Some(stage) => format!("{stage:?} (step {index})"),
        None => format!("an unknown step ({index})"),
    }
}

fn describe_errno(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// Resource limits set with `setrlimit` in every sandbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RlimitSettings {
    pub cpu_seconds: u64,
    pub file_bytes: u64,
    pub processes: u64,
    pub open_files: u64,
    /// Address-space cap, used only when no memory cgroup is available.
    pub memory_bytes: u64,
}

/// What [`Isolation::prepare`] needs.
#[derive(Debug, Clone)]
pub(crate) struct IsolationSettings {
    pub python: PathBuf,
    pub python_args: Vec<String>,
    /// Extra read-only directories (an interpreter installed outside `/usr`).
    pub ro_paths: Vec<PathBuf>,
    pub packages_dir: Option<PathBuf>,
    /// The host ids sandboxes run as when the service runs as root.
    pub host_uid: u32,
    pub host_gid: u32,
    /// Size of each scratch tmpfs (`/work`, `/tmp`, `/dev/shm`).
    pub scratch_bytes: u64,
    /// Files in the scratch tmpfs may be executed (else they are mounted `noexec`).
    pub exec_scratch: bool,
    /// Layers the operator accepts running without, where the host lacks them.
    pub allow_weaker: Vec<Layer>,
    pub rlimits: RlimitSettings,
    pub cgroup: CgroupLimits,
}

/// Everything needed to start sandboxes, prepared once. Owned by the pool's spawner thread.
pub(crate) struct Isolation {
    plan: Plan,
    ids: IdMaps,
    cgroups: Cgroups,
    degraded: Vec<Degraded>,
    description: serde_json::Value,
}

impl Isolation {
    pub(crate) fn prepare(settings: &IsolationSettings) -> Result<Self, IsolationError> {
        check_python(settings)?;
        // SAFETY: plain getters.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let root = euid == 0;
        let (host_uid, host_gid) = if root {
            (settings.host_uid, settings.host_gid)
        } else {
            (euid, egid)
        };
        let ids = IdMaps {
            uid_map: format!("{SANDBOX_UID} {host_uid} 1\n"),
            gid_map: format!("{SANDBOX_GID} {host_gid} 1\n"),
            deny_setgroups: !root,
        };
        let cgroups = Cgroups::detect(settings.cgroup);
        let landlock = Availability::detect();
        let mut probe = Probe::default();
        cgroups.report_missing(&mut probe);
        if let Some(why) = landlock.missing() {
            probe.missing(Layer::Landlock, why);
        }
        // Before anything else is prepared: a refusal should be the only message.
        let degraded = layers::decide(&probe, &settings.allow_weaker)?;
        let r = settings.rlimits;
        let mut rlimits = vec![
            (libc::RLIMIT_CPU, r.cpu_seconds, r.cpu_seconds + 1),
            (libc::RLIMIT_FSIZE, r.file_bytes, r.file_bytes),
            (libc::RLIMIT_NOFILE, r.open_files, r.open_files),
            (libc::RLIMIT_NPROC, r.processes, r.processes),
            (libc::RLIMIT_CORE, 0, 0),
            (libc::RLIMIT_MSGQUEUE, 0, 0),
            (
                libc::RLIMIT_SIGPENDING,
                user_limits::PENDING_SIGNALS,
                user_limits::PENDING_SIGNALS,
            ),
        ];
        if !cgroups.has_memory() {
            rlimits.push((libc::RLIMIT_AS, r.memory_bytes, r.memory_bytes));
        }
        let (user_limits, user_limits_described) = user_limits::plan()?;
        let seccomp = seccomp::programs()?;
        let read_only = RecursiveReadOnly::detect();
        let plan = Plan::build(RootLayout {
            python: &settings.python,
            python_args: &settings.python_args,
            ro_paths: &settings.ro_paths,
            packages_dir: settings.packages_dir.as_deref(),
            scratch_bytes: settings.scratch_bytes,
            exec_scratch: settings.exec_scratch,
            read_only: &read_only,
            drop_groups: root,
            rlimits,
            user_limits,
            landlock: landlock_rules::plan(landlock, &[])?,
            seccomp,
        })?;
        let description = json!({
            "namespaces": ["user", "pid", "mount", "net", "ipc", "uts"],
            "status": if degraded.is_empty() { "enforced" } else { "degraded" },
            "layers": layers::describe(&degraded),
            "root": format!(
                "pivot_root into a read-only, noexec tmpfs: /usr{} read-only, {} read-only, tmpfs /work /tmp /dev/shm ({} bytes each, {}), fresh /proc, /dev/{{null,zero,full,random,urandom}}",
                settings.ro_paths.iter().map(|p| format!(", {}", p.display())).collect::<String>(),
                plan::PACKAGES_MOUNT,
                settings.scratch_bytes,
                if settings.exec_scratch { "exec allowed by allow_exec_scratch" } else { "noexec" },
            ),
            "read_only_binds": read_only.describe(),
            "proc": {
                "masked": mounts::MASKED_FILES.iter().chain(mounts::MASKED_DIRS).collect::<Vec<_>>(),
                "read_only": mounts::READ_ONLY,
            },
            "user": format!("uid {SANDBOX_UID} gid {SANDBOX_GID} inside, {host_uid}:{host_gid} on the host, no capabilities, no_new_privs"),
            "network": "none (a new network namespace; sockets other than AF_UNIX denied)",
            "environment": "empty",
            "seccomp": seccomp::describe(),
            "landlock": landlock.describe(),
            "cgroups": cgroups.describe(),
            "rlimits": {
                "cpu_seconds": r.cpu_seconds,
                "file_bytes": r.file_bytes,
                "processes": r.processes,
                "open_files": r.open_files,
                "pending_signals": user_limits::PENDING_SIGNALS,
                "address_space_bytes": (!cgroups.has_memory()).then_some(r.memory_bytes),
            },
            "user_namespace_limits": user_limits_described,
            "kill": "SIGKILL to the sandbox's PID 1 ends its whole pid namespace; parent-death signal set",
        });
        Ok(Self {
            plan,
            ids,
            cgroups,
            degraded,
            description,
        })
    }

    /// What is in force, for `/ready` and the start-up log.
    pub(crate) fn describe(&self) -> serde_json::Value {
        self.description.clone()
    }

    /// The layers missing on this host that the operator accepted.
    pub(crate) fn degraded(&self) -> Vec<Degraded> {
        self.degraded.clone()
    }

    /// Start worker `id`: its cgroups, then the sandboxed interpreter.
    pub(crate) fn spawn(&self, id: u64) -> Result<(Spawned, WorkerCgroup), SpawnError> {
        let mut cgroup = self
            .cgroups
            .create(id)
            .map_err(|e| SpawnError::Host(format!("creating the worker's cgroups: {e}")))?;
        match spawn::spawn(&self.plan, &self.ids, &cgroup) {
            Ok(spawned) => Ok((spawned, cgroup)),
            Err(error) => {
                cgroup.remove();
                Err(error)
            }
        }
    }
}

fn check_python(settings: &IsolationSettings) -> Result<(), IsolationError> {
    let python = &settings.python;
    let real = std::fs::canonicalize(python).map_err(|e| {
        IsolationError::Config(format!("python interpreter {}: {e}", python.display()))
    })?;
    let visible = |p: &std::path::Path| {
        p.starts_with("/usr") || settings.ro_paths.iter().any(|r| p.starts_with(r))
    };
    if !visible(python) || !visible(&real) {
        return Err(IsolationError::Config(format!(
            "python interpreter {} (really {}) lies outside what the sandbox mounts (/usr and the read-only paths); add its installation directory to the read-only paths",
            python.display(),
            real.display()
        )));
    }
    Ok(())
}
