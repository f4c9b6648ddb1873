//! The audit log: one JSON line per security-relevant event (a tool call, an execution, a
//! package request, an approval, a failed authentication, a policy denial), written by every
//! service to a file or stdout.
//!
//! A record never holds a call's arguments, only their SHA-256 ([`digest`]): an auditor can
//! tell whether two calls carried the same arguments, but the log leaks no secrets.
//!
//! Writing never happens on the caller's task: [`Audit::record`] puts the record on a bounded
//! queue read by one plain thread that does blocking writes, so a slow disk neither stalls a
//! call nor blocks the async runtime. A full queue drops the record and counts it. With
//! `--audit-fail-closed`, [`Audit::record`] reports a failing log (last write failed, or queue
//! full) so that the caller can refuse the call rather than act without a trace.

//!
//! Layout: `record` (what a line holds), `settings` (where lines go), `writer` (the
//! thread that writes them, with rotation).

mod record;
mod settings;
mod writer;

pub use record::{Record, digest};
pub use settings::{AuditArgs, AuditSettings, Sink};

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    time::{Duration, Instant},
};

use crate::Error;
use record::CAPACITY;
use writer::{Every, FileOut, Gate, Out, Writer};

/// [`Audit::record`] refused: with fail-closed set, the log is not being written.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written: {0}")]
pub struct AuditUnavailable(pub String);

/// The audit log writer. Cheap to clone; its thread ends once every clone is dropped, after
/// writing what was queued.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    inner: Option<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    queue: SyncSender<Message>,
    shared: Arc<Shared>,
}

/// What callers and the writer thread both see. The writer holds no sender, so that dropping
/// the last [`Audit`] closes the queue and ends it.
#[derive(Debug, Default)]
struct Shared {
    fail_closed: bool,
    /// The last write failed; cleared by the next one that succeeds.
    failing: AtomicBool,
    last_error: Mutex<String>,
    dropped: AtomicU64,
    failed_writes: AtomicU64,
}

#[derive(Debug)]
enum Message {
    /// Boxed so that the queue's preallocated slots stay small.
    Record(Box<Record>),
    /// Answered once everything queued before it is written.
    Flush(SyncSender<()>),
}

impl Audit {
    /// Writes nothing.
    pub fn off() -> Self {
        Self::default()
    }

    /// Starts the writer thread for `settings` (off when they name no sink).
    pub fn start(settings: &AuditSettings) -> Result<Self, Error> {
        Self::spawn(settings, CAPACITY, None)
    }

    /// [`Audit::start`] with a chosen queue capacity and, for tests, a gate that holds the
    /// writer back.
    fn spawn(
        settings: &AuditSettings,
        capacity: usize,
        gate: Option<Arc<Gate>>,
    ) -> Result<Self, Error> {
        let Some(sink) = &settings.sink else {
            return Ok(Self::off());
        };
        let out = match sink {
            Sink::Stdout => Out::Stdout,
            Sink::File {
                path,
                max_bytes,
                keep,
            } => {
                let mut out = FileOut {
                    path: path.clone(),
                    max_bytes: *max_bytes,
                    keep: *keep,
                    file: None,
                    size: 0,
                    rotate_errors: Every::default(),
                };
                out.opened().map_err(|e| {
                    Error::Config(format!("audit log {}: cannot open: {e}", path.display()))
                })?;
                Out::File(out)
            }
        };
        let shared = Arc::new(Shared {
            fail_closed: settings.fail_closed,
            ..Shared::default()
        });
        let (queue, receiver) = mpsc::sync_channel(capacity);
        let writer = Writer {
            out,
            shared: shared.clone(),
            gate,
            write_errors: Every::default(),
            drops: Every::default(),
            dropped_seen: 0,
        };
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| Error::Config(format!("audit log: cannot start its writer: {e}")))?;
        tracing::info!(?sink, fail_closed = settings.fail_closed, "audit log on");
        Ok(Self {
            inner: Some(Inner { queue, shared }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `record`. Err only with fail-closed set while the log is failing (its last write
    /// failed, or the queue is full): the caller then refuses the call. The record is still
    /// queued when there is room, so that the first write that succeeds clears the failure.
    pub fn record(&self, record: Record) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let shared = &inner.shared;
        // Read before queueing, so that the answer is about the writes before this record and
        // not a race with the writer over this one.
        let failing = (shared.fail_closed && shared.failing.load(Ordering::Acquire))
            .then(|| lock(&shared.last_error).clone());
        if let Err(e) = inner.queue.try_send(Message::Record(Box::new(record))) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            if shared.fail_closed {
                return Err(AuditUnavailable(match e {
                    TrySendError::Full(_) => "its queue is full".into(),
                    TrySendError::Disconnected(_) => "its writer has stopped".into(),
                }));
            }
        }
        match failing {
            Some(error) => Err(AuditUnavailable(format!("the last write failed: {error}"))),
            None => Ok(()),
        }
    }

    /// Whether a call may go ahead: `Err` only when fail-closed is set and the last write
    /// failed, so the call would leave no trace.
    pub fn available(&self) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let shared = &inner.shared;
        if shared.fail_closed && shared.failing.load(Ordering::Acquire) {
            return Err(AuditUnavailable(format!(
                "the last write failed: {}",
                lock(&shared.last_error)
            )));
        }
        Ok(())
    }

    /// Records lost to a full queue (or to a writer thread that is gone).
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.shared.dropped.load(Ordering::Relaxed))
    }

    pub fn failed_writes(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.shared.failed_writes.load(Ordering::Relaxed))
    }

    /// Waits, at most `timeout`, until everything queued so far is written (or failed to be);
    /// false on timeout. For tests and shutdown.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        let (ack, done) = mpsc::sync_channel(1);
        let mut message = Message::Flush(ack);
        // A full queue has no blocking send with a deadline: retry until there is room.
        loop {
            match inner.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}
/// A panic elsewhere leaves the data consistent (plain values): carry on.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
