//! The service's side of starting a sandbox: pipes, `clone` into new namespaces, cgroup
//! placement and id maps, then waiting for the child's report.
//!
//! Sequence (child steps in [`super::child`]):
//!
//! 1. parent: pipes for stdin/stdout/stderr, a report pipe and a sync pipe; `clone` with new
//!    user, pid, mount, net, ipc and uts namespaces and `CLONE_PIDFD`. The child is PID 1 of
//!    its pid namespace, so killing it takes every process it ever starts with it.
//! 2. child: fds in place, dumpable again (reports STARTED: see [`record::STARTED`]),
//!    everything else closed, parent-death signal; waits on the sync pipe.
//! 3. parent: waits for STARTED, moves the child into its cgroups, writes its uid/gid maps, releases it.
//! 4. child: drops to the sandbox uid, builds and enters the minimal root, limits, Landlock,
//!    seccomp, reports READY, `execve`s the interpreter (closing the report pipe).
//! 5. parent: reads the report to EOF: READY then EOF is success; an ERROR record names the
//!    step and errno. The interpreter's own start-up continues asynchronously.

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use libc::c_int;

use super::child::{self, ChildFds, FIRST_FREE_FD, Stage, record};
use super::plan::Plan;
use super::{SpawnError, cgroup::WorkerCgroup};

/// How the parent maps the sandbox user into the host.
#[derive(Debug, Clone)]
pub(crate) struct IdMaps {
    pub uid_map: String,
    pub gid_map: String,
    /// Unprivileged services must deny `setgroups` before writing a gid map.
    pub deny_setgroups: bool,
}

/// A started sandbox process. Dropping it does not kill it: see `crate::worker`.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The read end of the results pipe (the interpreter's descriptor 5).
    pub results: OwnedFd,
    /// The sandbox's mount namespace, held open so that the kernel tears it down when this
    /// closes (later, off the answer's path) instead of inside PID 1's exit, where it delays
    /// the exit notification by an RCU grace period.
    pub mount_ns: OwnedFd,
}

/// Longest the child may take from `clone` to `execve` (it needs a few milliseconds).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a two-element out-array as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SpawnError::Host(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A copy of `fd` numbered at least [`FIRST_FREE_FD`] (close-on-exec); the original closes.
fn high(fd: OwnedFd) -> Result<OwnedFd, SpawnError> {
    // SAFETY: duplicating a descriptor we own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, FIRST_FREE_FD) };
    if new < 0 {
        return Err(SpawnError::Host(format!(
            "fcntl: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `new` was just created.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Kills and reaps the child unless defused: every early return after `clone` cleans up.
struct Abort {
    pid: i32,
    armed: bool,
}

impl Drop for Abort {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: our own unreaped child; kill then reap so no zombie is left.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), libc::__WALL);
            }
        }
    }
}

/// Start one sandboxed interpreter. Call from the pool's dedicated thread: the child's
/// parent-death signal follows that thread.
pub(crate) fn spawn(
    plan: &Plan,
    ids: &IdMaps,
    cgroup: &WorkerCgroup,
) -> Result<Spawned, SpawnError> {
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (results_r, results_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let (sync_r, sync_w) = pipe()?;
    let (stdin_r, stdout_w, stderr_w, results_w, report_w, sync_r) = (
        high(stdin_r)?,
        high(stdout_w)?,
        high(stderr_w)?,
        high(results_w)?,
        high(report_w)?,
        high(sync_r)?,
    );
    let fds = ChildFds {
        stdin: stdin_r.as_raw_fd(),
        stdout: stdout_w.as_raw_fd(),
        stderr: stderr_w.as_raw_fd(),
        results: results_w.as_raw_fd(),
        report: report_w.as_raw_fd(),
        sync: sync_r.as_raw_fd(),
    };
    let flags = (libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_PIDFD) as libc::c_ulong
        | libc::SIGCHLD as libc::c_ulong;
    let mut pidfd: c_int = -1;
    // SAFETY: a fork-like clone (no new stack): the child continues here on a copy of this
    // thread's stack and only runs `child::run`, which never returns (see its contract).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            &raw mut pidfd,
            0usize,
            0usize,
        )
    };
    if ret == 0 {
        // SAFETY: we are the child of the clone above.
        unsafe { child::run(plan, &fds) }
    }
    if ret < 0 {
        return Err(SpawnError::Clone(errno()));
    }
    let pid = ret as i32;
    let mut abort = Abort { pid, armed: true };
    // SAFETY: CLONE_PIDFD stored a new descriptor for the child.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((stdin_r, stdout_w, stderr_w, results_w, report_w, sync_r));
    wait_started(&report_r)?;
    let mount_ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .map(OwnedFd::from)
        .map_err(|e| SpawnError::Host(format!("opening the sandbox's mount namespace: {e}")))?;

    cgroup
        .attach(pid)
        .map_err(|e| SpawnError::Host(format!("joining the worker's cgroups: {e}")))?;
    let proc_dir = format!("/proc/{pid}");
    let write = |file: &str, data: &str| {
        std::fs::write(format!("{proc_dir}/{file}"), data)
            .map_err(|e| SpawnError::IdMap(format!("writing {file} ({data:?}): {e}")))
    };
    if ids.deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", &ids.uid_map)?;
    write("gid_map", &ids.gid_map)?;
    // SAFETY: writing one byte from a stack value to our pipe.
    if unsafe { libc::write(sync_w.as_raw_fd(), [1u8].as_ptr().cast(), 1) } != 1 {
        return Err(SpawnError::Host(format!(
            "releasing the child: {}",
            std::io::Error::last_os_error()
        )));
    }

    read_report(&report_r)?;
    drop(sync_w);
    abort.armed = false;
    Ok(Spawned {
        pid,
        pidfd,
        stdin: stdin_w,
        stdout: stdout_r,
        stderr: stderr_r,
        results: results_r,
        mount_ns,
    })
}

/// Wait for the child's first record, which says it is dumpable (see [`record::STARTED`]).
fn wait_started(report: &OwnedFd) -> Result<(), SpawnError> {
    let mut buf = [0u8; record::LEN];
    let len = read_records(report, &mut buf)?;
    match buf.get(..len) {
        Some(first) if len == record::LEN && first[0] == record::STARTED => Ok(()),
        Some(records) => {
            check_errors(records)?;
            Err(SpawnError::Vanished)
        }
        None => Err(SpawnError::Vanished),
    }
}

/// Read the child's records until the pipe closes (at `execve`); READY then EOF is success.
fn read_report(report: &OwnedFd) -> Result<(), SpawnError> {
    let mut buf = [0u8; 64];
    let len = read_records(report, &mut buf)?;
    let records = buf.get(..len).unwrap_or_default();
    check_errors(records)?;
    if records
        .chunks_exact(record::LEN)
        .any(|chunk| chunk[0] == record::READY)
    {
        Ok(())
    } else {
        Err(SpawnError::Vanished)
    }
}

/// Fill `buf` with records until it is full or the pipe closes; returns the length read.
fn read_records(report: &OwnedFd, buf: &mut [u8]) -> Result<usize, SpawnError> {
    let deadline = std::time::Instant::now() + SETUP_TIMEOUT;
    let mut len = 0usize;
    while len < buf.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut poll = libc::pollfd {
            fd: report.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on our stack.
        let ready =
            unsafe { libc::poll(&mut poll, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if ready < 0 && errno() == libc::EINTR {
            continue;
        }
        if ready == 0 {
            return Err(SpawnError::Timeout);
        }
        let space = buf.get_mut(len..).unwrap_or_default();
        // SAFETY: reading into the unused tail of `buf`.
        let n = unsafe { libc::read(report.as_raw_fd(), space.as_mut_ptr().cast(), space.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    Ok(len)
}

/// The first ERROR record among `records`, as an error.
fn check_errors(records: &[u8]) -> Result<(), SpawnError> {
    for chunk in records.chunks_exact(record::LEN) {
        if chunk[0] == record::ERROR {
            let index = u16::from_le_bytes([chunk[2], chunk[3]]);
            let errno = i32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            return Err(SpawnError::Child {
                stage: Stage::from_u8(chunk[1]),
                index: index as usize,
                errno,
            });
        }
    }
    Ok(())
}
