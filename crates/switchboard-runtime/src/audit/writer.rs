//! The writer thread: appends lines, rotates files, counts and reports trouble.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, PoisonError, atomic::Ordering, mpsc::Receiver},
    time::Instant,
};

use super::{Message, Record, Shared, lock, record::LOG_EVERY};

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) out: Out,
    pub(super) shared: Arc<Shared>,
    pub(super) gate: Option<Arc<Gate>>,
    pub(super) write_errors: Every,
    pub(super) drops: Every,
    pub(super) dropped_seen: u64,
}

impl Writer {
    /// Until every sender is gone; what was queued before is still written.
    pub(super) fn run(mut self, queue: Receiver<Message>) {
        while let Ok(message) = queue.recv() {
            if let Some(gate) = &self.gate {
                gate.pass();
            }
            match message {
                Message::Record(record) => self.write(&record),
                // The flusher may have given up waiting; nobody to tell then.
                Message::Flush(ack) => drop(ack.try_send(())),
            }
            self.report_drops();
        }
    }

    fn write(&mut self, record: &Record) {
        let result = serde_json::to_vec(record)
            .map_err(io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                self.out.write_line(&line)
            });
        match result {
            Ok(()) => {
                if self.shared.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!("the audit log is being written again");
                }
            }
            Err(e) => {
                let failed = self.shared.failed_writes.fetch_add(1, Ordering::Relaxed) + 1;
                *lock(&self.shared.last_error) = e.to_string();
                self.shared.failing.store(true, Ordering::Release);
                if self.write_errors.ready() {
                    tracing::error!(error = %e, failed_writes = failed, "cannot write the audit log: records are being lost");
                }
            }
        }
    }

    /// Drops happen on callers' threads; they are reported from here to keep callers cheap.
    fn report_drops(&mut self) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped > self.dropped_seen && self.drops.ready() {
            tracing::error!(dropped, "the audit queue was full: records were dropped");
            self.dropped_seen = dropped;
        }
    }
}

pub(super) enum Out {
    Stdout,
    File(FileOut),
}

impl Out {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Self::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(line)?;
                stdout.flush()
            }
            Self::File(file) => file.write_line(line),
        }
    }
}

pub(super) struct FileOut {
    pub(super) path: PathBuf,
    pub(super) max_bytes: u64,
    pub(super) keep: usize,
    /// None after a failure or a rotation: reopened by the next write, so that the log
    /// recovers once the disk or directory does.
    pub(super) file: Option<File>,
    pub(super) size: u64,
    pub(super) rotate_errors: Every,
}

impl FileOut {
    /// One `write` per record on an append-mode file (unbuffered), so that lines stay whole.
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        self.opened()?;
        // A record larger than the limit still goes, alone, into a fresh file.
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.file = None;
            if let Err(e) = rotate(&self.path, self.keep)
                && self.rotate_errors.ready()
            {
                // Appending past the limit beats losing the record.
                tracing::error!(error = %e, path = %self.path.display(), "cannot rotate the audit log; appending to it");
            }
        }
        let file = self.opened()?;
        if let Err(e) = file.write_all(line) {
            self.file = None;
            return Err(e);
        }
        self.size += len;
        Ok(())
    }

    pub(super) fn opened(&mut self) -> io::Result<&mut File> {
        match &mut self.file {
            Some(file) => Ok(file),
            slot @ None => {
                let file = open_append(&self.path)?;
                self.size = file.metadata()?.len();
                Ok(slot.insert(file))
            }
        }
    }
}

pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `path.<keep-1>` -> `path.<keep>`, ..., `path` -> `path.1`; gaps are fine.
pub(super) fn rotate(path: &Path, keep: usize) -> io::Result<()> {
    let missing_ok = |result: io::Result<()>| match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if keep == 0 {
        return missing_ok(std::fs::remove_file(path));
    }
    for n in (1..keep).rev() {
        missing_ok(std::fs::rename(numbered(path, n), numbered(path, n + 1)))?;
    }
    missing_ok(std::fs::rename(path, numbered(path, 1)))
}

pub(super) fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    name.into()
}

/// Rate limit for the writer's error logs (the counters carry the totals): whether to log now.
#[derive(Default)]
pub(super) struct Every(Option<Instant>);

impl Every {
    fn ready(&mut self) -> bool {
        let ready = self.0.is_none_or(|last| last.elapsed() >= LOG_EVERY);
        if ready {
            self.0 = Some(Instant::now());
        }
        ready
    }
}

/// Holds the writer before each message while closed: lets tests fill the queue.
#[derive(Default)]
pub(super) struct Gate {
    pub(super) closed: Mutex<bool>,
    pub(super) changed: Condvar,
}

impl Gate {
    pub(super) fn pass(&self) {
        let mut closed = lock(&self.closed);
        while *closed {
            closed = self
                .changed
                .wait(closed)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    #[cfg(test)]
    pub(super) fn set_closed(&self, closed: bool) {
        *lock(&self.closed) = closed;
        self.changed.notify_all();
    }
}
