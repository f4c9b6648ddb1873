//! The sandbox's first process, between `clone` and `execve`.
//!
//! This code runs in the child of a fork-like `clone` of a multithreaded process (the service).
//! Only the cloning thread exists in the child, and any lock another thread held at that moment
//! (the allocator's, a logger's) stays held forever. So, by contract: only raw system calls
//! (async-signal-safe), no allocation, no locks, no formatting, nothing that can panic on a
//! path that is taken. Not even every C library wrapper qualifies: glibc's `setresuid` and
//! friends signal every thread it knows of (the parent's) and wait for them, forever; those go
//! through `syscall` directly. Everything it reads was prepared by [`super::plan`]; failures are
//! reported as a fixed-size [`record`] on the report pipe, which the parent turns into a
//! message. On success the report pipe closes with `execve` (it is close-on-exec).

use libc::{c_char, c_int, c_void};

mod raw;
mod steps;

use raw::{errno, fail, fail_on, reset_signals, restrict_landlock, write_all, write_user_limits};
use steps::run_step;

use super::plan::{MAX_ARGS, MAX_SOURCES, Plan};
use super::{SANDBOX_GID, SANDBOX_UID};

/// Declares [`Stage`] and the list of its variants (numbered from 1) in one place.
macro_rules! stages {
    ($first:ident $(, $rest:ident)* $(,)?) => {
        /// The step that failed, as reported to the parent.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Stage {
            $first = 1,
            $($rest,)*
        }

        impl Stage {
            const ALL: &'static [Stage] = &[Stage::$first, $(Stage::$rest,)*];
        }
    };
}

stages!(
    Fds,
    Dumpable,
    ParentDeath,
    OpenSource,
    Groups,
    Gid,
    Uid,
    Hostname,
    PrivateMounts,
    Staging,
    Mkdir,
    Symlink,
    Touch,
    Bind,
    BindPath,
    Remount,
    ReadOnlyTree,
    Tmpfs,
    WriteFile,
    Proc,
    PivotRoot,
    DetachOldRoot,
    RemountRoot,
    Chdir,
    UserLimits,
    ProcMask,
    Rlimit,
    NoNewPrivs,
    LandlockCreate,
    LandlockRule,
    LandlockRestrict,
    Seccomp,
    Exec,
);

impl Stage {
    pub(crate) fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| *s as u8 == value)
    }
}

/// Report records: `[tag, stage, index (u16 LE), errno (i32 LE)]`.
pub(crate) mod record {
    pub const LEN: usize = 8;
    /// A step failed; the process exits.
    pub const ERROR: u8 = b'E';
    /// The child is dumpable again (the service is not, and a clone inherits that), so the
    /// service, even unprivileged, may open its `/proc` files (id maps, mount namespace).
    pub const STARTED: u8 = b'S';
    /// Isolation is complete and `execve` comes next; `index` is the Landlock ABI enforced
    /// (0 for none).
    pub const READY: u8 = b'O';
}

/// The pipe ends the child uses, as numbers in the parent's table (all >= [`FIRST_FREE_FD`]).
pub(crate) struct ChildFds {
    pub stdin: c_int,
    pub stdout: c_int,
    pub stderr: c_int,
    /// The results pipe: what the interpreter reports besides the program's output (files
    /// and figures it produced, a session's answers), as [`RESULTS_FD`].
    pub results: c_int,
    pub report: c_int,
    pub sync: c_int,
}

/// The parent moves every pipe end the child receives to at least this number, so that
/// putting them in place (0..=5) never overwrites one not yet moved.
pub(crate) const FIRST_FREE_FD: c_int = 10;
/// Where the child keeps the report and sync pipes once its descriptors are in place.
pub(crate) const REPORT_FD: c_int = 3;
const SYNC_FD: c_int = 4;
/// Where the interpreter finds the results pipe (`bootstrap.py` knows the number).
pub(crate) const RESULTS_FD: c_int = 5;

/// Sandbox a freshly cloned process and exec the interpreter. Never returns.
///
/// # Safety
///
/// Call only in the child of a fork-like `clone`, with `plan` and `fds` prepared by the parent.
pub(crate) unsafe fn run(plan: &Plan, fds: &ChildFds) -> ! {
    // SAFETY (whole body): raw system calls on pointers into `plan`, which the parent keeps
    // alive and unchanged, and on stack buffers; see the module documentation.
    unsafe {
        if libc::dup3(fds.report, REPORT_FD, libc::O_CLOEXEC) < 0 {
            fail_on(fds.report, Stage::Fds, 0);
        }
        // The clone inherited the service's "not dumpable", which would keep an unprivileged
        // service out of our /proc files. Until `execve` we hold only our own pipe ends; the
        // interpreter makes itself undumpable again before it waits for a program.
        if libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 {
            fail(Stage::Dumpable, 0);
        }
        write_all(REPORT_FD, &[record::STARTED, 0, 0, 0, 0, 0, 0, 0]);
        if libc::dup3(fds.sync, SYNC_FD, libc::O_CLOEXEC) < 0
            || libc::dup2(fds.stdin, 0) < 0
            || libc::dup2(fds.stdout, 1) < 0
            || libc::dup2(fds.stderr, 2) < 0
            || libc::dup2(fds.results, RESULTS_FD) < 0
        {
            fail(Stage::Fds, 0);
        }
        // Everything else inherited from the service (sockets, other sandboxes' pipes) goes
        // now, not only at execve.
        if libc::syscall(libc::SYS_close_range, 6u32, u32::MAX, 0u32) != 0 {
            fail(Stage::Fds, 1);
        }
        reset_signals();
        libc::umask(0o022);
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(Stage::ParentDeath, 0);
        }
        // Wait until the parent has placed us in our cgroups and written our id maps.
        let mut go = 0u8;
        loop {
            let n = libc::read(SYNC_FD, (&raw mut go).cast::<c_void>(), 1);
            if n == 1 && go == 1 {
                break;
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            libc::_exit(0); // the parent gave up on us or died
        }

        let mut source_fds = [-1 as c_int; MAX_SOURCES];
        for (i, source) in plan.sources.iter().enumerate() {
            let mut flags = libc::O_PATH | libc::O_CLOEXEC;
            if source.directory {
                flags |= libc::O_DIRECTORY;
            }
            let fd = libc::open(source.path.as_ptr(), flags);
            match source_fds.get_mut(i) {
                Some(slot) if fd >= 0 => *slot = fd,
                _ => fail(Stage::OpenSource, i),
            }
        }

        // Raw system calls, not the C library's wrappers: those broadcast the change to every
        // thread the library believes exists — the parent's, which are not here — and hang.
        if plan.drop_groups
            && libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0
        {
            fail(Stage::Groups, 0);
        }
        if libc::syscall(libc::SYS_setresgid, SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) != 0 {
            fail(Stage::Gid, 0);
        }
        if libc::syscall(libc::SYS_setresuid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) != 0 {
            fail(Stage::Uid, 0);
        }
        // A change of credentials clears the parent-death signal: set it again, then make
        // sure the parent did not die in between (it holds the sync pipe open until we exec).
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(Stage::ParentDeath, 1);
        }
        let mut poll = libc::pollfd {
            fd: SYNC_FD,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut poll, 1, 0) > 0 && poll.revents & libc::POLLHUP != 0 {
            libc::_exit(0);
        }

        let hostname = plan.hostname.as_bytes();
        if libc::sethostname(hostname.as_ptr().cast::<c_char>(), hostname.len()) != 0 {
            fail(Stage::Hostname, 0);
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            fail(Stage::PrivateMounts, 0);
        }
        if libc::mount(
            c"tmpfs".as_ptr(),
            plan.staging.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            plan.staging_options.as_ptr().cast::<c_void>(),
        ) != 0
        {
            fail(Stage::Staging, 0);
        }
        for (i, step) in plan.steps.iter().enumerate() {
            if let Err(stage) = run_step(step, &source_fds) {
                fail(stage, i);
            }
        }

        // Enter the new root and drop the old one entirely.
        if libc::chdir(plan.staging.as_ptr()) != 0
            || libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
        {
            fail(Stage::PivotRoot, 0);
        }
        if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
            fail(Stage::DetachOldRoot, 0);
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
        {
            fail(Stage::RemountRoot, 0);
        }
        if libc::chdir(plan.workdir.as_ptr()) != 0 {
            fail(Stage::Chdir, 0);
        }
        // While the child still holds CAP_SYS_RESOURCE in its namespace, and before
        // /proc/sys becomes read-only.
        write_user_limits(&plan.user_limits);
        for (i, step) in plan.proc_steps.iter().enumerate() {
            if run_step(step, &source_fds).is_err() {
                fail(Stage::ProcMask, i);
            }
        }

        for (i, &(resource, soft, hard)) in plan.rlimits.iter().enumerate() {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(resource as _, &limit) != 0 {
                fail(Stage::Rlimit, i);
            }
        }

        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail(Stage::NoNewPrivs, 0);
        }
        let mut landlock_abi = 0u16;
        if let Some(landlock) = &plan.landlock {
            restrict_landlock(landlock);
            landlock_abi = landlock.abi as u16;
        }
        for (i, program) in plan.seccomp.iter().enumerate() {
            let fprog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr().cast_mut().cast::<libc::sock_filter>(),
            };
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &raw const fprog,
            ) != 0
            {
                fail(Stage::Seccomp, i);
            }
        }

        let [lo, hi] = landlock_abi.to_le_bytes();
        write_all(REPORT_FD, &[record::READY, 0, lo, hi, 0, 0, 0, 0]);
        let mut argv = [std::ptr::null::<c_char>(); MAX_ARGS + 1];
        for (slot, arg) in argv.iter_mut().zip(plan.argv.iter()) {
            *slot = arg.as_ptr();
        }
        let envp = [std::ptr::null::<c_char>()];
        libc::execve(plan.python.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(Stage::Exec, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip() {
        for value in 1..=Stage::ALL.len() as u8 {
            assert_eq!(Stage::from_u8(value).map(|s| s as u8), Some(value));
        }
        assert_eq!(Stage::from_u8(0), None);
    }
}
