//! Per-user kernel counts that a sandbox would otherwise take from the service's uid.
//!
//! The kernel keeps some counts per user *and* per user namespace ("ucounts"), and charges each
//! one up the chain of namespaces: a count taken by uid 65534 inside a sandbox's namespace is
//! also charged, in the parent namespace, to the uid that *created* that namespace — the
//! service's, root when it runs as root. The host's limits (`/proc/sys/user/max_*`, and
//! `RLIMIT_SIGPENDING` for queued signals) then bound the sandbox and every host process of
//! that uid together. Measured on Linux 6.18 with the service as root, before this module: a
//! program holding 128 inotify instances (the host's `max_inotify_instances`) made
//! `inotify_init1` fail with `EMFILE` for every root process on the host while it ran, and one
//! queuing 96,366 real-time signals (root's `RLIMIT_SIGPENDING`, 96,367) made queuing a
//! signal fail with `EAGAIN` for root everywhere (`tests/user_counters.rs`).
//!
//! Two remedies, both applied in the child before `execve`:
//!
//! - `RLIMIT_SIGPENDING` of [`PENDING_SIGNALS`]: the kernel checks it against the count of the
//!   sandbox's own (namespace, uid), which covers every process of one sandbox, so a sandbox
//!   can charge root at most that many. A program needs none for ordinary work: `kill` of a
//!   standard signal, `SIGCHLD` and `setitimer` bypass the limit; only `sigqueue`, real-time
//!   signals sent with `tgkill` and POSIX timers count.
//! - The per-namespace limits in `/proc/sys/user/`, which a process with `CAP_SYS_RESOURCE` in
//!   the namespace may set (the child has every capability in its new namespace until
//!   `execve`; afterwards the files are read-only to it). Checked on this kernel: every file
//!   there accepts a write from inside a new user namespace, including 0. The sandbox gets 0
//!   of each ([`LIMITS`]): a run-once program in a private `/work` has nothing to watch
//!   (inotify, fanotify) and may create no namespace (seccomp refuses those calls anyway; the
//!   limits are a second wall). With 0 a sandbox charges root nothing at all, however many run
//!   at once; a small non-zero budget would still add up across concurrent sandboxes.

use std::path::Path;

use super::{IsolationError, plan::cstring};

/// `RLIMIT_SIGPENDING` (soft and hard) of every sandbox: a few hundred queued signals, against
/// the 96,367 that root may queue here (the default is derived from memory size).
pub(crate) const PENDING_SIGNALS: u64 = 256;

/// Where the per-user-namespace limits live; inside the sandbox, its own fresh `/proc`.
const DIR: &str = "/proc/sys/user";

/// The value of each `/proc/sys/user/` limit in every sandbox's user namespace.
const LIMITS: &[(&str, u32)] = &[
    ("max_inotify_instances", 0),
    ("max_inotify_watches", 0),
    ("max_fanotify_groups", 0),
    ("max_fanotify_marks", 0),
    ("max_user_namespaces", 0),
    ("max_pid_namespaces", 0),
    ("max_mnt_namespaces", 0),
    ("max_net_namespaces", 0),
    ("max_ipc_namespaces", 0),
    ("max_uts_namespaces", 0),
    ("max_cgroup_namespaces", 0),
    ("max_time_namespaces", 0),
];

/// One limit the child writes: a path inside the sandbox and its contents.
pub(crate) struct UserLimit {
    pub path: std::ffi::CString,
    pub contents: Vec<u8>,
}

/// The limits of [`LIMITS`] this kernel has (the set depends on its configuration, e.g.
/// fanotify arrived in 5.13's `/proc/sys/user`), and a description for `/ready`.
pub(crate) fn plan() -> Result<(Vec<UserLimit>, serde_json::Value), IsolationError> {
    let mut limits = Vec::new();
    let mut described = serde_json::Map::new();
    for &(name, value) in LIMITS {
        let path = Path::new(DIR).join(name);
        if !path.exists() {
            continue;
        }
        limits.push(UserLimit {
            path: cstring(&path)?,
            contents: format!("{value}\n").into_bytes(),
        });
        described.insert(name.to_owned(), value.into());
    }
    Ok((limits, described.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_this_kernel_has_are_planned() {
        let (limits, described) = plan().expect("a plan");
        assert_eq!(limits.len(), described.as_object().map_or(0, |m| m.len()));
        // Every kernel with user namespaces has these.
        assert_eq!(described["max_user_namespaces"], 0, "{described}");
        assert!(limits.iter().all(|l| l.contents == b"0\n"));
    }
}
