//! The installer's own sandbox: what pip (and a source build, when allowed) runs under.
//!
//! pip needs the package index, so it cannot run in an execution sandbox (no network, no
//! writable store); but it handles untrusted archives, and a source build runs the
//! archive's code. So, between `fork` and `execve`:
//!
//! - **its own process group, pid and mount namespaces**, pip as pid 1 with a `/proc` of its
//!   own: it sees no other process, and when pip exits or is killed (timeout), the kernel kills
//!   everything it left behind, daemons included. An intermediate process waits for it and
//!   passes its exit status on; pip dies with it (`PDEATHSIG`).
//! - **its own uid**: as root, the installer uid (`installer_uid`), never the workers' or the
//!   service's; unprivileged, a user namespace of its own (same host uid), so it has no
//!   capability over the workers' namespaces and cannot open their descriptors.
//! - **Landlock**: read anywhere, write only its scratch directory (where `--target` is);
//!   with ABI 4+, TCP connect only to the index's and proxies' ports, none when offline.
//! - **no network at all** with an offline wheel directory (a network namespace of its own).
//! - rlimits: no core dumps, file size, address space, CPU time.
//!
//! The service copies what pip installed out of the scratch directory afterwards (see
//! [`super::store`]); pip never writes the store.

use std::{ffi::CString, io, path::Path};

use landlock::{
    ABI, Access, AccessFs, AccessNet, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr,
};

/// What is applied in the child; prepared by the parent (the child may not allocate).
pub(crate) struct Confinement {
    /// Host ids to switch to (root service).
    run_as: Option<(u32, u32)>,
    /// `/proc/self/{uid,gid}_map` lines for a user namespace of its own (unprivileged).
    own_user_ns: Option<(CString, CString)>,
    no_network: bool,
    rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    landlock: Option<RulesetCreated>,
}

/// The kernel's Landlock ABI, if any (the same probe as the execution sandbox).
fn landlock_abi() -> Option<ABI> {
    match crate::isolation::landlock_rules::Availability::detect() {
        crate::isolation::landlock_rules::Availability::Abi(v) => Some(ABI::from(v)),
        _ => None,
    }
}

fn landlock_ruleset(scratch: &Path, ports: &[u16]) -> Option<RulesetCreated> {
    let abi = landlock_abi()?;
    let build = || -> Result<RulesetCreated, String> {
        let fd = |path: &Path| PathFd::new(path).map_err(|e| e.to_string());
        let rules = [
            (fd(Path::new("/"))?, AccessFs::from_read(abi)),
            (fd(scratch)?, AccessFs::from_all(abi)),
            (fd(Path::new("/dev/null"))?, AccessFs::from_file(abi)),
        ];
        let mut ruleset = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))
            .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
            .and_then(|r| r.create())
            .map_err(|e| e.to_string())?;
        for (path, access) in rules {
            ruleset = ruleset
                .add_rule(PathBeneath::new(path, access))
                .map_err(|e| e.to_string())?;
        }
        for port in ports {
            ruleset = ruleset
                .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
                .map_err(|e| e.to_string())?;
        }
        Ok(ruleset)
    };
    match build() {
        Ok(ruleset) => Some(ruleset),
        Err(error) => {
            tracing::warn!(%error, "cannot prepare Landlock for pip; it runs without");
            None
        }
    }
}

/// The TCP port of `url` (scheme default when absent), if it parses.
pub(crate) fn url_port(url: &str) -> Option<u16> {
    let parsed = url::Url::parse(url).ok()?;
    parsed.port_or_known_default()
}

impl Confinement {
    /// `run_as`: the installer's host ids when the service is root. `ports`: TCP ports pip may
    /// connect to (ignored when `offline`). `max_seconds`: CPU time.
    pub(crate) fn new(
        run_as: Option<(u32, u32)>,
        scratch: &Path,
        offline: bool,
        ports: &[u16],
        max_seconds: u64,
    ) -> Self {
        let own_user_ns = if run_as.is_none() && !is_root() {
            // SAFETY: getuid/getgid cannot fail.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            CString::new(format!("{uid} {uid} 1"))
                .ok()
                .zip(CString::new(format!("{gid} {gid} 1")).ok())
        } else {
            None
        };
        Self {
            run_as,
            own_user_ns,
            no_network: offline,
            rlimits: vec![
                (libc::RLIMIT_CORE, 0),
                (libc::RLIMIT_FSIZE, 1 << 30),
                (libc::RLIMIT_AS, 4 << 30),
                (libc::RLIMIT_CPU, max_seconds.max(1)),
            ],
            landlock: landlock_ruleset(scratch, if offline { &[] } else { ports }),
        }
    }

    /// Apply everything; called in the child between `fork` and `execve`.
    ///
    /// # Safety
    /// Only in a freshly forked child (it forks again, and the intermediate process never
    /// returns from here).
    pub(crate) unsafe fn apply(&mut self) -> io::Result<()> {
        // SAFETY: raw system calls on values prepared by the parent; no allocation.
        unsafe {
            check(libc::setsid())?;
            let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWNS;
            if self.no_network {
                flags |= libc::CLONE_NEWNET;
            }
            if self.own_user_ns.is_some() {
                flags |= libc::CLONE_NEWUSER;
            }
            check(libc::unshare(flags))?;
            if let Some((uid_map, gid_map)) = &self.own_user_ns {
                // The fork inherited the service's "not dumpable", which makes /proc/self/*
                // root's: this process could not write its own maps. Dumpable again, as a
                // worker's clone is (isolation/child): exec replaces this copy of the
                // service's memory a moment later, and pip is dumpable after exec anyway.
                check(libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0))?;
                write_file(c"/proc/self/setgroups", b"deny")?;
                write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
                write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
            }
            // The first child is pid 1 of the new namespace; this process stays outside and
            // only waits for it.
            let pid = check(libc::fork())?;
            if pid > 0 {
                wait_and_exit(pid);
            }
            // A /proc of its own pid namespace: pip sees no other process, so it cannot reach
            // a worker through /proc/<pid>/fd even in the moment a starting worker is still
            // dumpable (unprivileged, both run under the service's host uid).
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))?;
            if let Some((uid, gid)) = self.run_as {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            // After the uid change, which clears it. (Were the waiting process killed before
            // this line, pip would run on unwaited, still bounded by RLIMIT_CPU; its parent
            // is outside the namespace, so getppid cannot tell.)
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            for (resource, limit) in &self.rlimits {
                let limit = libc::rlimit {
                    rlim_cur: *limit,
                    rlim_max: *limit,
                };
                check(libc::setrlimit(*resource, &limit))?;
            }
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        if let Some(ruleset) = self.landlock.take() {
            ruleset
                .restrict_self()
                .map_err(|_| io::Error::other("landlock_restrict_self"))?;
        }
        Ok(())
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn check<T: PartialOrd + Default>(value: T) -> io::Result<T> {
    if value < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

/// # Safety
/// Raw system calls only.
unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: a NUL-terminated path; the descriptor is ours and closed here.
    unsafe {
        let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written != bytes.len() as isize {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The intermediate process: wait for pid 1 of the namespace and exit as it did.
///
/// It first closes every descriptor: it holds the write ends of pip's output pipes and of the
/// standard library's exec-error pipe, and the parent reads both until EOF — which must come
/// when pip exits, not when this process does (the parent blocks in `spawn` until the
/// exec-error pipe closes).
///
/// # Safety
/// Raw system calls only; never returns.
unsafe fn wait_and_exit(pid: libc::pid_t) -> ! {
    // SAFETY: closing our own descriptors, waitpid on our own child, then _exit.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            for fd in 0..4096 {
                libc::close(fd);
            }
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        libc::_exit(128 + libc::WTERMSIG(status));
    }
}

#[cfg(test)]
#[path = "confine_tests.rs"]
mod tests;
