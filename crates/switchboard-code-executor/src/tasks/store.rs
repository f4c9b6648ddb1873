//! The tasks' files: one JSON document per task (`<task id>.json`) in the state directory.
//!
//! The directory is the service's own: created with mode 0700 at start, refused when it is a
//! symbolic link, not a directory, another uid's or writable by group or others, and tightened to
//! 0700 when merely readable by them. A file is replaced atomically: written to a new file with an
//! unpredictable name (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600), synced, renamed over the old one,
//! and the directory synced, so a reader, or the service after a crash, sees the old or the new
//! document. Only regular files of the service's uid with a single link are read. Every call here
//! blocks: the async side runs them on the blocking pool.
//!
//! One service per directory: the store makes the directory and takes an exclusive `flock` on
//! `<dir>/.lock` at start, so that whether tasks are offered is known before anyone asks. A
//! second code-executor given the same directory (two replicas on one volume) would otherwise,
//! at its start, mark the first one's running tasks failed. It waits up to [`LOCK_WAIT`] for
//! the lock (a restarting predecessor letting go), then serves without tasks: its tools declare
//! no `taskSupport`, every task request is refused with the reason, nothing in the directory is
//! touched, and the rest of the service works.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::{
        fd::AsRawFd,
        unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire::Task;

/// The largest task document read back (a result holds at most the sandbox's output limit).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// One task as kept on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub task: Task,
    /// Whose it is (see [`super::Caller`]).
    pub owner: String,
    pub tool: String,
    pub created_ms: u64,
    #[serde(default)]
    pub finished_ms: Option<u64>,
    /// The `CallToolResult`, once it ended with one (completed or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

pub(crate) struct Store {
    path: Option<PathBuf>,
    /// The directory's lock once it was created (or found), checked and locked.
    lock: Mutex<Lock>,
}

enum Lock {
    /// Not looked at yet.
    Unlocked,
    /// Ours while this file stays open.
    Held(#[allow(dead_code)] File),
    /// Another process holds it: why tasks are refused.
    Refused(String),
}

/// Longest a starting store waits for a directory another process holds (a predecessor
/// still letting go of it).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Take `<dir>/.lock` (`flock`, exclusive), trying until `wait` has passed.
fn lock(dir: &Path, wait: Duration) -> io::Result<Lock> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)?;
    let until = Instant::now() + wait;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Lock::Held(file));
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(error);
        }
        if Instant::now() >= until {
            return Ok(Lock::Refused(format!(
                "tasks are unavailable: the state directory {} is used by another code-executor (it holds {}); give each its own state directory (--state-dir / CODE_EXECUTOR_STATE_DIR)",
                dir.display(),
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn euid() -> u32 {
    // SAFETY: plain getter.
    unsafe { libc::geteuid() }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

/// `<id>.json` for a task id we generated (a UUID): never a path of the caller's choosing.
fn file_name(id: &str) -> io::Result<String> {
    uuid::Uuid::parse_str(id)
        .map(|_| format!("{id}.json"))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a task id"))
}

/// Make the state directory (mode 0700) and its parents, unless it exists.
fn make(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Check (and with `create`, make) the state directory; `false` when it does not exist.
fn prepare(path: &Path, create: bool) -> io::Result<bool> {
    let shown = path.display();
    if create {
        make(path)?;
    }
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Err(refused(format!(
            "{shown} is a symbolic link; name the real directory"
        )));
    }
    if !meta.is_dir() {
        return Err(refused(format!("{shown} is not a directory")));
    }
    if meta.uid() != euid() {
        return Err(refused(format!(
            "{shown} belongs to uid {}, not to the service's uid {}; give the service a directory of its own",
            meta.uid(),
            euid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refused(format!(
            "{shown} is writable by other users (mode {mode:o}); `chmod 700` it"
        )));
    }
    if mode & 0o777 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    Ok(true)
}

/// The bytes of `path` if it is a regular file of ours with one link, `None` if absent.
fn read_trusted(path: &Path) -> io::Result<Option<Vec<u8>>> {
    // O_NONBLOCK: a FIFO planted under that name must not block the open.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(format!("{} is a symbolic link", path.display())));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != euid() || meta.nlink() != 1 {
        return Err(refused(format!(
            "{} is not a regular file of the service's own",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(refused(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(Some(bytes))
}

impl Store {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            lock: Mutex::new(Lock::Unlocked),
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, Lock> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether tasks can be kept: a directory this service holds (or will make on first
    /// use), not one another process holds or that could not be made.
    pub fn offered(&self) -> bool {
        self.path.is_some() && !matches!(*self.lock_state(), Lock::Refused(_))
    }

    /// The directory, created and checked on first use.
    fn dir(&self) -> io::Result<&Path> {
        let path = self.path.as_deref().ok_or_else(|| {
            io::Error::other(
                "no state directory (not root, and no $HOME or $XDG_STATE_HOME): set --state-dir / CODE_EXECUTOR_STATE_DIR",
            )
        })?;
        let mut state = self.lock_state();
        if let Lock::Unlocked = *state {
            prepare(path, true)?;
            *state = lock(path, Duration::ZERO)?;
        }
        match &*state {
            Lock::Refused(why) => Err(refused(why.clone())),
            _ => Ok(path),
        }
    }

    /// The tasks kept in the directory, made and locked here (at start, so that whether this
    /// service offers tasks is known before anyone asks); unreadable or foreign files are
    /// skipped with a warning, leftover temporary files removed. A directory that cannot be
    /// made leaves the service without tasks, saying why; one that is unsafe (a link, another
    /// uid's, writable by others) is an error.
    pub fn load(&self) -> io::Result<Vec<Stored>> {
        let Some(path) = self.path.as_deref() else {
            return Ok(Vec::new());
        };
        if let Err(error) = make(path) {
            let why = format!(
                "tasks are unavailable: the state directory {} cannot be made ({error}); set --state-dir / CODE_EXECUTOR_STATE_DIR",
                path.display()
            );
            tracing::error!("{why}");
            *self.lock_state() = Lock::Refused(why);
            return Ok(Vec::new());
        }
        prepare(path, false)?;
        let taken = lock(path, LOCK_WAIT)?;
        if let Lock::Refused(why) = &taken {
            tracing::error!("{why}");
            *self.lock_state() = taken;
            return Ok(Vec::new());
        }
        *self.lock_state() = taken;
        let mut tasks = Vec::new();
        for entry in fs::read_dir(path)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(path.join(name));
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if uuid::Uuid::parse_str(id).is_err() {
                continue;
            }
            let parsed = read_trusted(&path.join(name)).and_then(|bytes| {
                bytes
                    .map(|b| serde_json::from_slice::<Stored>(&b).map_err(io::Error::other))
                    .transpose()
            });
            match parsed {
                Ok(Some(stored)) if stored.task.task_id == id => tasks.push(stored),
                Ok(Some(_)) => {
                    tracing::warn!(file = %path.join(name).display(), "task file names another task; skipped")
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(file = %path.join(name).display(), %error, "task file unreadable; skipped")
                }
            }
        }
        Ok(tasks)
    }

    /// Replace the task's document atomically.
    pub fn write(&self, stored: &Stored) -> io::Result<()> {
        let dir = self.dir()?;
        let name = file_name(&stored.task.task_id)?;
        let bytes = serde_json::to_vec(stored).map_err(io::Error::other)?;
        let temporary = dir.join(format!(
            ".{}.{}.tmp",
            stored.task.task_id,
            uuid::Uuid::new_v4().simple()
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temporary)?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&temporary, dir.join(name)));
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written?;
        // The rename itself reaches the disk.
        File::open(dir)?.sync_all()
    }

    /// The task's document, `None` when there is none.
    pub fn read(&self, id: &str) -> io::Result<Option<Stored>> {
        let dir = self.dir()?;
        read_trusted(&dir.join(file_name(id)?))?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(io::Error::other))
            .transpose()
    }

    /// Remove the task's document (gone already is fine).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        let dir = self.dir()?;
        match fs::remove_file(dir.join(file_name(id)?)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::wire::Status;

    fn stored(id: &str) -> Stored {
        Stored {
            task: Task {
                task_id: id.into(),
                status: Status::Working,
                status_message: None,
                created_at: "2025-11-25T10:30:00Z".into(),
                last_updated_at: "2025-11-25T10:30:00Z".into(),
                ttl: Some(1000),
                poll_interval: None,
            },
            owner: "session:x".into(),
            tool: "execute_code".into(),
            created_ms: 1,
            finished_ms: None,
            result: None,
        }
    }

    #[test]
    fn created_private_at_first_write_and_read_back() {
        let base = tempfile::tempdir().expect("tempdir");
        let path = base.path().join("state");
        let store = Store::new(Some(path.clone()));
        assert!(store.load().expect("nothing yet").is_empty());
        assert!(store.offered());
        let id = uuid::Uuid::new_v4().to_string();
        store.write(&stored(&id)).expect("written");
        let mode = fs::metadata(&path).expect("exists").mode() & 0o777;
        assert_eq!(mode, 0o700);
        let file_mode = fs::metadata(path.join(format!("{id}.json")))
            .expect("file")
            .mode()
            & 0o777;
        assert_eq!(file_mode, 0o600);
        assert_eq!(
            store.read(&id).expect("read").expect("there").task.task_id,
            id
        );
        drop(store); // Lets go of the directory's lock.
        let store = Store::new(Some(path.clone()));
        assert_eq!(store.load().expect("loads").len(), 1);
        store.remove(&id).expect("removed");
        assert!(store.read(&id).expect("read").is_none());
        assert!(store.read("../etc/passwd").is_err(), "only task ids");
    }

    /// Two stores on one directory: the second gets no tasks (it neither loads nor writes
    /// any, and says why); once the first lets go, a new one loads what the first wrote.
    #[test]
    fn one_service_per_directory() {
        let base = tempfile::tempdir().expect("tempdir");
        let path = base.path().join("state");
        let first = Store::new(Some(path.clone()));
        let id = uuid::Uuid::new_v4().to_string();
        first.write(&stored(&id)).expect("written");

        assert!(matches!(
            lock(&path, Duration::from_millis(100)).expect("tried"),
            Lock::Refused(_)
        ));
        let second = Store::new(Some(path.clone()));
        assert!(second.offered(), "not known before it looks");
        let error = second
            .write(&stored(&uuid::Uuid::new_v4().to_string()))
            .expect_err("the directory is the first store's");
        assert!(
            error.to_string().contains("used by another code-executor"),
            "{error}"
        );
        assert!(second.read(&id).is_err(), "nor does it read");
        assert!(!second.offered());

        drop(first);
        let third = Store::new(Some(path));
        assert_eq!(third.load().expect("loads").len(), 1);
    }

    #[test]
    fn refuses_a_directory_others_may_write_and_links() {
        let base = tempfile::tempdir().expect("tempdir");
        let open = base.path().join("open");
        fs::create_dir(&open).expect("dir");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
        let error = Store::new(Some(open)).load().expect_err("world-writable");
        assert!(error.to_string().contains("chmod 700"), "{error}");
        let real = base.path().join("real");
        fs::create_dir(&real).expect("dir");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("link");
        let error = Store::new(Some(link)).load().expect_err("a link");
        assert!(error.to_string().contains("symbolic link"), "{error}");
    }
}
