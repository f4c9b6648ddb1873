//! The service's own files, in a directory no other uid can write.
//!
//! The managed packages directory belongs to pip's uid (65534) when the service runs as root.
//! The service used to keep the requests held for approval there, written by name through a
//! predictable temporary name, following symbolic links and truncating, so any process of that
//! uid could plant a link and make root overwrite any file on the host with that JSON
//! (`tests/state.rs` does it against the old code). Now every file the service itself writes
//! lives in a state directory (`--state-dir`, default `<packages_dir>.state`) that
//!
//! - is owned by the service's uid with mode 0700: created so, and refused when it is a
//!   symbolic link, not a directory, someone else's, or writable by group or others;
//! - has no ancestor through which another uid could swap it (each is root's or the service's,
//!   and writable by no other user — its group may be the service's own — unless sticky, like
//!   `/tmp`).
//!
//! Every access goes through a descriptor of that directory opened once (`O_NOFOLLOW`), so a
//! path changed afterwards changes nothing. Files are opened with `openat(O_NOFOLLOW)` and read
//! only when they are regular files of the service's uid with a single link; a replacement is
//! written to a new file with an unpredictable name (`O_CREAT|O_EXCL`, mode 0600), synced and
//! renamed over the old one (`renameat`), so a reader sees the old or the new contents.

use std::{
    ffi::CString,
    fs::File,
    io::{self, Read, Write},
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// The state directory, opened and checked.
#[derive(Debug)]
pub(crate) struct StateDir {
    path: PathBuf,
    dir: OwnedFd,
}

fn euid() -> u32 {
    // SAFETY: plain getter.
    unsafe { libc::geteuid() }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

/// A single file name (no `/`, no NUL) as a C string.
fn c_name(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{name}' is not a plain file name"),
        ));
    }
    CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// `openat(dir, name, flags, mode)`.
fn open_at(dir: BorrowedFd<'_>, name: &str, flags: libc::c_int, mode: u32) -> io::Result<File> {
    let name = c_name(name)?;
    // SAFETY: a NUL-terminated name relative to a directory descriptor that outlives the call.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) })?;
    // SAFETY: a descriptor just opened, owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `renameat(dir, from, dir, to)`: replaces `to` atomically, never follows a link.
pub(crate) fn rename_at(dir: BorrowedFd<'_>, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    let fd = dir.as_raw_fd();
    // SAFETY: NUL-terminated names relative to a directory descriptor we hold.
    check(unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) }).map(drop)
}

/// `unlinkat(dir, name)`: removes the name (a link itself, never its target).
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: a NUL-terminated name relative to a directory descriptor we hold.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
}

/// The contents of `name` in `dir`, `None` if there is no such file. Only a regular file of
/// the service's uid with a single link (so not a link to, or a hard link of, a file the
/// service did not write) of at most `max_bytes` is read; anything else is an error and is
/// not opened for reading beyond `fstat`.
pub(crate) fn read_trusted(
    dir: BorrowedFd<'_>,
    name: &str,
    max_bytes: u64,
) -> io::Result<Option<Vec<u8>>> {
    // O_NONBLOCK: a FIFO planted under that name must not block the open.
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let file = match open_at(dir, name, flags, 0) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused("a symbolic link".into()));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused("not a regular file".into()));
    }
    if meta.uid() != euid() {
        return Err(refused(format!(
            "owned by uid {}, not by the service's uid {}",
            meta.uid(),
            euid()
        )));
    }
    if meta.nlink() != 1 {
        return Err(refused(format!("{} hard links to it", meta.nlink())));
    }
    if meta.len() > max_bytes {
        return Err(refused(format!("larger than {max_bytes} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(refused(format!("larger than {max_bytes} bytes")));
    }
    Ok(Some(bytes))
}

impl StateDir {
    /// Create (mode 0700) or open the state directory at `path` and check it and its
    /// ancestors; the error says what is wrong and how to fix it.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        if !path.is_absolute() {
            return Err(format!("'{shown}' must be an absolute path"));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "cannot create {shown}: {e}; name a writable directory that persists across restarts (with a read-only root file system, one on a volume)"
                ));
            }
        }
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                // O_DIRECTORY|O_NOFOLLOW answers ENOTDIR for a link (ELOOP on some kernels).
                let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
                match e.raw_os_error() {
                    Some(libc::ELOOP | libc::ENOTDIR) if link => {
                        format!("{shown} is a symbolic link; name the real directory")
                    }
                    Some(libc::ENOTDIR) => format!("{shown} is not a directory"),
                    _ => format!("cannot open {shown}: {e}"),
                }
            })?;
        let meta = dir
            .metadata()
            .map_err(|e| format!("cannot inspect {shown}: {e}"))?;
        let uid = euid();
        if meta.uid() != uid {
            return Err(format!(
                "{shown} belongs to uid {}, not to the service's uid {uid}; give the service a directory of its own",
                meta.uid()
            ));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "{shown} is writable by other users (mode {mode:o}); `chmod 700` it"
            ));
        }
        if mode & 0o777 != 0o700 {
            // Ours and not writable by others: only readable by them. Tighten it.
            dir.set_permissions(std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make {shown} private (mode 700): {e}"))?;
        }
        // The directory actually opened, whatever links led to it.
        let real = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .or_else(|_| std::fs::canonicalize(path))
            .map_err(|e| format!("cannot resolve {shown}: {e}"))?;
        // SAFETY: plain getter.
        let gid = unsafe { libc::getegid() };
        for ancestor in real.ancestors().skip(1) {
            let meta = std::fs::metadata(ancestor)
                .map_err(|e| format!("cannot inspect {}: {e}", ancestor.display()))?;
            let mode = meta.mode() & 0o7777;
            // Sticky (like /tmp): others may add names but not rename or remove ours. A group
            // that is the service's own (a Kubernetes fsGroup volume) adds no other user.
            let sticky = mode & 0o1000 != 0;
            let group_writable = mode & 0o020 != 0 && meta.gid() != gid;
            let others_writable = mode & 0o002 != 0;
            if (meta.uid() != 0 && meta.uid() != uid)
                || ((group_writable || others_writable) && !sticky)
            {
                return Err(format!(
                    "{} (uid {}, gid {}, mode {mode:o}) lets another user replace {shown}; choose a state directory whose every parent belongs to root or the service's uid and is writable by no other user (or is sticky, like /tmp)",
                    ancestor.display(),
                    meta.uid(),
                    meta.gid()
                ));
            }
        }
        Ok(Self {
            path: real,
            dir: dir.into(),
        })
    }

    /// The directory (resolved).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where `name` lives, for messages.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The contents of `name`, as [`read_trusted`].
    pub(crate) fn read(&self, name: &str, max_bytes: u64) -> io::Result<Option<Vec<u8>>> {
        read_trusted(self.dir.as_fd(), name, max_bytes)
    }

    /// Replace `name` atomically with `bytes` (mode 0600).
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        c_name(name)?;
        let temporary = format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple());
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let mut file = open_at(self.dir.as_fd(), &temporary, flags | libc::O_CLOEXEC, 0o600)?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| rename_at(self.dir.as_fd(), &temporary, name));
        if written.is_err() {
            let _ = unlink_at(self.dir.as_fd(), &temporary);
        }
        written?;
        // The rename itself reaches the disk.
        // SAFETY: syncing a directory descriptor we hold.
        check(unsafe { libc::fsync(self.dir.as_raw_fd()) }).map(drop)
    }

    /// Rename `name` to `to` within the directory.
    pub(crate) fn rename(&self, name: &str, to: &str) -> io::Result<()> {
        rename_at(self.dir.as_fd(), name, to)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
