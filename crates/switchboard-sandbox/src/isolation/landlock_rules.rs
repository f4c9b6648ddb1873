//! Landlock for the sandbox: which ABI the kernel offers and the rules for the new root.
//!
//! The `landlock` crate supplies the access masks for the running kernel's ABI (so a newer
//! kernel never gets rights this code was not written for); the child applies them with raw
//! system calls, because it may not allocate (see [`super::child`]). The rules mirror the
//! mounts: everything is readable and executable, only the scratch directories are writable,
//! and with ABI 4+ no TCP bind or connect, with ABI 6+ no signals or abstract sockets across
//! the sandbox's boundary. Landlock is defence in depth here — the read-only root already
//! holds nothing secret — but still promised: a kernel without it makes the service refuse to
//! start unless the operator accepts running without (see [`super::layers`]).

use landlock::{ABI, Access, AccessFs, AccessNet, Scope};

use super::IsolationError;
use super::plan::{DEVICES, LandlockPlan, WORKDIR, cstring};

/// What the kernel offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    Abi(i32),
    /// Built in but switched off (`EOPNOTSUPP`): enable with the `lsm=` boot parameter.
    Disabled,
    /// Not built into the kernel (`ENOSYS`), or the call refused (e.g. by a container's
    /// seccomp profile): the errno.
    Missing(i32),
}

impl Availability {
    pub(crate) fn detect() -> Self {
        // SAFETY: the documented version query: no attribute, size 0, flag VERSION.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                1u32, // LANDLOCK_CREATE_RULESET_VERSION
            )
        };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if v > 0 {
            Self::Abi(v as i32)
        } else if errno == libc::EOPNOTSUPP {
            Self::Disabled
        } else {
            Self::Missing(errno)
        }
    }

    pub(crate) fn describe(self) -> String {
        match self.missing() {
            None => format!("enforced, ABI {}", self.abi()),
            Some(why) => format!("not enforced: {why}"),
        }
    }

    fn abi(self) -> i32 {
        match self {
            Self::Abi(abi) => abi,
            _ => 0,
        }
    }

    /// Why Landlock cannot be used, if it cannot.
    pub(crate) fn missing(self) -> Option<String> {
        match self {
            Self::Abi(_) => None,
            Self::Disabled => Some(
                "built into the kernel but disabled (landlock is not in the lsm= boot parameter)"
                    .into(),
            ),
            Self::Missing(errno) => Some(format!(
                "landlock_create_ruleset: {}",
                std::io::Error::from_raw_os_error(errno)
            )),
        }
    }
}

/// The plan for `abi`, or `None` when the kernel has no Landlock.
pub(crate) fn plan(
    availability: Availability,
    writable_extra: &[&str],
) -> Result<Option<LandlockPlan>, IsolationError> {
    let Availability::Abi(raw) = availability else {
        return Ok(None);
    };
    let abi = ABI::from(raw);
    let handled_fs = AccessFs::from_all(abi).bits();
    let read = AccessFs::from_read(abi).bits();
    let file = AccessFs::from_file(abi).bits();
    let mut rules = vec![(cstring("/")?, read)];
    for dir in [WORKDIR, "/tmp", "/dev/shm"].iter().chain(writable_extra) {
        rules.push((cstring(dir)?, handled_fs));
    }
    for device in DEVICES {
        rules.push((cstring(format!("/dev/{device}"))?, file));
    }
    Ok(Some(LandlockPlan {
        abi: raw,
        handled_fs,
        handled_net: AccessNet::from_all(abi).bits(),
        scoped: Scope::from_all(abi).bits(),
        rules,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_grow_with_the_abi() {
        let v1 = plan(Availability::Abi(1), &[])
            .expect("plan")
            .expect("some");
        let v6 = plan(Availability::Abi(6), &[])
            .expect("plan")
            .expect("some");
        assert_eq!(v1.handled_net, 0);
        assert_eq!(v1.scoped, 0);
        assert_ne!(v6.handled_net, 0, "ABI 4+ handles TCP");
        assert_ne!(v6.scoped, 0, "ABI 6+ scopes signals and abstract sockets");
        assert!(v6.handled_fs & v1.handled_fs == v1.handled_fs);
        assert!(
            plan(Availability::Missing(libc::ENOSYS), &[])
                .expect("plan")
                .is_none()
        );
    }
}
