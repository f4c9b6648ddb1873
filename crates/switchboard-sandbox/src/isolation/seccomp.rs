//! The seccomp filters every sandboxed process runs under.
//!
//! An allow-list (default deny): a program may make only the system calls CPython 3.11, the C
//! libraries under it and the common scientific stack (numpy with OpenBLAS, pandas,
//! matplotlib) were seen to make — threads, `multiprocessing` (fork, spawn, forkserver),
//! `subprocess`, asyncio, sqlite3, ssl/hashlib, tempfile, mmap, signals, select/poll/epoll,
//! clocks — found with `strace -f -c` and by running the sandbox with `SECCOMP_RET_LOG` as the
//! default. Everything else, including every system call a future kernel adds, is refused.
//!
//! An unlisted call answers `ENOSYS`, as on a kernel that lacks it: the C library and CPython
//! treat `ENOSYS` as "not here" and fall back to an older call (`clone3` → `clone`,
//! `faccessat2` → `faccessat`, `statx` → `fstatat`, `pidfd_open` → a waiting thread), where
//! `EPERM` reads as a real failure and often ends the program (as glibc 2.33's `faccessat2`
//! did under container profiles answering `EPERM`, until runc made calls newer than a profile
//! answer `ENOSYS`). `EPERM` for everything would read better in an error message; `ENOSYS`
//! keeps programs working on the calls they can do without. The calls an escape would need — namespaces, mounts,
//! tracing other processes, loading kernel code, BPF, kernel keyrings, io_uring (which
//! bypasses seccomp), sockets other than AF_UNIX, `personality` — are named explicitly and
//! answer `EPERM`, so a program sees an ordinary `PermissionError` that says "refused", not
//! "missing". Two programs are stacked; the kernel runs both and takes the more restrictive
//! answer:
//!
//! 1. the refusals ([`refused`]) answer `EPERM`, and so do the argument checks: `clone` with
//!    any namespace flag, `socket` and `socketpair` other than AF_UNIX, `ioctl`
//!    `TIOCSTI`/`TIOCLINUX` (pushing input into a terminal); anything else passes on. Built
//!    with `seccompiler`, which also kills any system call made with a foreign architecture's
//!    numbering (e.g. `int 0x80` on x86-64);
//! 2. the allow-list ([`allowed`]), installed last because it does not allow `seccomp` itself:
//!    listed calls pass, and so do the refused ones, to program 1's `EPERM` (which, being more
//!    restrictive than "allow", is the answer); any other call answers `ENOSYS`. A foreign
//!    architecture's numbering kills, and so does, on x86-64, the x32 numbering (bit 30 set:
//!    the same calls under other numbers). `clone3` is not listed: its flags live in memory a
//!    filter cannot read, and C libraries fall back to `clone`, whose flags program 1 checks.
//!    Written by hand as a binary search ([`allow_program`]).
//!
//! Calls that both programs allow whatever the arguments are answered from the kernel's cache
//! of always-allowed calls (Linux 5.11+) without running either program, so the common path
//! costs nothing; only `clone`, `socket`, `socketpair` and `ioctl` run them.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use super::IsolationError;

/// Namespace flags of `clone`: creating any namespace is denied (the sandbox already has its
/// own; a nested user namespace would hand the program fresh capabilities).
const NAMESPACE_FLAGS: [u64; 8] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

/// `ioctl` requests refused: `TIOCSTI` and `TIOCLINUX` both push input into a terminal
/// (another process's, if one were reachable). The same numbers on x86-64 and aarch64.
const TERMINAL_INJECTION: [u64; 2] = [0x5412, 0x541C];

/// System calls numbered alike on every architecture (424 and up); `libc` lacks some of them
/// for some targets.
const SYS_FACCESSAT2: i64 = 439;
const SYS_FCHMODAT2: i64 = 452;
const SYS_OPEN_TREE_ATTR: i64 = 467;

/// The system calls a program may make, in groups, each with why. Most were seen in use
/// (`strace -f -c` of CPython 3.11 running the programs of `tests/seccomp_allowlist.rs` and
/// more, and of numpy, pandas and matplotlib; the whole test suite with `SECCOMP_RET_LOG` as
/// the default, which logged only `clone3` and the calls the tests try on purpose). The rest
/// add no new power: the other architecture's or a newer C library's form of an allowed
/// operation (the `*at` forms aarch64 has instead of x86-64's path calls; `statx`,
/// `faccessat2`, `fchmodat2`; `ppoll`, `epoll_pwait`, `dup3`, `getpgid`), the vDSO's
/// fallbacks (`gettimeofday`, `clock_getres`), or the plain counterpart of an allowed call on
/// the same object (`getitimer`, `getresuid`, `getpeername`, `shutdown`, `setpgid`, `umask`).
fn allowed() -> Vec<(&'static str, Vec<i64>)> {
    use libc::*;
    let mut groups: Vec<(&'static str, Vec<i64>)> = vec![
        (
            "ending a process or thread; resuming a call a stop or signal interrupted",
            vec![SYS_exit, SYS_exit_group, SYS_restart_syscall],
        ),
        (
            "memory: the allocator, mmap (msync: mmap.flush), loading shared libraries; \
             mbind: OpenBLAS (numpy) asks for NUMA placement of its buffers",
            vec![
                SYS_brk,
                SYS_mmap,
                SYS_munmap,
                SYS_mprotect,
                SYS_mremap,
                SYS_madvise,
                SYS_msync,
                SYS_mbind,
            ],
        ),
        (
            "files by descriptor: reading, writing, seeking, syncing, locking (sqlite3), sizes \
             (mmap, shared memory), sendfile (shutil.copy)",
            vec![
                SYS_read,
                SYS_write,
                SYS_readv,
                SYS_writev,
                SYS_pread64,
                SYS_pwrite64,
                SYS_lseek,
                SYS_close,
                SYS_close_range,
                SYS_fstat,
                SYS_fstatfs,
                SYS_ftruncate,
                SYS_fsync,
                SYS_fdatasync,
                SYS_fadvise64,
                SYS_flock,
                SYS_fchown,
                SYS_getdents64,
                SYS_sendfile,
            ],
        ),
        (
            "files by name, the *at forms (statx, faccessat2, fchmodat2: what a newer C library \
             prefers, falling back on ENOSYS; Landlock and the read-only root decide where)",
            vec![
                SYS_openat,
                SYS_newfstatat,
                SYS_statx,
                SYS_statfs,
                SYS_faccessat,
                SYS_FACCESSAT2,
                SYS_readlinkat,
                SYS_mkdirat,
                SYS_unlinkat,
                SYS_renameat2,
                SYS_symlinkat,
                SYS_linkat,
                SYS_fchmodat,
                SYS_FCHMODAT2,
                SYS_fchownat,
                SYS_utimensat,
                SYS_truncate,
                SYS_getcwd,
                SYS_chdir,
                SYS_umask,
            ],
        ),
        (
            "descriptors: pipes, duplicates, flags; ioctl: isatty (TCGETS), FIOCLEX, FIONBIO \
             (the refusals drop TIOCSTI and TIOCLINUX)",
            vec![SYS_pipe2, SYS_dup, SYS_dup3, SYS_fcntl, SYS_ioctl],
        ),
        (
            "waiting for descriptors: select, poll, epoll (selectors, asyncio, subprocess, \
             multiprocessing)",
            vec![
                SYS_pselect6,
                SYS_ppoll,
                SYS_epoll_create1,
                SYS_epoll_ctl,
                SYS_epoll_pwait,
            ],
        ),
        (
            "AF_UNIX sockets only (the refusals check the family): multiprocessing's \
             connections, forkserver and Manager; socket.socketpair; asyncio",
            vec![
                SYS_socket,
                SYS_socketpair,
                SYS_bind,
                SYS_listen,
                SYS_accept4,
                SYS_connect,
                SYS_shutdown,
                SYS_getsockname,
                SYS_getpeername,
                SYS_getsockopt,
                SYS_setsockopt,
                SYS_sendto,
                SYS_recvfrom,
                SYS_sendmsg,
                SYS_recvmsg,
            ],
        ),
        (
            "clocks (the vDSO's fallbacks, CPU-time clocks), sleeping, interval timers, times",
            vec![
                SYS_clock_gettime,
                SYS_clock_getres,
                SYS_gettimeofday,
                SYS_clock_nanosleep,
                SYS_getitimer,
                SYS_setitimer,
                SYS_times,
            ],
        ),
        (
            "signals: handlers, masks, waiting, faulthandler's stack; signalling its own \
             processes and threads (its pid namespace holds nothing else)",
            vec![
                SYS_rt_sigaction,
                SYS_rt_sigprocmask,
                SYS_rt_sigreturn,
                SYS_rt_sigpending,
                SYS_rt_sigtimedwait,
                SYS_sigaltstack,
                SYS_kill,
                SYS_tgkill,
            ],
        ),
        (
            "threads and their locks (clone: the refusals drop namespace flags; clone3 stays \
             out, see the module documentation)",
            vec![
                SYS_clone,
                SYS_futex,
                SYS_set_robust_list,
                SYS_set_tid_address,
                SYS_gettid,
                SYS_rseq,
                SYS_sched_yield,
                SYS_sched_getaffinity,
            ],
        ),
        (
            "processes: the launcher's execve, subprocess, multiprocessing, os.setsid and \
             process groups (start_new_session, process_group)",
            vec![
                SYS_execve,
                SYS_wait4,
                SYS_getpid,
                SYS_getppid,
                SYS_getpgid,
                SYS_setpgid,
                SYS_getsid,
                SYS_setsid,
            ],
        ),
        (
            "own limits and priority (the kernel refuses raising either), resource usage; \
             prctl: the bootstrap's PR_SET_DUMPABLE",
            vec![
                SYS_prlimit64,
                SYS_getrusage,
                SYS_getpriority,
                SYS_setpriority,
                SYS_prctl,
            ],
        ),
        (
            "ids, read only (setuid and friends stay out: nothing needs them, no capability \
             would let them succeed)",
            vec![
                SYS_getuid,
                SYS_geteuid,
                SYS_getgid,
                SYS_getegid,
                SYS_getresuid,
                SYS_getresgid,
                SYS_getgroups,
            ],
        ),
        (
            "the system: uname (platform), sysinfo (glibc's qsort sizes its buffer by RAM), \
             getrandom (os.urandom, hash seeds, ssl)",
            vec![SYS_uname, SYS_sysinfo, SYS_getrandom],
        ),
    ];
    groups.extend(allowed_on_this_arch());
    groups
}

/// x86-64 keeps the older path and fixed-argument calls beside the *at forms (aarch64 has
/// only those), and glibc and CPython on x86-64 call them: each is the x86-64 form of an
/// operation allowed above.
#[cfg(target_arch = "x86_64")]
fn allowed_on_this_arch() -> Vec<(&'static str, Vec<i64>)> {
    use libc::*;
    vec![
        (
            "x86-64: setting the thread pointer (TLS) at start-up",
            vec![SYS_arch_prctl],
        ),
        (
            "x86-64: the path forms of the *at calls (os.rename, os.mkdir, os.readlink, ...)",
            vec![
                SYS_open,
                SYS_stat,
                SYS_lstat,
                SYS_access,
                SYS_readlink,
                SYS_mkdir,
                SYS_rmdir,
                SYS_unlink,
                SYS_rename,
                SYS_renameat,
                SYS_symlink,
                SYS_link,
                SYS_chmod,
                SYS_chown,
                SYS_lchown,
            ],
        ),
        (
            "x86-64: the old forms of descriptor, waiting, signal and process calls (vfork: \
             _posixsubprocess starts subprocess children with it)",
            vec![
                SYS_pipe,
                SYS_dup2,
                SYS_poll,
                SYS_select,
                SYS_epoll_wait,
                SYS_alarm,
                SYS_pause,
                SYS_getpgrp,
                SYS_vfork,
            ],
        ),
    ]
}

#[cfg(not(target_arch = "x86_64"))]
fn allowed_on_this_arch() -> Vec<(&'static str, Vec<i64>)> {
    Vec::new()
}

/// System calls refused with `EPERM` outright, with why. None of them is in [`allowed`]; they
/// are named so that a program sees "Operation not permitted" instead of "Function not
/// implemented" for what is refused on purpose.
fn refused() -> Vec<(i64, &'static str)> {
    let mut list = vec![
        (libc::SYS_ptrace, "tracing other processes"),
        (
            libc::SYS_process_vm_readv,
            "reading other processes' memory",
        ),
        (
            libc::SYS_process_vm_writev,
            "writing other processes' memory",
        ),
        (
            libc::SYS_pidfd_getfd,
            "stealing other processes' descriptors",
        ),
        (libc::SYS_kcmp, "comparing other processes' resources"),
        (libc::SYS_mount, "mounting"),
        (libc::SYS_umount2, "unmounting"),
        (libc::SYS_pivot_root, "changing the root"),
        (libc::SYS_chroot, "changing the root"),
        (libc::SYS_move_mount, "mounting"),
        (libc::SYS_open_tree, "mounting"),
        (SYS_OPEN_TREE_ATTR, "mounting"),
        (libc::SYS_fsopen, "mounting"),
        (libc::SYS_fsconfig, "mounting"),
        (libc::SYS_fsmount, "mounting"),
        (libc::SYS_fspick, "mounting"),
        (libc::SYS_mount_setattr, "mounting"),
        (libc::SYS_unshare, "new namespaces"),
        (libc::SYS_setns, "entering namespaces"),
        (libc::SYS_kexec_load, "loading a kernel"),
        (libc::SYS_kexec_file_load, "loading a kernel"),
        (libc::SYS_reboot, "rebooting"),
        (libc::SYS_init_module, "loading kernel modules"),
        (libc::SYS_finit_module, "loading kernel modules"),
        (libc::SYS_delete_module, "unloading kernel modules"),
        (libc::SYS_bpf, "BPF programs"),
        (libc::SYS_perf_event_open, "performance monitoring"),
        (libc::SYS_keyctl, "kernel keyrings"),
        (libc::SYS_add_key, "kernel keyrings"),
        (libc::SYS_request_key, "kernel keyrings"),
        (libc::SYS_io_uring_setup, "io_uring bypasses seccomp"),
        (libc::SYS_io_uring_enter, "io_uring bypasses seccomp"),
        (libc::SYS_io_uring_register, "io_uring bypasses seccomp"),
        (libc::SYS_userfaultfd, "userfaultfd widens kernel races"),
        (
            libc::SYS_personality,
            "execution domains (READ_IMPLIES_EXEC, no ASLR)",
        ),
        (libc::SYS_swapon, "swap"),
        (libc::SYS_swapoff, "swap"),
        (libc::SYS_acct, "process accounting"),
        (libc::SYS_quotactl, "quotas"),
        (libc::SYS_syslog, "the kernel log"),
        (libc::SYS_settimeofday, "the clock"),
        (libc::SYS_clock_settime, "the clock"),
        (libc::SYS_clock_adjtime, "the clock"),
        (libc::SYS_adjtimex, "the clock"),
        (libc::SYS_sethostname, "the host name"),
        (libc::SYS_setdomainname, "the domain name"),
        (libc::SYS_open_by_handle_at, "opening files by handle"),
        (libc::SYS_name_to_handle_at, "file handles"),
        (libc::SYS_fanotify_init, "watching file systems"),
        (libc::SYS_vhangup, "terminals"),
        (libc::SYS_migrate_pages, "moving other processes' memory"),
        (libc::SYS_move_pages, "moving other processes' memory"),
    ];
    list.extend(refused_on_this_arch());
    list
}

#[cfg(target_arch = "x86_64")]
fn refused_on_this_arch() -> Vec<(i64, &'static str)> {
    vec![
        (libc::SYS_iopl, "I/O ports"),
        (libc::SYS_ioperm, "I/O ports"),
        (libc::SYS_modify_ldt, "descriptor tables"),
        (libc::SYS_lookup_dcookie, "kernel profiling"),
    ]
}

#[cfg(not(target_arch = "x86_64"))]
fn refused_on_this_arch() -> Vec<(i64, &'static str)> {
    Vec::new()
}

/// Every allowed system call number, each once.
fn allowed_numbers() -> Vec<i64> {
    let mut numbers: Vec<i64> = allowed().into_iter().flat_map(|(_, nrs)| nrs).collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// How many system calls the allow-list lets through (some argument-checked), for `/ready`.
pub(crate) fn allowed_count() -> usize {
    allowed_numbers().len()
}

/// What is in force, for `/ready`.
pub(crate) fn describe() -> String {
    format!(
        "allow-list: {} system calls allowed (clone without namespace flags, socket and socketpair AF_UNIX only, ioctl without TIOCSTI/TIOCLINUX), every other denied: {} refused on purpose answer EPERM, the rest (clone3, future calls) ENOSYS; x32 and foreign-architecture calls kill",
        allowed_count(),
        refused().len(),
    )
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, IsolationError> {
    SeccompCondition::new(arg, len, op, value).map_err(seccomp_error)
}

fn seccomp_error(error: impl std::fmt::Display) -> IsolationError {
    IsolationError::Unsupported(format!("building the seccomp filter failed: {error}"))
}

fn target_arch() -> Result<TargetArch, IsolationError> {
    std::env::consts::ARCH.try_into().map_err(|_| {
        IsolationError::Unsupported(format!(
            "seccomp filters are built for x86_64 and aarch64 only, not {}",
            std::env::consts::ARCH
        ))
    })
}

/// The kernel's `AUDIT_ARCH_*` value of this target, which `seccomp_data.arch` carries.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: u32 = 0; // never used: `programs` refuses other targets first

/// The classic BPF instructions the allow-list is written in.
const LD_W_ABS: u16 = 0x20;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// The x32 numbering's bit: on x86-64, the same calls under other numbers.
const X32_BIT: u32 = 0x4000_0000;
/// Numbers compared one after another at the leaves of the search.
const LEAF: usize = 8;
/// The kernel's limit on one program (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Program 2, the allow-list: the listed calls and the refused ones (which program 1 answers
/// `EPERM` unconditionally) pass, anything else answers `ENOSYS`; another architecture's
/// numbering, and on x86-64 the x32 numbering, kill the process. Written by hand as a binary
/// search, not with `seccompiler`'s linear chain: the kernel runs every program once per
/// system call number when it is installed (to fill its cache of always-allowed calls), and
/// over some 200 numbers the chain made each sandbox start about 0.5 ms slower.
fn allow_program() -> Result<BpfProgram, IsolationError> {
    let mut numbers = Vec::new();
    for nr in allowed_numbers()
        .into_iter()
        .chain(refused().into_iter().map(|(nr, _)| nr))
    {
        numbers.push(u32::try_from(nr).map_err(seccomp_error)?);
    }
    numbers.sort_unstable();
    numbers.dedup();
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let mut program = vec![
        insn(LD_W_ABS, 0, 0, DATA_ARCH),
        insn(JEQ_K, 1, 0, AUDIT_ARCH),
        insn(RET_K, 0, 0, kill),
        insn(LD_W_ABS, 0, 0, DATA_NR),
    ];
    if cfg!(target_arch = "x86_64") {
        program.extend([insn(JGE_K, 0, 1, X32_BIT), insn(RET_K, 0, 0, kill)]);
    }
    search(&numbers, &mut program)?;
    if program.len() > MAX_INSTRUCTIONS {
        return Err(seccomp_error(format!(
            "the allow-list program has {} instructions",
            program.len()
        )));
    }
    Ok(program)
}

/// Append the search of the sorted `numbers` for the loaded system call number: `ALLOW` if
/// found, else `ENOSYS`.
fn search(numbers: &[u32], out: &mut Vec<sock_filter>) -> Result<(), IsolationError> {
    if numbers.len() <= LEAF {
        // Compare each; a match jumps past the rest and the ENOSYS, to the ALLOW.
        let count = numbers.len();
        for (i, &nr) in numbers.iter().enumerate() {
            let to_allow = u8::try_from(count - i).map_err(seccomp_error)?;
            out.push(insn(JEQ_K, to_allow, 0, nr));
        }
        out.push(insn(
            RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ));
        out.push(insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
        return Ok(());
    }
    let (low, high) = numbers.split_at(numbers.len() / 2);
    let Some(&first_high) = high.first() else {
        return Err(seccomp_error("an empty half in the allow-list search"));
    };
    let mut low_code = Vec::new();
    search(low, &mut low_code)?;
    // nr >= the first high number: jump over the low half's code (conditional jumps reach
    // only 255 instructions; `JA` reaches any).
    out.push(insn(JGE_K, 0, 1, first_high));
    out.push(insn(
        JA,
        0,
        0,
        u32::try_from(low_code.len()).map_err(seccomp_error)?,
    ));
    out.extend(low_code);
    search(high, out)
}

/// Program 1: the refusals and argument checks, `EPERM`; anything else passes (to program 2's
/// verdict).
fn refuse_filter(arch: TargetArch) -> Result<SeccompFilter, IsolationError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, _why) in refused() {
        rules.insert(nr, Vec::new());
    }
    let mut clone_rules = Vec::new();
    for flag in NAMESPACE_FLAGS {
        clone_rules.push(
            SeccompRule::new(vec![cond(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?])
            .map_err(seccomp_error)?,
        );
    }
    rules.insert(libc::SYS_clone, clone_rules);
    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        // Any difference in all 64 bits refuses, so high bits cannot smuggle another family.
        let not_unix = cond(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::Ne,
            libc::AF_UNIX as u64,
        )?;
        rules.insert(
            nr,
            vec![SeccompRule::new(vec![not_unix]).map_err(seccomp_error)?],
        );
    }
    // The kernel reads the request as 32 bits: compare only those, so that high bits set in
    // the register cannot slip the request past (CVE-2019-10063).
    let mut ioctl_rules = Vec::new();
    for request in TERMINAL_INJECTION {
        ioctl_rules.push(
            SeccompRule::new(vec![cond(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                request,
            )?])
            .map_err(seccomp_error)?,
        );
    }
    rules.insert(libc::SYS_ioctl, ioctl_rules);
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(seccomp_error)
}

/// The stacked programs, in installation order: the allow-list comes last, as it does not
/// allow `seccomp` itself.
pub(crate) fn programs() -> Result<Vec<BpfProgram>, IsolationError> {
    let arch = target_arch()?;
    Ok(vec![
        BpfProgram::try_from(refuse_filter(arch)?).map_err(seccomp_error)?,
        allow_program()?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS_MEMFD_SECRET: i64 = 447;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    fn this_audit_arch() -> u32 {
        if cfg!(target_arch = "x86_64") {
            0xC000_003E
        } else {
            0xC000_00B7
        }
    }

    /// Run one classic BPF program on `seccomp_data` (nr, arch, ip, args), as the kernel
    /// would; only the instructions these programs use.
    fn run(program: &[sock_filter], data: &[u8; 64]) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = &program[pc];
            let k = insn.k;
            let jump = |taken: bool| 1 + usize::from(if taken { insn.jt } else { insn.jf });
            pc += match insn.code {
                0x20 => {
                    // LD W ABS
                    let at = k as usize;
                    acc = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
                    1
                }
                0x54 => {
                    // ALU AND K
                    acc &= k;
                    1
                }
                0x05 => 1 + k as usize,     // JA
                0x15 => jump(acc == k),     // JEQ K
                0x25 => jump(acc > k),      // JGT K
                0x35 => jump(acc >= k),     // JGE K
                0x45 => jump(acc & k != 0), // JSET K
                0x06 => return k,           // RET K
                code => panic!("instruction {code:#x} not emulated"),
            };
        }
    }

    /// The verdict of the stacked programs: the most restrictive action; between equal ones,
    /// the most recently installed program's (kernel/seccomp.c, seccomp_run_filters).
    fn verdict_for(programs: &[BpfProgram], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, arg) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
        }
        let mut result = ALLOW;
        for program in programs.iter().rev() {
            let ret = run(program, &data);
            let action = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
            if action(ret) < action(result) {
                result = ret;
            }
        }
        result
    }

    fn verdict(nr: i64, args: [u64; 6]) -> u32 {
        let programs = programs().expect("filters build");
        verdict_for(&programs, this_audit_arch(), nr, args)
    }

    #[test]
    fn programs_build_for_this_machine() {
        let programs = programs().expect("filters build");
        assert!(programs.len() >= 2);
        assert!(programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }

    #[test]
    fn each_program_but_the_last_lets_the_next_be_installed() {
        let programs = programs().expect("filters build");
        let (last, before) = programs.split_last().expect("programs");
        for i in 1..=before.len() {
            let installed = &programs[..i];
            let nr = libc::SYS_seccomp;
            assert_eq!(
                verdict_for(installed, this_audit_arch(), nr, [1, 0, 0, 0, 0, 0]),
                ALLOW,
                "program {i} would be refused"
            );
        }
        assert_eq!(
            verdict_for(&programs, this_audit_arch(), libc::SYS_seccomp, [0; 6]),
            ENOSYS
        );
        assert!(!last.is_empty());
    }

    #[test]
    fn listed_calls_pass_refused_ones_answer_eperm_the_rest_enosys() {
        for nr in allowed_numbers() {
            if ![libc::SYS_socket, libc::SYS_socketpair].contains(&nr) {
                assert_eq!(verdict(nr, [0; 6]), ALLOW, "allowed call {nr}");
            }
        }
        for (nr, why) in refused() {
            assert_eq!(verdict(nr, [0; 6]), EPERM, "{nr} ({why})");
        }
        for nr in [
            SYS_MEMFD_SECRET,
            libc::SYS_clone3,
            libc::SYS_memfd_create,
            1000,
            0x3fff_ffff,
        ] {
            assert_eq!(verdict(nr, [0; 6]), ENOSYS, "unlisted call {nr}");
        }
    }

    #[test]
    fn the_search_finds_exactly_the_listed_numbers() {
        let program = allow_program().expect("allow-list builds");
        let passed: Vec<i64> = allowed_numbers()
            .into_iter()
            .chain(refused().into_iter().map(|(nr, _)| nr))
            .collect();
        let arch = this_audit_arch();
        for nr in (0..2048).chain([0x3fff_ffff, 0x3fff_fffe]) {
            let expected = if passed.contains(&nr) { ALLOW } else { ENOSYS };
            let got = verdict_for(std::slice::from_ref(&program), arch, nr, [0; 6]);
            assert_eq!(got, expected, "system call {nr}");
        }
        assert!(program.len() < 4096);
    }

    #[test]
    fn argument_checks() {
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD) as u64;
        assert_eq!(verdict(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            verdict(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            ALLOW
        );
        for flag in NAMESPACE_FLAGS {
            let flags = flag | libc::SIGCHLD as u64;
            assert_eq!(verdict(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]), EPERM);
        }
        let unix = libc::AF_UNIX as u64;
        for nr in [libc::SYS_socket, libc::SYS_socketpair] {
            assert_eq!(verdict(nr, [unix, 1, 0, 0, 0, 0]), ALLOW);
            assert_eq!(verdict(nr, [libc::AF_INET as u64, 1, 0, 0, 0, 0]), EPERM);
            assert_eq!(verdict(nr, [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0]), EPERM);
            assert_eq!(verdict(nr, [unix | 1 << 32, 1, 0, 0, 0, 0]), EPERM);
        }
        let tcgets = 0x5401;
        assert_eq!(verdict(libc::SYS_ioctl, [0, tcgets, 0, 0, 0, 0]), ALLOW);
        for request in TERMINAL_INJECTION {
            assert_eq!(verdict(libc::SYS_ioctl, [0, request, 0, 0, 0, 0]), EPERM);
            // The kernel reads the request as 32 bits; so does the check.
            let high = request | 0xffff_0000_0000;
            assert_eq!(verdict(libc::SYS_ioctl, [0, high, 0, 0, 0, 0]), EPERM);
        }
    }

    #[test]
    fn foreign_and_x32_numbering_kill() {
        let kill = libc::SECCOMP_RET_KILL_PROCESS;
        let programs = programs().expect("filters build");
        let i386 = 0x4000_0003;
        assert_eq!(verdict_for(&programs, i386, libc::SYS_getpid, [0; 6]), kill);
        if cfg!(target_arch = "x86_64") {
            let x32_read = 0x4000_0000;
            assert_eq!(verdict(x32_read, [0; 6]), kill);
        }
    }

    #[test]
    fn dangerous_calls_are_not_allowed_and_are_refused() {
        let allowed = allowed_numbers();
        let refused: Vec<i64> = refused().into_iter().map(|(nr, _)| nr).collect();
        for (name, nr) in [
            ("personality", libc::SYS_personality),
            ("ptrace", libc::SYS_ptrace),
            ("mount", libc::SYS_mount),
            ("unshare", libc::SYS_unshare),
            ("setns", libc::SYS_setns),
            ("bpf", libc::SYS_bpf),
            ("keyctl", libc::SYS_keyctl),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("userfaultfd", libc::SYS_userfaultfd),
            ("perf_event_open", libc::SYS_perf_event_open),
            ("open_tree_attr", SYS_OPEN_TREE_ATTR),
        ] {
            assert!(!allowed.contains(&nr), "{name} is allowed");
            assert!(refused.contains(&nr), "{name} is not refused with EPERM");
        }
        // Not allowed, and left to the default ENOSYS.
        for (name, nr) in [
            ("memfd_secret", SYS_MEMFD_SECRET),
            ("clone3", libc::SYS_clone3),
            ("memfd_create", libc::SYS_memfd_create),
            ("execveat", libc::SYS_execveat),
            ("seccomp", libc::SYS_seccomp),
            ("setuid", libc::SYS_setuid),
            ("pidfd_open", libc::SYS_pidfd_open),
        ] {
            assert!(!allowed.contains(&nr), "{name} is allowed");
        }
    }

    #[test]
    fn no_call_is_both_allowed_and_refused() {
        let allowed = allowed_numbers();
        for (nr, why) in refused() {
            assert!(!allowed.contains(&nr), "{nr} ({why}) is in both lists");
        }
        assert!(allowed.contains(&libc::SYS_execve), "the launcher execs");
        assert!(allowed.contains(&libc::SYS_prctl), "the bootstrap's prctl");
        assert!(describe().contains(&allowed_count().to_string()));
    }
}
