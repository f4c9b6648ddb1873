//! The child's helpers: Landlock with raw system calls, the user namespace's limits, signal
//! reset, formatting a descriptor path, writing, and reporting a failure. The contract of
//! [`super`] applies to every line: raw system calls only, no allocation, nothing that can
//! panic on a path that is taken.

use libc::{c_int, c_void};

use super::{REPORT_FD, Stage, record};
use crate::isolation::{plan::LandlockPlan, user_limits::UserLimit};

/// `struct landlock_ruleset_attr` (all ABIs; the kernel accepts trailing zeros).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr`.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;

pub(super) unsafe fn restrict_landlock(plan: &LandlockPlan) {
    // SAFETY: as in `run`; the attribute structs live on this stack frame.
    unsafe {
        let attr = RulesetAttr {
            handled_access_fs: plan.handled_fs,
            handled_access_net: plan.handled_net,
            scoped: plan.scoped,
        };
        let ruleset = libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &raw const attr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        );
        if ruleset < 0 {
            fail(Stage::LandlockCreate, 0);
        }
        let ruleset = ruleset as c_int;
        for (i, (path, access)) in plan.rules.iter().enumerate() {
            let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if fd < 0 {
                fail(Stage::LandlockRule, i);
            }
            let rule = PathBeneathAttr {
                allowed_access: *access,
                parent_fd: fd,
            };
            if libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                LANDLOCK_RULE_PATH_BENEATH,
                &raw const rule,
                0u32,
            ) != 0
            {
                fail(Stage::LandlockRule, i);
            }
            libc::close(fd);
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
            fail(Stage::LandlockRestrict, 0);
        }
        libc::close(ruleset);
    }
}

/// Set this user namespace's own per-user limits through the sandbox's fresh `/proc` (see
/// [`crate::isolation::user_limits`]).
pub(super) unsafe fn write_user_limits(limits: &[UserLimit]) {
    for (i, limit) in limits.iter().enumerate() {
        // SAFETY: a NUL-terminated path prepared by the parent; the descriptor is ours.
        unsafe {
            let fd = libc::open(limit.path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || !write_all(fd, &limit.contents) {
                fail(Stage::UserLimits, i);
            }
            libc::close(fd);
        }
    }
}

/// Every signal back to its default action and none blocked: handlers the service installed
/// must not run here, and the interpreter should start as any program does. Raw calls, so the
/// C library's reserved signals are reset too.
pub(super) unsafe fn reset_signals() {
    // The kernel's `struct sigaction` with SIG_DFL, no flags, no restorer, empty mask.
    let default = [0u64; 4];
    let empty = 0u64;
    // SAFETY: plain system calls with stack values of the sizes the kernel expects.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &raw const empty,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
        }
    }
}

/// Write `/proc/self/fd/<fd>` and a NUL into `buf`.
pub(super) fn fd_path(fd: c_int, buf: &mut [u8; 32]) {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    let mut digits = [0u8; 12];
    let mut n = fd.unsigned_abs();
    let mut len = 0;
    loop {
        if let Some(slot) = digits.get_mut(len) {
            *slot = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 || len >= digits.len() {
            break;
        }
    }
    let mut pos = 0;
    for &b in PREFIX.iter().chain(digits.iter().take(len).rev()) {
        if let Some(slot) = buf.get_mut(pos) {
            *slot = b;
        }
        pos += 1;
    }
    if let Some(slot) = buf.get_mut(pos) {
        *slot = 0;
    }
}

pub(super) fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast::<c_void>(), bytes.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        bytes = bytes.get(n as usize..).unwrap_or_default();
    }
    true
}

pub(super) fn errno() -> c_int {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}

pub(super) fn fail(stage: Stage, index: usize) -> ! {
    fail_on(REPORT_FD, stage, index)
}

pub(super) fn fail_on(fd: c_int, stage: Stage, index: usize) -> ! {
    let err = errno().to_le_bytes();
    let [lo, hi] = (index.min(u16::MAX as usize) as u16).to_le_bytes();
    write_all(
        fd,
        &[
            record::ERROR,
            stage as u8,
            lo,
            hi,
            err[0],
            err[1],
            err[2],
            err[3],
        ],
    );
    // SAFETY: leaving the process without running anything of the parent's.
    unsafe { libc::_exit(127) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_are_nul_terminated_decimal() {
        let mut buf = [0xffu8; 32];
        fd_path(1234, &mut buf);
        let end = buf.iter().position(|&b| b == 0).expect("NUL");
        assert_eq!(&buf[..end], b"/proc/self/fd/1234");
        fd_path(0, &mut buf);
        let end = buf.iter().position(|&b| b == 0).expect("NUL");
        assert_eq!(&buf[..end], b"/proc/self/fd/0");
    }
}
