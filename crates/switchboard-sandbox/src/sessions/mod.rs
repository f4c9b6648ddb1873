//! Code-interpreter sessions: one pre-started interpreter, taken from the pool and kept for
//! one owner, that runs that owner's programs one after another in a persistent namespace.
//!
//! A session's interpreter was started exactly like a one-shot worker (same namespaces,
//! seccomp, Landlock, rlimits and cgroup), so its limits are the session's as a whole: memory
//! for everything it holds, `cpu_seconds` of CPU time over its whole life. It never serves
//! anybody else: the owner is checked on every request, and an ended session's interpreter is
//! killed, never returned to the pool.
//!
//! Sessions end when closed, after their idle timeout, at their maximum lifetime, or when their
//! interpreter dies (memory limit, CPU budget, a program that would not stop). An ended
//! session leaves a tombstone for a while, so the next call says why instead of "unknown".

mod requests;

pub(crate) use requests::SessionRun;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
use switchboard_protocol::sandbox::{CreateSessionRequest, SessionInfo};
use switchboard_runtime::Metrics;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Limits, SessionSettings},
    error::ExecuteError,
    pool::Pool,
    worker::{SessionEnd, Worker},
};

/// Tombstones kept (the oldest go first).
const MAX_TOMBSTONES: usize = 1024;
/// How long a tombstone says why its session ended.
const TOMBSTONE_TTL: Duration = Duration::from_secs(3600);

/// One open session.
struct Entry {
    id: String,
    owner: String,
    created_unix_ms: u64,
    expires: Instant,
    expires_unix_ms: u64,
    idle_timeout: Duration,
    /// (when, unix ms) of the last call.
    last_used: Mutex<(Instant, u64)>,
    executions: std::sync::atomic::AtomicU64,
    /// `None` once ended. Held across a request: one request at a time per session.
    interpreter: tokio::sync::Mutex<Option<Worker>>,
}

struct Ended {
    owner: String,
    why: String,
    at: Instant,
}

#[derive(Default)]
struct Table {
    open: HashMap<String, Arc<Entry>>,
    ended: HashMap<String, Ended>,
    order: VecDeque<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct EndLabel {
    reason: &'static str,
}

struct Inner {
    pool: Pool,
    settings: SessionSettings,
    limits: Limits,
    /// Longest a request waits for the session's interpreter (busy with another request).
    queue_timeout: Duration,
    table: Mutex<Table>,
    open: Gauge,
    memory: Gauge,
    ended: Family<EndLabel, Counter>,
}

/// The sessions of one sandbox. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Sessions {
    inner: Arc<Inner>,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Sessions {
    /// The registry, its metrics, and the task that ends idle and expired sessions.
    pub(crate) fn start(
        pool: Pool,
        settings: SessionSettings,
        limits: Limits,
        queue_timeout: Duration,
        metrics: &Metrics,
        shutdown: CancellationToken,
    ) -> Self {
        let inner = Arc::new(Inner {
            pool,
            settings,
            limits,
            queue_timeout,
            table: Mutex::new(Table::default()),
            open: Gauge::default(),
            memory: Gauge::default(),
            ended: Family::default(),
        });
        metrics.register(
            "sandbox_sessions_open",
            "Code-interpreter sessions open now",
            inner.open.clone(),
        );
        metrics.register(
            "sandbox_sessions_memory_bytes",
            "Memory all open sessions use, as their cgroups measured it at the last sweep",
            inner.memory.clone(),
        );
        metrics.register(
            "sandbox_sessions_ended",
            "Sessions ended, by reason: closed, idle, lifetime, memory, cpu, overran, exited, broken, shutdown",
            inner.ended.clone(),
        );
        let sessions = Self { inner };
        let sweeper = sessions.clone();
        tokio::spawn(async move {
            // Often enough that an idle session outlives its timeout by at most a second.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => sweeper.sweep().await,
                    () = shutdown.cancelled() => break,
                }
            }
            sweeper
                .end_all("shutdown", "the sandbox is shutting down.")
                .await;
        });
        sessions
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        match self.inner.table.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Start a session for `owner`.
    pub(crate) async fn create(
        &self,
        owner: &str,
        request: &CreateSessionRequest,
    ) -> Result<SessionInfo, ExecuteError> {
        let settings = &self.inner.settings;
        if settings.max_sessions == 0 {
            return Err(ExecuteError::NoSession(
                "sessions are turned off on this sandbox (max_sessions = 0)".into(),
            ));
        }
        let idle_timeout = match request.idle_timeout_seconds {
            Some(0) => {
                return Err(ExecuteError::BadRequest(
                    "idle_timeout_seconds must be greater than 0".into(),
                ));
            }
            Some(s) => Duration::from_secs(s).min(settings.idle_timeout),
            None => settings.idle_timeout,
        };
        self.check_room(owner)?;
        let mut worker = self
            .inner
            .pool
            .take(false)
            .await
            .map_err(|e| ExecuteError::Unavailable(e.to_string()))?;
        // The pool starts a replacement; the session keeps this one.
        self.inner.pool.replenish();
        if let Err(end) = worker.begin_session().await {
            tokio::task::spawn_blocking(move || drop(worker));
            return Err(ExecuteError::Unavailable(format!(
                "the session could not start: {}",
                self.why(&end)
            )));
        }
        let now = Instant::now();
        let now_ms = now_unix_ms();
        let max_lifetime = settings.max_lifetime;
        let entry = Arc::new(Entry {
            id: format!("s-{}", uuid::Uuid::new_v4().simple()),
            owner: owner.to_owned(),
            created_unix_ms: now_ms,
            expires: now + max_lifetime,
            expires_unix_ms: now_ms + max_lifetime.as_millis() as u64,
            idle_timeout,
            last_used: Mutex::new((now, now_ms)),
            executions: 0.into(),
            interpreter: tokio::sync::Mutex::new(Some(worker)),
        });
        // Checked again now that we hold an interpreter: two creates may have raced.
        if let Err(full) = self.check_room(owner) {
            let worker = entry.interpreter.lock().await.take();
            tokio::task::spawn_blocking(move || drop(worker));
            return Err(full);
        }
        self.table().open.insert(entry.id.clone(), entry.clone());
        self.inner.open.inc();
        tracing::info!(session = %entry.id, owner, "session started");
        Ok(self.info(&entry, None))
    }

    fn check_room(&self, owner: &str) -> Result<(), ExecuteError> {
        let settings = &self.inner.settings;
        let table = self.table();
        let mine = table.open.values().filter(|e| e.owner == owner).count();
        if mine >= settings.max_per_caller {
            return Err(ExecuteError::TooMany(format!(
                "you have {mine} sessions open, the most one caller may have; close one (close_session) first"
            )));
        }
        if table.open.len() >= settings.max_sessions {
            return Err(ExecuteError::Busy(format!(
                "the sandbox has {} sessions open, its maximum; try again later or run without a session",
                table.open.len()
            )));
        }
        Ok(())
    }

    /// The open session `id` if `owner` owns it; else why not (unknown, or ended and why).
    fn find(&self, owner: &str, id: &str) -> Result<Arc<Entry>, ExecuteError> {
        let table = self.table();
        if let Some(entry) = table.open.get(id).filter(|e| e.owner == owner) {
            return Ok(entry.clone());
        }
        match table.ended.get(id).filter(|e| e.owner == owner) {
            Some(ended) => Err(ExecuteError::SessionEnded(format!(
                "session {id} has ended: {}",
                ended.why
            ))),
            // Someone else's session is as unknown as one that never existed.
            None => Err(ExecuteError::NoSession(format!(
                "no session {id}: it does not exist or is not yours"
            ))),
        }
    }

    fn info(&self, entry: &Entry, memory: Option<u64>) -> SessionInfo {
        let last = match entry.last_used.lock() {
            Ok(l) => l.1,
            Err(p) => p.into_inner().1,
        };
        SessionInfo {
            session_id: entry.id.clone(),
            created_unix_ms: entry.created_unix_ms,
            last_used_unix_ms: last,
            idle_timeout_seconds: entry.idle_timeout.as_secs(),
            expires_unix_ms: entry.expires_unix_ms,
            executions: entry.executions.load(std::sync::atomic::Ordering::Relaxed),
            memory_bytes: memory,
            memory_limit_bytes: Some(self.inner.limits.memory_bytes),
        }
    }

    /// One session of `owner`, with its memory now.
    pub(crate) async fn get(&self, owner: &str, id: &str) -> Result<SessionInfo, ExecuteError> {
        let entry = self.find(owner, id)?;
        let memory = match entry.interpreter.try_lock() {
            Ok(worker) => worker.as_ref().and_then(Worker::memory),
            Err(_) => None, // busy running a program: not worth waiting for
        };
        Ok(self.info(&entry, memory))
    }

    /// The open sessions of `owner`.
    pub(crate) fn list(&self, owner: &str) -> Vec<SessionInfo> {
        let entries: Vec<Arc<Entry>> = self
            .table()
            .open
            .values()
            .filter(|e| e.owner == owner)
            .cloned()
            .collect();
        entries.iter().map(|e| self.info(e, None)).collect()
    }

    /// Close a session of `owner`: `Ok(false)` when it had ended already.
    pub(crate) async fn close(&self, owner: &str, id: &str) -> Result<bool, ExecuteError> {
        match self.find(owner, id) {
            Ok(entry) => {
                self.end(&entry, "closed", "it was closed.".into()).await;
                Ok(true)
            }
            Err(ExecuteError::SessionEnded(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// End a session: tombstone, kill its interpreter (off the runtime), count it.
    async fn end(&self, entry: &Entry, reason: &'static str, why: String) {
        {
            let mut table = self.table();
            if table.open.remove(&entry.id).is_none() {
                return; // ended already
            }
            self.inner.open.dec();
            table.ended.insert(
                entry.id.clone(),
                Ended {
                    owner: entry.owner.clone(),
                    why: why.clone(),
                    at: Instant::now(),
                },
            );
            table.order.push_back(entry.id.clone());
            while table.order.len() > MAX_TOMBSTONES {
                if let Some(old) = table.order.pop_front() {
                    table.ended.remove(&old);
                }
            }
        }
        self.inner.ended.get_or_create(&EndLabel { reason }).inc();
        tracing::info!(session = %entry.id, reason, why, "session ended");
        let worker = entry.interpreter.lock().await.take();
        tokio::task::spawn_blocking(move || drop(worker));
    }

    /// End idle and expired sessions; refresh the memory gauge; forget old tombstones.
    async fn sweep(&self) {
        let now = Instant::now();
        let entries: Vec<Arc<Entry>> = self.table().open.values().cloned().collect();
        let mut memory = 0u64;
        for entry in entries {
            if now >= entry.expires {
                let why = format!(
                    "it reached its maximum lifetime ({} s).",
                    self.inner.settings.max_lifetime.as_secs()
                );
                self.end(&entry, "lifetime", why).await;
                continue;
            }
            // A session running a program is in use, not idle.
            let Ok(worker) = entry.interpreter.try_lock() else {
                continue;
            };
            memory += worker.as_ref().and_then(Worker::memory).unwrap_or(0);
            drop(worker);
            let last = match entry.last_used.lock() {
                Ok(l) => l.0,
                Err(p) => p.into_inner().0,
            };
            if now.duration_since(last) >= entry.idle_timeout {
                let why = format!(
                    "it was idle for {} s, its idle timeout.",
                    entry.idle_timeout.as_secs()
                );
                self.end(&entry, "idle", why).await;
            }
        }
        self.inner.memory.set(memory as i64);
        let mut table = self.table();
        while let Some(old) = table.order.front().cloned() {
            match table.ended.get(&old) {
                Some(e) if now.duration_since(e.at) < TOMBSTONE_TTL => break,
                _ => {
                    table.ended.remove(&old);
                    table.order.pop_front();
                }
            }
        }
    }

    async fn end_all(&self, reason: &'static str, why: &str) {
        let entries: Vec<Arc<Entry>> = self.table().open.values().cloned().collect();
        for entry in entries {
            self.end(&entry, reason, why.to_owned()).await;
        }
    }

    /// What `/ready` shows.
    pub(crate) fn describe(&self) -> serde_json::Value {
        let settings = &self.inner.settings;
        serde_json::json!({
            "open": self.table().open.len(),
            "max": settings.max_sessions,
            "max_per_caller": settings.max_per_caller,
            "idle_timeout_seconds": settings.idle_timeout.as_secs(),
            "max_lifetime_seconds": settings.max_lifetime.as_secs(),
            "memory_bytes": self.inner.memory.get(),
        })
    }

    /// A sentence on why an interpreter is gone, with the limit that ended it.
    fn why(&self, end: &SessionEnd) -> String {
        let limits = &self.inner.limits;
        match end {
            SessionEnd::Overran => "a program ran past its time limit and did not stop when interrupted, so its interpreter was killed.".into(),
            SessionEnd::OutOfMemory => format!(
                "it exceeded its memory limit ({} MiB for the whole session).",
                limits.memory_bytes >> 20
            ),
            SessionEnd::CpuBudget => format!(
                "it used up its CPU-time budget ({} s over the session's life).",
                limits.cpu_seconds
            ),
            SessionEnd::Exited(what) | SessionEnd::Broken(what) => format!("{what}."),
        }
    }
}

fn end_reason(end: &SessionEnd) -> &'static str {
    match end {
        SessionEnd::Overran => "overran",
        SessionEnd::OutOfMemory => "memory",
        SessionEnd::CpuBudget => "cpu",
        SessionEnd::Exited(_) => "exited",
        SessionEnd::Broken(_) => "broken",
    }
}
