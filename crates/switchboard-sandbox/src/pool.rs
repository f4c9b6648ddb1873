//! The pool of pre-started interpreters.
//!
//! A cold isolated start costs 10-17 ms; a pre-started worker answers `print('hello')` in about
//! a millisecond. So the pool keeps `size` workers started and idle. Each serves exactly one
//! program and is destroyed; a replacement is requested only after the program's result is
//! back (starting an interpreter while a program runs would take CPU from it), and at once
//! when an idle worker dies on its own.
//!
//! Workers are started by a few dedicated threads (the spawners): a sandbox's parent-death
//! signal fires when the thread that cloned it exits, and runtime threads come and go. Most of
//! a start is the kernel waiting (namespace set-up and the old root's detach wait for RCU grace
//! periods, several milliseconds on a busy machine), so starts overlap on [`SPAWNERS`] threads;
//! each only clones and waits for the child's set-up report, and the interpreter's own start-up
//! is awaited on the runtime. Failed starts
//! are retried with a growing delay, and `/ready` shows the last error.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    isolation::{Isolation, SpawnError, Spawned, WorkerCgroup},
    worker::Worker,
};

/// Threads that start sandboxes in parallel. Starts mostly wait for the kernel, so more
/// threads than cores pay off; more than this only adds contention on 2 cores.
const SPAWNERS: usize = 4;
/// How long an interpreter may take from exec to ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest delay between retries of a failing start.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

enum Command {
    Spawn(u64),
    Stop,
}

type SpawnResult = (u64, Result<(Spawned, WorkerCgroup), SpawnError>);

struct Idle {
    worker: Worker,
    _sentry: DropGuard,
}

#[derive(Default)]
struct State {
    idle: VecDeque<Idle>,
    starting: usize,
    next_id: u64,
    started: u64,
    failures: u64,
    consecutive_failures: u32,
    last_error: Option<String>,
    /// The first failure's hint, for refusing to start.
    last_hint: Option<&'static str>,
    stopped: bool,
}

/// Pool metrics.
#[derive(Clone, Default)]
pub(crate) struct PoolMetrics {
    pub idle: Gauge,
    pub spawned: Counter,
    pub spawn_failures: Counter,
    pub idle_deaths: Counter,
}

struct Inner {
    size: usize,
    /// Joined at shutdown, so our cgroups are gone when the service has stopped.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    state: Mutex<State>,
    available: Notify,
    spawner: std::sync::Mutex<std::sync::mpsc::Sender<Command>>,
    metrics: PoolMetrics,
    shutdown: CancellationToken,
}

/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

/// Why no worker could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TakeError {
    #[error("the sandbox is shutting down")]
    Stopped,
    #[error("cannot start sandboxed interpreters: {message}")]
    Failing {
        message: String,
        hint: Option<&'static str>,
    },
}

impl Pool {
    /// Start the spawner threads and fill the pool. Must run inside the runtime.
    pub(crate) fn start(
        isolation: Isolation,
        size: usize,
        metrics: PoolMetrics,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let (commands, receiver) = std::sync::mpsc::channel();
        let (results, mut spawned) = mpsc::unbounded_channel::<SpawnResult>();
        let isolation = Arc::new(isolation);
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        let mut threads = Vec::new();
        for n in 0..SPAWNERS {
            let (isolation, receiver, results) =
                (isolation.clone(), receiver.clone(), results.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sandbox-spawner-{n}"))
                    .spawn(move || spawner(&isolation, &receiver, &results))?,
            );
        }
        drop(results);
        let pool = Pool {
            inner: Arc::new(Inner {
                size,
                threads: Mutex::new(threads),
                state: Mutex::new(State::default()),
                available: Notify::new(),
                spawner: std::sync::Mutex::new(commands),
                metrics,
                shutdown,
            }),
        };
        let manager = pool.clone();
        tokio::spawn(async move {
            while let Some((id, result)) = spawned.recv().await {
                let pool = manager.clone();
                tokio::spawn(async move { pool.started(id, result).await });
            }
        });
        let stopper = pool.clone();
        tokio::spawn(async move {
            stopper.inner.shutdown.cancelled().await;
            stopper.stop();
        });
        pool.replenish();
        Ok(pool)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.inner.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Request starts until idle + starting reaches the pool size.
    pub(crate) fn replenish(&self) {
        let mut ids = Vec::new();
        {
            let mut state = self.state();
            if state.stopped {
                return;
            }
            while state.idle.len() + state.starting < self.inner.size {
                state.starting += 1;
                state.next_id += 1;
                ids.push(state.next_id);
            }
        }
        if ids.is_empty() {
            return;
        }
        let sender = match self.inner.spawner.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        for id in ids {
            if sender.send(Command::Spawn(id)).is_err() {
                self.state().starting -= 1;
            }
        }
    }

    /// A start finished (on the spawner thread); wait for the interpreter, then make it idle.
    async fn started(&self, id: u64, result: Result<(Spawned, WorkerCgroup), SpawnError>) {
        let outcome = match result {
            Ok((spawned, cgroup)) => match Worker::new(id, spawned, cgroup) {
                Ok(mut worker) => match worker.ready(READY_TIMEOUT).await {
                    Ok(()) => Ok(worker),
                    Err(message) => {
                        tokio::task::spawn_blocking(move || drop(worker));
                        Err((message, None))
                    }
                },
                Err(error) => Err((format!("registering the worker's pipes: {error}"), None)),
            },
            Err(error) => Err((error.to_string(), error.hint())),
        };
        match outcome {
            Ok(worker) => {
                let token = CancellationToken::new();
                let exit = worker.exit_handle();
                let sentry = token.clone();
                let pool = self.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = sentry.cancelled() => {}
                        _ = exit.readable() => pool.idle_died(id),
                    }
                });
                let mut state = self.state();
                state.starting -= 1;
                state.started += 1;
                state.consecutive_failures = 0;
                if state.stopped {
                    drop(state);
                    tokio::task::spawn_blocking(move || worker.destroy());
                    return;
                }
                state.idle.push_back(Idle {
                    worker,
                    _sentry: token.drop_guard(),
                });
                self.inner.metrics.idle.set(state.idle.len() as i64);
                self.inner.metrics.spawned.inc();
                drop(state);
                self.inner.available.notify_one();
            }
            Err((message, hint)) => {
                tracing::error!(worker = id, error = %message, "starting a sandboxed interpreter failed");
                self.inner.metrics.spawn_failures.inc();
                let delay = {
                    let mut state = self.state();
                    state.starting -= 1;
                    state.failures += 1;
                    state.consecutive_failures += 1;
                    state.last_error = Some(message);
                    state.last_hint = hint;
                    let exp = state.consecutive_failures.min(8);
                    Duration::from_millis(20 << exp).min(MAX_BACKOFF)
                };
                // Wake anyone waiting for the first worker, so start-up can report the error.
                self.inner.available.notify_waiters();
                tokio::select! {
                    () = tokio::time::sleep(delay) => self.replenish(),
                    () = self.inner.shutdown.cancelled() => {}
                }
            }
        }
    }

    fn idle_died(&self, id: u64) {
        let dead = {
            let mut state = self.state();
            let position = state.idle.iter().position(|i| i.worker.id == id);
            let dead = position.and_then(|p| state.idle.remove(p));
            self.inner.metrics.idle.set(state.idle.len() as i64);
            dead
        };
        if let Some(dead) = dead {
            tracing::warn!(
                worker = id,
                "an idle sandboxed interpreter died; replacing it"
            );
            self.inner.metrics.idle_deaths.inc();
            tokio::task::spawn_blocking(move || dead.worker.destroy());
            self.replenish();
        }
    }

    /// The next idle worker, waiting for one if needed. With `fail_fast`, a start failure
    /// while no worker is idle is returned instead of waiting for a retry.
    pub(crate) async fn take(&self, fail_fast: bool) -> Result<Worker, TakeError> {
        loop {
            let notified = self.inner.available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut dead = Vec::new();
            let taken = {
                let mut state = self.state();
                if state.stopped {
                    return Err(TakeError::Stopped);
                }
                let mut found = None;
                while let Some(idle) = state.idle.pop_front() {
                    if idle.worker.is_dead() {
                        dead.push(idle.worker);
                    } else {
                        found = Some(idle.worker);
                        break;
                    }
                }
                self.inner.metrics.idle.set(state.idle.len() as i64);
                if found.is_none()
                    && fail_fast
                    && state.consecutive_failures > 0
                    && let Some(message) = state.last_error.clone()
                {
                    return Err(TakeError::Failing {
                        message,
                        hint: state.last_hint,
                    });
                }
                found
            };
            if !dead.is_empty() {
                self.inner.metrics.idle_deaths.inc_by(dead.len() as u64);
                tokio::task::spawn_blocking(move || {
                    dead.into_iter().for_each(|w| drop(w.destroy()))
                });
                self.replenish();
            }
            if let Some(worker) = taken {
                return Ok(worker);
            }
            tokio::select! {
                () = notified => {}
                () = self.inner.shutdown.cancelled() => return Err(TakeError::Stopped),
            }
        }
    }

    /// Stop starting workers and destroy the idle ones.
    fn stop(&self) {
        let idle: Vec<Idle> = {
            let mut state = self.state();
            state.stopped = true;
            state.idle.drain(..).collect()
        };
        self.inner.metrics.idle.set(0);
        for idle in idle {
            drop(idle.worker.destroy());
        }
        if let Ok(sender) = self.inner.spawner.lock() {
            for _ in 0..SPAWNERS {
                let _ = sender.send(Command::Stop);
            }
        }
        self.inner.available.notify_waiters();
    }

    /// Stop (if not yet), and wait for the spawner threads to finish; the last one to finish
    /// removes our cgroups.
    pub(crate) async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.stop();
        let threads = match self.inner.threads.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }

    /// Whether programs can run: a worker is idle or the last start succeeded.
    pub(crate) fn status(&self) -> (bool, serde_json::Value) {
        let state = self.state();
        let ready = !state.stopped && (!state.idle.is_empty() || state.consecutive_failures == 0);
        (
            ready,
            json!({
                "size": self.inner.size,
                "idle": state.idle.len(),
                "starting": state.starting,
                "started_total": state.started,
                "failed_starts_total": state.failures,
                "last_error": state.last_error,
            }),
        )
    }
}

/// A spawner thread: clone sandboxes on request until told to stop (or the pool is gone).
fn spawner(
    isolation: &Isolation,
    commands: &std::sync::Mutex<std::sync::mpsc::Receiver<Command>>,
    results: &mpsc::UnboundedSender<SpawnResult>,
) {
    loop {
        let command = match commands.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(Command::Spawn(id)) = command else {
            return;
        };
        let result = isolation.spawn(id);
        if let Err(unsent) = results.send((id, result)) {
            // The runtime is gone: nobody will run or reap this one.
            if let (_, Ok((spawned, mut cgroup))) = unsent.0 {
                // SAFETY: our own unreaped child.
                unsafe {
                    libc::kill(spawned.pid, libc::SIGKILL);
                    libc::waitpid(spawned.pid, std::ptr::null_mut(), libc::__WALL);
                }
                cgroup.remove();
            }
            return;
        }
    }
    // The last thread to drop its `Arc<Isolation>` removes our cgroups.
}
