//! The seccomp filters every sandboxed process runs under.
//!
//! A deny-list: Python needs a large and version-dependent set of system calls, so an
//! allow-list would break ordinary programs; what Python never needs and an escape would —
//! namespaces, mounts, tracing other processes, loading kernel code, BPF, kernel keyrings,
//! io_uring (which bypasses seccomp), sockets other than AF_UNIX — answers `EPERM`, so a
//! program sees an ordinary `PermissionError`. Three programs are stacked:
//!
//! 1. the deny-list (`EPERM`), built with `seccompiler` (which also kills any system call made
//!    with a foreign architecture's numbering, e.g. `int 0x80` on x86-64);
//! 2. `clone3` answers `ENOSYS`: its flags live in memory a filter cannot read, and C
//!    libraries fall back to `clone`, whose flags the first program checks;
//! 3. on x86-64, the x32 numbering (bit 30 set) kills the process: the same call under another
//!    number would slip past program 1.

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

/// System calls denied outright, with why.
fn denied() -> Vec<(i64, &'static str)> {
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
    #[cfg(target_arch = "x86_64")]
    list.extend([
        (libc::SYS_iopl, "I/O ports"),
        (libc::SYS_ioperm, "I/O ports"),
        (libc::SYS_modify_ldt, "descriptor tables"),
        (libc::SYS_lookup_dcookie, "kernel profiling"),
    ]);
    list
}

/// How many system calls the deny-list names, for `/ready`.
pub(crate) fn denied_count() -> usize {
    denied().len() + 3 // plus clone (namespace flags), socket and socketpair (non-AF_UNIX)
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, IsolationError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(seccomp_error)
}

fn seccomp_error(error: impl std::fmt::Display) -> IsolationError {
    IsolationError::Unsupported(format!("building the seccomp filter failed: {error}"))
}

/// The stacked programs, in installation order.
pub(crate) fn programs() -> Result<Vec<BpfProgram>, IsolationError> {
    let arch: TargetArch = std::env::consts::ARCH.try_into().map_err(|_| {
        IsolationError::Unsupported(format!(
            "seccomp filters are built for x86_64 and aarch64 only, not {}",
            std::env::consts::ARCH
        ))
    })?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, _why) in denied() {
        rules.insert(nr, Vec::new());
    }
    let mut clone_rules = Vec::new();
    for flag in NAMESPACE_FLAGS {
        clone_rules.push(
            SeccompRule::new(vec![cond(0, SeccompCmpOp::MaskedEq(flag), flag)?])
                .map_err(seccomp_error)?,
        );
    }
    rules.insert(libc::SYS_clone, clone_rules);
    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        let not_unix = cond(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?;
        rules.insert(
            nr,
            vec![SeccompRule::new(vec![not_unix]).map_err(seccomp_error)?],
        );
    }
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(seccomp_error)?;
    let no_clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(seccomp_error)?;
    let mut programs = vec![
        BpfProgram::try_from(deny).map_err(seccomp_error)?,
        BpfProgram::try_from(no_clone3).map_err(seccomp_error)?,
    ];
    if cfg!(target_arch = "x86_64") {
        programs.push(x32_guard());
    }
    Ok(programs)
}

/// Kill on any system call number with the x32 bit (0x4000_0000). Four instructions, written
/// by hand: seccompiler matches exact numbers only.
fn x32_guard() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        insn(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        insn(JGE_K, 0, 1, 0x4000_0000),
        insn(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_build_for_this_machine() {
        let programs = programs().expect("filters build");
        assert!(programs.len() >= 2);
        assert!(programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }
}
