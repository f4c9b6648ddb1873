//! A settings file that is reread when it changes: API keys, the access policy. Looked at, at
//! most once a second, by whoever reads it (a `stat` on the request path costs ~1 µs; no
//! watcher thread or inotify instance per file); a version that does not load keeps the
//! previous one and says why in the log, so a half-saved edit never locks everyone out.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

/// How often the file is looked at for changes, at most.
pub const RECHECK: Duration = Duration::from_secs(1);

/// What the file said when last loaded, and how to tell it changed.
struct State<T> {
    value: Arc<T>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

/// The contents of `path` as `load` reads them, reloaded on change.
pub struct Watched<T> {
    path: PathBuf,
    what: &'static str,
    load: fn(&Path) -> Result<T, String>,
    state: Mutex<State<T>>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").field("path", &self.path).finish()
    }
}

impl<T> Watched<T> {
    /// Load `path` now; `what` names it in logs ("API keys", "policy").
    pub fn load(
        path: &Path,
        what: &'static str,
        load: fn(&Path) -> Result<T, String>,
    ) -> Result<Self, String> {
        let value = load(path)?;
        Ok(Self {
            path: path.to_owned(),
            what,
            load,
            state: Mutex::new(State {
                value: Arc::new(value),
                stamp: stamp(path),
                checked: Instant::now(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents now, after rereading the file if it changed since the last look.
    pub fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = stamp(&self.path);
            if now != state.stamp {
                state.stamp = now;
                match (self.load)(&self.path) {
                    Ok(value) => {
                        tracing::info!(file = %self.path.display(), "{} reloaded", self.what);
                        state.value = Arc::new(value);
                    }
                    Err(error) => tracing::warn!(
                        %error,
                        "{} file changed but cannot be used; keeping the previous version",
                        self.what
                    ),
                }
            }
        }
        state.value.clone()
    }

    /// Look at the file on the next [`Watched::current`], whenever the last look was (tests).
    #[doc(hidden)]
    pub fn look_again(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.checked = Instant::now().checked_sub(RECHECK).unwrap_or(state.checked);
    }
}

/// Modification time and length: what changes when the file is edited or replaced.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
