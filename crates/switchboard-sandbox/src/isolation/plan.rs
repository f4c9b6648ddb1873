//! What a sandbox's first process does between `clone` and `execve`, computed once at start-up.
//!
//! The child of `clone` may not allocate (see [`super::child`]), so everything it needs — every
//! path as a C string, the file contents it writes, the seccomp programs, the Landlock masks —
//! is prepared here, in the service, and only read there.

use std::{
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use seccompiler::BpfProgram;

use super::mounts::{self, RecursiveReadOnly, proc_steps};
use super::{IsolationError, SANDBOX_GID, SANDBOX_UID, user_limits::UserLimit};

/// Where the new root is assembled in the child's private mount namespace before `pivot_root`.
/// Mounting over it hides nothing outside that namespace; every bind source is opened before.
pub(crate) const STAGING: &str = "/tmp";
/// The working directory of every program (a private tmpfs).
pub(crate) const WORKDIR: &str = "/work";
/// Where the managed site-packages appear, read-only.
pub(crate) const PACKAGES_MOUNT: &str = "/packages";
/// Most bind sources, argv entries and Landlock rules the child handles (fixed-size arrays on
/// its stack).
pub(crate) const MAX_SOURCES: usize = 24;
pub(crate) const MAX_ARGS: usize = 15;
pub(crate) const MAX_RLIMITS: usize = 12;

/// A path opened with `O_PATH` before credentials drop, then bind-mounted through
/// `/proc/self/fd/N`, so that the source may lie under a directory the sandbox user cannot
/// search and under `/tmp`, which the staging tmpfs covers.
pub(crate) struct Source {
    pub path: CString,
    pub directory: bool,
}

/// One step of assembling the root, in order. Targets of [`Plan::steps`] are absolute paths
/// under [`STAGING`]; those of [`Plan::proc_steps`] are paths in the new root.
pub(crate) enum Step {
    Mkdir {
        path: CString,
        mode: u32,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// An empty regular file to bind a device node onto.
    Touch {
        path: CString,
    },
    /// Bind `sources[source]` with the mounts under it (`MS_REC`).
    Bind {
        source: usize,
        target: CString,
    },
    /// Bind a path of the tree being built (no submounts): onto itself to remount it, or
    /// `/dev/null` over a file to mask it. (The sources opened before `pivot_root` lie in the
    /// detached old root by then, which the kernel refuses as a bind source.)
    BindPath {
        source: CString,
        target: CString,
    },
    /// Remount one bind read-only with `flags`, which keep the flags the kernel locks on the
    /// source mount (atime, nosuid, nodev, noexec).
    Remount {
        target: CString,
        flags: u64,
    },
    /// `mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)`: the mount at `target` and every mount
    /// under it read-only.
    ReadOnlyTree {
        target: CString,
    },
    Tmpfs {
        target: CString,
        options: CString,
        flags: u64,
    },
    WriteFile {
        path: CString,
        contents: Vec<u8>,
    },
    Proc {
        target: CString,
    },
    /// A step skipped when its path is missing or out of the sandbox user's reach (`ENOENT`,
    /// `EACCES`): a `/proc` entry this kernel lacks, a host mount gone since start-up or under
    /// a directory the sandbox's uid cannot search (so no program can reach it either).
    Optional(Box<Step>),
}

/// Landlock for the child: masks from the `landlock` crate for the kernel's ABI, and the
/// rules, as paths inside the new root.
pub(crate) struct LandlockPlan {
    pub abi: i32,
    pub handled_fs: u64,
    pub handled_net: u64,
    pub scoped: u64,
    pub rules: Vec<(CString, u64)>,
}

/// Everything the child needs.
pub(crate) struct Plan {
    pub hostname: CString,
    pub staging: CString,
    pub staging_options: CString,
    pub workdir: CString,
    pub sources: Vec<Source>,
    pub steps: Vec<Step>,
    /// Hardening of the new `/proc`, once the new root is entered and the namespace's own
    /// limits are written into `/proc/sys` (which then becomes read-only).
    pub proc_steps: Vec<Step>,
    /// Root path only: drop the supplementary groups the service runs with.
    pub drop_groups: bool,
    pub rlimits: Vec<(u32, u64, u64)>,
    /// Written once the new root and its `/proc` are in place (see [`super::user_limits`]).
    pub user_limits: Vec<UserLimit>,
    pub landlock: Option<LandlockPlan>,
    pub seccomp: Vec<BpfProgram>,
    pub python: CString,
    pub argv: Vec<CString>,
}

/// Inputs of [`Plan::build`].
pub(crate) struct RootLayout<'a> {
    pub python: &'a Path,
    pub python_args: &'a [String],
    pub ro_paths: &'a [PathBuf],
    pub packages_dir: Option<&'a Path>,
    pub scratch_bytes: u64,
    /// Programs may execute files in the scratch tmpfs (`/work`, `/tmp`, `/dev/shm`).
    pub exec_scratch: bool,
    pub read_only: &'a RecursiveReadOnly,
    pub drop_groups: bool,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub user_limits: Vec<UserLimit>,
    pub landlock: Option<LandlockPlan>,
    pub seccomp: Vec<BpfProgram>,
}

pub(crate) fn cstring(value: impl AsRef<OsStr>) -> Result<CString, IsolationError> {
    CString::new(value.as_ref().as_bytes()).map_err(|_| {
        IsolationError::Config(format!(
            "{}: contains a NUL byte",
            value.as_ref().to_string_lossy()
        ))
    })
}

fn staged(path: impl AsRef<Path>) -> Result<CString, IsolationError> {
    let path = path.as_ref();
    let relative = path.strip_prefix("/").unwrap_or(path);
    cstring(Path::new(STAGING).join(relative))
}

/// Top-level entries of a usr-merged or classic layout that programs expect at `/`.
const TOP_LEVEL: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// Device nodes bound into `/dev`.
pub(crate) const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

const PASSWD: &str = "sandbox:x:1000:1000:sandbox:/work:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "sandbox:x:1000:\nnogroup:x:65534:\n";

impl Plan {
    pub(crate) fn build(layout: RootLayout<'_>) -> Result<Self, IsolationError> {
        let mut b = Builder {
            read_only: layout.read_only,
            sources: Vec::new(),
            steps: Vec::new(),
            made: Vec::new(),
        };
        let scratch = layout.scratch_bytes;
        // Nothing written there needs executing: the interpreter and extension modules come
        // from /usr and /packages; a dropped binary or shared object does not run.
        let scratch_flags = libc::MS_NOSUID
            | libc::MS_NODEV
            | if layout.exec_scratch {
                0
            } else {
                libc::MS_NOEXEC
            };
        // Directories first: the staging root is writable only until the final remount.
        b.bind_ro(Path::new("/usr"), Path::new("/usr"))?;
        for name in TOP_LEVEL {
            let host = Path::new("/").join(name);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = std::fs::read_link(&host)
                        .map_err(|e| IsolationError::Config(format!("{}: {e}", host.display())))?;
                    b.steps.push(Step::Symlink {
                        target: cstring(&target)?,
                        link: staged(&host)?,
                    });
                }
                Ok(meta) if meta.is_dir() => b.bind_ro(&host, &host)?,
                _ => {}
            }
        }
        for path in layout.ro_paths {
            b.bind_ro(path, path)?;
        }
        if let Some(dir) = layout.packages_dir {
            b.bind_ro(dir, Path::new(PACKAGES_MOUNT))?;
        }
        let uid_gid = format!("uid={SANDBOX_UID},gid={SANDBOX_GID}");
        b.tmpfs(
            WORKDIR,
            &format!("size={scratch},mode=0700,{uid_gid}"),
            scratch_flags,
        )?;
        b.tmpfs("/tmp", &format!("size={scratch},mode=1777"), scratch_flags)?;
        b.mkdir("/dev", 0o755)?;
        for device in DEVICES {
            let host = Path::new("/dev").join(device);
            let source = b.source(&host, false)?;
            let target = staged(&host)?;
            b.steps.push(Step::Touch {
                path: target.clone(),
            });
            b.steps.push(Step::Bind { source, target });
        }
        b.tmpfs(
            "/dev/shm",
            &format!("size={scratch},mode=1777"),
            scratch_flags,
        )?;
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            b.steps.push(Step::Symlink {
                target: cstring(target)?,
                link: staged(Path::new("/dev").join(link))?,
            });
        }
        b.mkdir("/etc", 0o755)?;
        for (name, contents) in [("passwd", PASSWD), ("group", GROUP)] {
            b.steps.push(Step::WriteFile {
                path: staged(Path::new("/etc").join(name))?,
                contents: contents.as_bytes().to_vec(),
            });
        }
        b.mkdir("/proc", 0o555)?;
        b.steps.push(Step::Proc {
            target: staged("/proc")?,
        });
        let proc_steps = proc_steps()?;

        if b.sources.len() > MAX_SOURCES {
            return Err(IsolationError::Config(format!(
                "too many read-only paths: at most {MAX_SOURCES} bind sources are supported"
            )));
        }
        let mut argv = vec![cstring(layout.python)?];
        for arg in layout.python_args {
            argv.push(cstring(arg)?);
        }
        if argv.len() > MAX_ARGS || layout.rlimits.len() > MAX_RLIMITS {
            return Err(IsolationError::Config(
                "too many interpreter arguments".into(),
            ));
        }
        if let Some(landlock) = &layout.landlock
            && landlock.rules.len() > MAX_SOURCES
        {
            return Err(IsolationError::Config("too many Landlock rules".into()));
        }
        Ok(Self {
            hostname: cstring("sandbox")?,
            staging: cstring(STAGING)?,
            staging_options: cstring("size=1m,mode=0755")?,
            workdir: cstring(WORKDIR)?,
            sources: b.sources,
            steps: b.steps,
            proc_steps,
            drop_groups: layout.drop_groups,
            rlimits: layout.rlimits,
            user_limits: layout.user_limits,
            landlock: layout.landlock,
            seccomp: layout.seccomp,
            python: cstring(layout.python)?,
            argv,
        })
    }
}

struct Builder<'a> {
    read_only: &'a RecursiveReadOnly,
    sources: Vec<Source>,
    steps: Vec<Step>,
    made: Vec<PathBuf>,
}

impl Builder<'_> {
    fn source(&mut self, path: &Path, directory: bool) -> Result<usize, IsolationError> {
        self.sources.push(Source {
            path: cstring(path)?,
            directory,
        });
        Ok(self.sources.len() - 1)
    }

    /// `mkdir -p` inside the staging root, once per directory.
    fn mkdir(&mut self, inside: impl AsRef<Path>, mode: u32) -> Result<(), IsolationError> {
        let inside = inside.as_ref();
        let mut current = PathBuf::from("/");
        for part in inside.components().skip(1) {
            current.push(part);
            if !self.made.contains(&current) {
                self.made.push(current.clone());
                self.steps.push(Step::Mkdir {
                    path: staged(&current)?,
                    mode,
                });
            }
        }
        Ok(())
    }

    /// Bind `host` at `inside` with everything mounted under it, all of it read-only.
    fn bind_ro(&mut self, host: &Path, inside: &Path) -> Result<(), IsolationError> {
        let meta = std::fs::metadata(host).map_err(|e| {
            IsolationError::Config(format!("read-only path {}: {e}", host.display()))
        })?;
        if !meta.is_dir() {
            return Err(IsolationError::Config(format!(
                "read-only path {}: not a directory",
                host.display()
            )));
        }
        let flags = mounts::locked_mount_flags(host)?;
        let source = self.source(host, true)?;
        self.mkdir(inside, 0o755)?;
        let target = staged(inside)?;
        self.steps.push(Step::Bind {
            source,
            target: target.clone(),
        });
        if *self.read_only == RecursiveReadOnly::MountSetattr {
            self.steps.push(Step::ReadOnlyTree { target });
            return Ok(());
        }
        self.steps.push(Step::Remount { target, flags });
        let real = std::fs::canonicalize(host).unwrap_or_else(|_| host.to_owned());
        for point in self.read_only.under(host) {
            let Ok(relative) = point.strip_prefix(&real) else {
                continue;
            };
            // A mount point the service cannot even stat is out of the sandbox's reach too.
            let Ok(flags) = mounts::locked_mount_flags(&point) else {
                continue;
            };
            self.steps.push(Step::Optional(Box::new(Step::Remount {
                target: staged(inside.join(relative))?,
                flags,
            })));
        }
        Ok(())
    }

    fn tmpfs(&mut self, inside: &str, options: &str, flags: u64) -> Result<(), IsolationError> {
        self.mkdir(inside, 0o755)?;
        self.steps.push(Step::Tmpfs {
            target: staged(inside)?,
            options: cstring(options)?,
            flags,
        });
        Ok(())
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
