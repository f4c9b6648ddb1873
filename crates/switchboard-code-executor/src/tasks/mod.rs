//! Task-augmented calls: MCP 2025-11-25 "tasks" for `execute_code` and `install_package`.
//!
//! A `tools/call` with a `task` param is answered at once with a task (`working`); the call
//! runs in the background through the same [`crate::Sandboxes`] path a plain call takes and
//! ends `completed` (its `CallToolResult`), `failed` (a result with `isError`, as the spec
//! says for tool calls) or `cancelled`.
//!
//! - **Queue.** At most `max_tasks` tasks live (running or waiting) at once; over it the call
//!   is refused with a JSON-RPC error (-32000) saying "queue full, retry after N s", N estimated
//!   from the durations of recent tasks and how long the running ones have run. At most
//!   `max_running` run at once; the others wait their turn in arrival order.
//! - **Whose.** A task belongs to the authenticated caller that created it (method and
//!   subject, e.g. `["api_key","gateway"]`), or, when authentication is off, to the MCP
//!   session that created it; narrowed to the user the caller names, if it names one
//!   (`io.switchboard/on-behalf-of`). Every `tasks/*` request is answered only for the
//!   caller's own tasks; another's look unknown (-32602).
//! - **Kept.** Each task is a file in the state directory (`store`), written when it is
//!   created and when it ends (before its end is visible); a result is read back from there.
//!   A task is deleted `ttl` after its creation, or, if it was still running then, `ttl` after
//!   it ended. After a restart the tasks are loaded again; one that was `working` is `failed`,
//!   with a result saying the service restarted while it ran (the program's outcome unknown).
//! - **Cancel.** `tasks/cancel` drops the request to the sandbox (or the task's place in the
//!   queue). The sandbox kills a program whose client went away (and what it started), so
//!   the interpreter is free again at once. An install is not detached there: the sandbox
//!   drops it (killing pip) when it notices the closed connection, so how far it got is
//!   unknown here (the sandbox's `GET /packages` says).
//! - **Told.** When a task ends, `notifications/tasks/status` goes to the session that created
//!   it, if it is still connected (its standalone SSE stream).

mod ending;
mod metrics;
mod store;
mod view;
pub mod wire;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData, RoleServer,
    model::{CallToolResult, ContentBlock},
    service::Peer,
};
use serde_json::Value;
use switchboard_runtime::Metrics;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use self::{
    metrics::TaskMetrics,
    store::{Store, Stored},
    wire::{Status, Task},
};
use crate::config::TaskSettings;

/// The work of one task: the tool's result, as a plain call would give it.
pub type Job = BoxFuture<'static, CallToolResult>;

/// How often expired tasks are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The duration assumed for a task before any has ended (the sandbox's default time limit).
const FIRST_GUESS: Duration = Duration::from_secs(10);
/// Durations kept for the estimate.
const RECENT: usize = 32;

/// Who a task belongs to: the authenticated caller, or the session when no one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller(pub String);

/// The tasks of this code-executor. Cheap to clone.
#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    settings: TaskSettings,
    store: Arc<Store>,
    state: Mutex<State>,
    running: Arc<Semaphore>,
    shutdown: CancellationToken,
    metrics: TaskMetrics,
}

#[derive(Default)]
struct State {
    tasks: HashMap<String, Entry>,
    /// How long the last tasks that ran to their end took.
    recent: VecDeque<Duration>,
}

struct Entry {
    /// Without its result (read from the file when asked for).
    stored: Stored,
    /// Until it ends: how to stop it and whom to tell.
    live: Option<Live>,
    /// `true` once it ended.
    done: watch::Sender<bool>,
    /// The result, when it could not be written to the file.
    unsaved: Option<Value>,
}

struct Live {
    cancel: CancellationToken,
    peer: Option<Peer<RoleServer>>,
    running_since: Option<Instant>,
    /// Its end is being written (by the runner or a cancel): there is no second one.
    ending: bool,
}

/// How a task ends.
enum Ending {
    Result(CallToolResult),
    Cancelled { ran: bool },
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// ISO 8601 (RFC 3339, UTC) for a Unix time in milliseconds.
pub(crate) fn iso(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64).map_or_else(|_| String::new(), |t| t.to_string())
}

fn lost() -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(
        "The code-executor restarted while this task ran: the program may have run, and its result is lost.",
    )])
}

/// The first line of a result's text, for `statusMessage`.
fn summary(result: &CallToolResult) -> Option<String> {
    let text = result.content.iter().find_map(|c| c.as_text())?;
    let line = text.text.lines().next()?.trim();
    Some(line.chars().take(200).collect())
}

impl Tasks {
    /// Whether this service offers tasks: a state directory it holds (its tools declare
    /// `execution.taskSupport` and `initialize` the capability only then).
    pub fn offered(&self) -> bool {
        self.inner.store.offered()
    }

    /// The tasks kept in the state directory (a `working` one becomes `failed`: the service
    /// restarted while it ran), and the sweeper of expired ones until `shutdown`.
    pub fn start(
        settings: &TaskSettings,
        metrics: &Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self, switchboard_runtime::Error> {
        let store = Arc::new(Store::new(settings.state_dir.clone()));
        let config_error = |e: std::io::Error| {
            switchboard_runtime::Error::Config(format!(
                "state_dir (--state-dir / CODE_EXECUTOR_STATE_DIR) {}: {e}",
                store
                    .path()
                    .map_or_else(String::new, |p| p.display().to_string())
            ))
        };
        let loaded = store.load().map_err(config_error)?;
        let now = now_ms();
        let mut state = State::default();
        for mut stored in loaded {
            if !stored.task.status.is_terminal() {
                let result = lost();
                stored.task.status = Status::Failed;
                stored.task.status_message = summary(&result);
                stored.task.last_updated_at = iso(now);
                stored.finished_ms = Some(now);
                stored.result = serde_json::to_value(&result).ok();
                store.write(&stored).map_err(config_error)?;
                tracing::warn!(task = %stored.task.task_id, "task was running when the service stopped: failed");
            }
            if view::expired(&stored, now) {
                let _ = store.remove(&stored.task.task_id);
                continue;
            }
            stored.result = None;
            let (done, _) = watch::channel(true);
            state.tasks.insert(
                stored.task.task_id.clone(),
                Entry {
                    stored,
                    live: None,
                    done,
                    unsaved: None,
                },
            );
        }
        if !state.tasks.is_empty() {
            tracing::info!(
                tasks = state.tasks.len(),
                "tasks loaded from the state directory"
            );
        }
        let tasks = Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                store,
                state: Mutex::new(state),
                running: Arc::new(Semaphore::new(settings.max_running)),
                shutdown,
                metrics: TaskMetrics::register(metrics),
            }),
        };
        let sweeper = tasks.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = sweeper.inner.shutdown.cancelled() => break,
                    () = tokio::time::sleep(SWEEP_EVERY) => sweeper.sweep().await,
                }
            }
        });
        Ok(tasks)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.inner.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Run `job` as a task of `caller` and return it (`working`). `ttl` is the call's
    /// `task.ttl`: `None` absent, `Some(None)` null (unlimited asked).
    pub async fn create(
        &self,
        caller: &Caller,
        tool: &str,
        ttl: Option<Option<f64>>,
        peer: Option<Peer<RoleServer>>,
        job: Job,
    ) -> Result<Task, ErrorData> {
        let settings = &self.inner.settings;
        let max_ttl = settings.max_ttl.as_millis() as u64;
        let ttl = match ttl {
            None => settings.default_ttl.as_millis() as u64,
            Some(None) => max_ttl,
            Some(Some(ms)) if ms.is_finite() && ms >= 0.0 => (ms as u64).clamp(1, max_ttl),
            Some(Some(_)) => {
                return Err(ErrorData::invalid_params(
                    "task.ttl must be a number of milliseconds, at least 0",
                    None,
                ));
            }
        };
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let cancel = CancellationToken::new();
        let stored = Stored {
            task: Task {
                task_id: id.clone(),
                status: Status::Working,
                status_message: Some("Waiting to run.".into()),
                created_at: iso(now),
                last_updated_at: iso(now),
                ttl: Some(ttl),
                poll_interval: Some(settings.poll_interval.as_millis() as u64),
            },
            owner: caller.0.clone(),
            tool: tool.to_owned(),
            created_ms: now,
            finished_ms: None,
            result: None,
        };
        {
            let mut state = self.state();
            let live = state.tasks.values().filter(|e| e.live.is_some()).count();
            if live >= settings.max_tasks {
                let wait = view::retry_after(&state);
                drop(state);
                self.inner.metrics.ended("refused");
                return Err(wire::queue_full(live, settings.max_tasks, wait));
            }
            let (done, _) = watch::channel(false);
            state.tasks.insert(
                id.clone(),
                Entry {
                    stored: stored.clone(),
                    live: Some(Live {
                        cancel: cancel.clone(),
                        peer,
                        running_since: None,
                        ending: false,
                    }),
                    done,
                    unsaved: None,
                },
            );
            self.inner.metrics.observe(&state);
        }
        if let Err(error) = self.save(stored.clone()).await {
            self.state().tasks.remove(&id);
            return Err(ErrorData::internal_error(
                format!("the task cannot be kept ({error}); nothing was run"),
                None,
            ));
        }
        tracing::info!(task = %id, tool, owner = %caller.0, ttl_ms = ttl, "task created");
        self.spawn_runner(id, job, cancel);
        Ok(stored.task)
    }

    /// Write `stored` on the blocking pool.
    async fn save(&self, stored: Stored) -> std::io::Result<()> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.write(&stored))
            .await
            .map_err(std::io::Error::other)?
    }

    fn spawn_runner(&self, id: String, job: Job, cancel: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            let shutdown = this.inner.shutdown.clone();
            // Stopped by a cancel or the service's shutdown: its end is written by the cancel,
            // or found by the next start (a task still `working` then).
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = shutdown.cancelled() => return,
                permit = this.inner.running.clone().acquire_owned() => permit,
            };
            let Ok(_permit) = permit else { return };
            this.started(&id);
            let start = Instant::now();
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = shutdown.cancelled() => return,
                result = job => result,
            };
            this.end(&id, result, start.elapsed()).await;
        });
    }

    fn started(&self, id: &str) {
        let mut state = self.state();
        if let Some(entry) = state.tasks.get_mut(id)
            && let Some(live) = entry.live.as_mut()
        {
            live.running_since = Some(Instant::now());
            entry.stored.task.status_message = Some("Running.".into());
            entry.stored.task.last_updated_at = iso(now_ms());
        }
        self.inner.metrics.observe(&state);
    }
}
