//! What the sandbox's mounts need to know about the host: how to make a bound tree read-only
//! with every mount under it, and which `/proc` paths to hide.
//!
//! A bind with `MS_REC` copies the mounts under its source too, but a read-only remount
//! applies to one mount only: before this module a file system mounted under `/usr` (or under
//! the packages directory) stayed writable inside the sandbox. Two ways to cover the tree:
//!
//! - `mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)` (Linux 5.12+): one call for the whole
//!   tree as it is when the sandbox is built, and it never clears a flag the kernel locked.
//! - Where that call is missing (older kernels) or refused (container seccomp profiles allow it
//!   only with `CAP_SYS_ADMIN`, which the service does not have — deploy/seccomp/sandbox.json
//!   is such a profile): a remount of each mount under the source, listed from the service's
//!   `/proc/self/mountinfo` at start-up, keeping each one's locked flags.
//!
//! `/proc` is the sandbox's own, but files such as `/proc/cmdline`, `/proc/config.gz` and
//! `/proc/sys/kernel/random/boot_id` describe the host, not the namespace. They are masked the
//! way container runtimes mask them (runc/moby defaults, plus those three): `/dev/null` over
//! files, an empty read-only tmpfs over directories, and read-only binds over the parts that
//! could change kernel state.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use super::IsolationError;
use super::plan::{Step, cstring};

/// How read-only binds are made read-only all the way down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecursiveReadOnly {
    /// One `mount_setattr` per tree.
    MountSetattr,
    /// A remount of the bind and of each mount point under it: these, from the host's table.
    Remount { mount_points: Vec<PathBuf> },
}

impl RecursiveReadOnly {
    /// What this host offers: `mount_setattr` if the kernel has it and seccomp lets the
    /// service call it, else the host's mount table.
    pub(crate) fn detect() -> Self {
        if mount_setattr_available() {
            return Self::MountSetattr;
        }
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Self::Remount {
            mount_points: mount_points(&table),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::MountSetattr => "recursive: mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)".into(),
            Self::Remount { .. } => {
                "recursive: each mount under a read-only bind remounted read-only (mount_setattr is unavailable or refused)".into()
            }
        }
    }

    /// Mount points strictly under `host` (canonical), parents first.
    pub(crate) fn under(&self, host: &Path) -> Vec<PathBuf> {
        let Self::Remount { mount_points } = self else {
            return Vec::new();
        };
        let host = std::fs::canonicalize(host).unwrap_or_else(|_| host.to_owned());
        let mut under: Vec<PathBuf> = mount_points
            .iter()
            .filter(|p| p.starts_with(&host) && **p != host)
            .cloned()
            .collect();
        under.sort_by_key(|p| p.components().count());
        under.dedup();
        under
    }
}

/// Present (the kernel checks the flags and sizes first: a zero size is `EINVAL`) rather than
/// missing (`ENOSYS`) or refused by a seccomp profile (`EPERM`).
fn mount_setattr_available() -> bool {
    // SAFETY: no pointer is dereferenced: the kernel rejects the zero size first.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            std::ptr::null::<libc::c_char>(),
            0u32,
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
}

/// Every mount point in a `mountinfo` text, except unbindable ones (a recursive bind does not
/// copy those, so there is nothing to remount).
pub(crate) fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, _) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let point = fields.get(4)?;
            if fields.iter().skip(6).any(|f| *f == "unbindable") {
                return None;
            }
            Some(PathBuf::from(unescape(point)))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\NNN` (octal).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')));
        match octal.and_then(|n| u8::try_from(n).ok()) {
            Some(decoded) => {
                out.push(decoded);
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The flags a read-only remount of a bind of `path` must keep: inside a user namespace the
/// kernel refuses to clear flags that the original mount has (they are "locked").
pub(crate) fn locked_mount_flags(path: &Path) -> Result<u64, IsolationError> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path and `stat` is a plain out-parameter.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return Err(IsolationError::Config(format!(
            "{}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    let f = stat.f_flag;
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    for (st, ms) in [
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st != 0 {
            flags |= ms;
        }
    }
    Ok(flags)
}

/// Files of the sandbox's `/proc` that describe the host: `/dev/null` is bound over each.
pub(crate) const MASKED_FILES: &[&str] = &[
    "/proc/cmdline",
    "/proc/config.gz",
    "/proc/sys/kernel/random/boot_id",
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/interrupts",
];
/// Directories of the sandbox's `/proc` hidden under an empty read-only tmpfs.
pub(crate) const MASKED_DIRS: &[&str] = &["/proc/acpi", "/proc/asound", "/proc/scsi"];
/// Parts of `/proc` that change kernel state when written: bound read-only. (`/proc/sys` is
/// the sandbox namespace's own where the kernel keeps it per namespace, and the program's uid
/// owns none of it; read-only is the second wall.)
pub(crate) const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// Flags of the sandbox's `/proc` mount, kept by its read-only binds.
pub(crate) const PROC_FLAGS: u64 = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
/// Options of the tmpfs over a masked directory (mounted read-only: it stays empty).
pub(crate) const MASK_DIR_OPTIONS: &str = "size=4k,mode=0555";

/// `/proc` paths as C strings, for the child.
fn proc_paths(paths: &[&str]) -> Result<Vec<CString>, IsolationError> {
    paths.iter().map(cstring).collect()
}

/// Hide what the fresh `/proc` tells about the host (see [`super::mounts`]): read-only binds
/// first, then the masks, some of which lie under them. Entries this kernel lacks are skipped.
pub(crate) fn proc_steps() -> Result<Vec<Step>, IsolationError> {
    let mut steps = Vec::new();
    let optional = |step| Step::Optional(Box::new(step));
    for path in proc_paths(READ_ONLY)? {
        steps.push(optional(Step::BindPath {
            source: path.clone(),
            target: path.clone(),
        }));
        steps.push(optional(Step::Remount {
            target: path,
            flags: PROC_FLAGS,
        }));
    }
    for target in proc_paths(MASKED_FILES)? {
        steps.push(optional(Step::BindPath {
            source: cstring("/dev/null")?,
            target,
        }));
    }
    for target in proc_paths(MASKED_DIRS)? {
        steps.push(optional(Step::Tmpfs {
            target,
            options: cstring(MASK_DIR_OPTIONS)?,
            flags: libc::MS_RDONLY | PROC_FLAGS,
        }));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_come_from_mountinfo() {
        let table = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                     30 22 0:26 / /usr/local\\040stuff rw shared:2 - tmpfs tmpfs rw\n\
                     31 22 0:27 / /usr/lib/hidden rw unbindable - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_points(table),
            vec![PathBuf::from("/"), PathBuf::from("/usr/local stuff")]
        );
        let mode = RecursiveReadOnly::Remount {
            mount_points: vec![
                PathBuf::from("/usr/a/b"),
                PathBuf::from("/usr"),
                PathBuf::from("/usr/a"),
                PathBuf::from("/usrx"),
            ],
        };
        assert_eq!(
            mode.under(Path::new("/usr")),
            vec![PathBuf::from("/usr/a"), PathBuf::from("/usr/a/b")],
            "strictly under, parents first, not a sibling sharing the prefix"
        );
        assert!(
            RecursiveReadOnly::MountSetattr
                .under(Path::new("/usr"))
                .is_empty()
        );
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("a\\040b\\134c\\011"), "a b\\c\t");
        assert_eq!(unescape("plain\\x"), "plain\\x");
    }
}
