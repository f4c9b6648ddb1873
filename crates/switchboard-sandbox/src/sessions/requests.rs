//! What a session does: run a program, write, list and read files in its `/work`. Each takes
//! the session's interpreter for itself (one request at a time) and turns its answer, which
//! comes from the sandboxed process and is untrusted, into a checked result.

use std::{sync::Arc, time::Duration};

use base64::Engine;
use serde::Deserialize;
use switchboard_protocol::sandbox::{
    ExecutionResult, FileList, SessionFile, mime_type_for, validate_file_name,
};

use super::{Entry, Sessions, end_reason};
use crate::{
    error::ExecuteError,
    worker::{InputFiles, OutputLimits, SessionEnd, SessionReply},
};

/// Longest a file request may take (they are small; a stuck one means a broken session).
const FILE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most files a listing names.
const MAX_LISTED: usize = 1000;

/// One program for a session.
pub(crate) struct SessionRun {
    pub code: String,
    pub stdin: Option<String>,
    pub files: InputFiles,
    pub timeout: Duration,
    pub max_output_bytes: usize,
    pub outputs: OutputLimits,
}

#[derive(Deserialize)]
struct ExecReply {
    status: i32,
    interrupted: bool,
    stdout: String,
    stderr: String,
    truncated: bool,
    #[serde(default)]
    outputs: Vec<crate::worker::Produced>,
}

#[derive(Deserialize)]
struct Failure {
    error: String,
    message: String,
}

impl Sessions {
    /// Run `run` in session `id` of `owner`. A session that ends doing so answers a result
    /// with `session_ended` (the caller learns why, and that the state is gone).
    pub(crate) async fn execute(
        &self,
        owner: &str,
        id: &str,
        run: SessionRun,
    ) -> Result<ExecutionResult, ExecuteError> {
        let request = serde_json::json!({
            "op": "exec",
            "code": run.code,
            "stdin": run.stdin,
            "files": run.files.value(),
            "max_output": run.max_output_bytes,
            "max_files": run.outputs.max_files,
            "max_bytes": run.outputs.max_bytes,
        });
        // JSON may escape every byte of both streams into six (\u0000).
        let cap = run.max_output_bytes * 12 + run.outputs.read_cap();
        let entry = self.find(owner, id)?;
        match self.ask(&entry, &request, run.timeout, cap).await? {
            Ok(reply) => {
                let meta = reply_meta(&reply);
                let parsed: ExecReply = serde_json::from_value(reply.value).map_err(|e| {
                    ExecuteError::Lost(format!("the session's answer was malformed: {e}"))
                })?;
                entry
                    .executions
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(result_of(parsed, &meta))
            }
            Err(why) => Ok(ended_result(why.0, why.1)),
        }
    }

    /// Write `bytes` to `name` under the session's `/work`.
    pub(crate) async fn put(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<SessionFile, ExecuteError> {
        validate_file_name(name).map_err(ExecuteError::BadRequest)?;
        let limit = self.inner.limits.max_file_bytes;
        if bytes.len() as u64 > limit {
            return Err(ExecuteError::TooLarge(format!(
                "'{name}' is {} bytes; a file may have at most {limit}",
                bytes.len()
            )));
        }
        let request = serde_json::json!({
            "op": "put",
            "name": name,
            "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        });
        let value = self.file_request(owner, id, &request, 4096).await?;
        let size = value.get("size").and_then(serde_json::Value::as_u64);
        Ok(SessionFile {
            name: name.to_owned(),
            size: size.unwrap_or(bytes.len() as u64),
        })
    }

    /// The files in the session's `/work`.
    pub(crate) async fn files(&self, owner: &str, id: &str) -> Result<FileList, ExecuteError> {
        let request = serde_json::json!({"op": "list", "max": MAX_LISTED});
        let value = self
            .file_request(owner, id, &request, MAX_LISTED * 1200 + 1024)
            .await?;
        #[derive(Deserialize)]
        struct Listing {
            files: Vec<(String, u64)>,
            truncated: bool,
        }
        let listing: Listing = serde_json::from_value(value)
            .map_err(|e| ExecuteError::Lost(format!("the session's listing was malformed: {e}")))?;
        Ok(FileList {
            session_id: id.to_owned(),
            files: listing
                .files
                .into_iter()
                .map(|(name, size)| SessionFile { name, size })
                .collect(),
            truncated: listing.truncated,
        })
    }

    /// Read `name` from the session's `/work`: its bytes and MIME type.
    pub(crate) async fn read(
        &self,
        owner: &str,
        id: &str,
        name: &str,
    ) -> Result<(Vec<u8>, &'static str), ExecuteError> {
        validate_file_name(name).map_err(ExecuteError::BadRequest)?;
        let limit = self.inner.limits.max_file_bytes;
        let request = serde_json::json!({"op": "get", "name": name, "max": limit});
        let cap = (limit as usize) / 3 * 4 + 4096;
        let value = self.file_request(owner, id, &request, cap).await?;
        let bytes = value
            .get("data")
            .and_then(serde_json::Value::as_str)
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .ok_or_else(|| ExecuteError::Lost("the session's file answer was malformed".into()))?;
        Ok((bytes, mime_type_for(name)))
    }

    /// A file request; the interpreter's refusals become errors the caller can act on.
    async fn file_request(
        &self,
        owner: &str,
        id: &str,
        request: &serde_json::Value,
        cap: usize,
    ) -> Result<serde_json::Value, ExecuteError> {
        let entry = self.find(owner, id)?;
        let reply = match self.ask(&entry, request, FILE_TIMEOUT, cap).await? {
            Ok(reply) => reply,
            Err((why, _)) => {
                return Err(ExecuteError::SessionEnded(format!(
                    "session {id} has ended: {why}"
                )));
            }
        };
        if let Ok(failure) = serde_json::from_value::<Failure>(reply.value.clone()) {
            return Err(match failure.error.as_str() {
                "not_found" => ExecuteError::NotFound(failure.message),
                "too_large" => ExecuteError::TooLarge(failure.message),
                _ => ExecuteError::BadRequest(failure.message),
            });
        }
        Ok(reply.value)
    }

    /// Send one request to the session's interpreter. `Ok(Err((why, end)))` when the session
    /// ended meanwhile (it is then tombstoned and its interpreter killed).
    ///
    /// It runs on its own task: a request dropped half-way (its caller went away) would leave
    /// the interpreter's answer unread, and the next request would read it as its own. So a
    /// session's program runs on to its own time limit when nobody waits for it.
    async fn ask(
        &self,
        entry: &Arc<Entry>,
        request: &serde_json::Value,
        timeout: Duration,
        cap: usize,
    ) -> Result<Result<SessionReply, (String, SessionEnd)>, ExecuteError> {
        let (this, entry, request) = (self.clone(), entry.clone(), request.clone());
        tokio::spawn(async move { this.ask_here(&entry, &request, timeout, cap).await })
            .await
            .map_err(|e| {
                ExecuteError::Lost(format!(
                    "the session's request may have run, and its answer was lost: {e}"
                ))
            })?
    }

    async fn ask_here(
        &self,
        entry: &Entry,
        request: &serde_json::Value,
        timeout: Duration,
        cap: usize,
    ) -> Result<Result<SessionReply, (String, SessionEnd)>, ExecuteError> {
        let queue = self.inner.queue_timeout;
        let mut guard = tokio::time::timeout(queue, entry.interpreter.lock())
            .await
            .map_err(|_| {
                ExecuteError::Busy(format!(
                    "session {} was busy with another request for {} s; try again when it is done",
                    entry.id,
                    queue.as_secs()
                ))
            })?;
        let Some(worker) = guard.as_mut() else {
            drop(guard);
            return Err(self
                .find(&entry.owner, &entry.id)
                .err()
                .unwrap_or_else(|| ExecuteError::SessionEnded("the session has ended".into())));
        };
        entry.touch();
        let answer = worker.request(request, timeout, cap).await;
        entry.touch();
        match answer {
            Ok(reply) => Ok(Ok(reply)),
            Err(end) => {
                let dead = guard.take();
                drop(guard);
                tokio::task::spawn_blocking(move || drop(dead));
                let why = self.why(&end);
                self.end(entry, end_reason(&end), why.clone()).await;
                Ok(Err((why, end)))
            }
        }
    }
}

impl Entry {
    fn touch(&self) {
        let now = (std::time::Instant::now(), super::now_unix_ms());
        match self.last_used.lock() {
            Ok(mut l) => *l = now,
            Err(p) => *p.into_inner() = now,
        }
    }
}

struct Meta {
    duration_ms: f64,
    interrupted: bool,
}

fn reply_meta(reply: &SessionReply) -> Meta {
    Meta {
        duration_ms: reply.elapsed.as_secs_f64() * 1000.0,
        interrupted: reply.interrupted,
    }
}

fn result_of(reply: ExecReply, meta: &Meta) -> ExecutionResult {
    let memory_exceeded = reply
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.starts_with("MemoryError"));
    let timed_out = meta.interrupted || reply.interrupted;
    let mut result = ExecutionResult {
        success: reply.status == 0 && !timed_out && !memory_exceeded,
        stdout: reply.stdout,
        stderr: reply.stderr,
        exit_code: Some(reply.status),
        signal: None,
        duration_ms: meta.duration_ms,
        timed_out,
        memory_exceeded,
        truncated: reply.truncated,
        images: Vec::new(),
        files: Vec::new(),
        session_ended: None,
    };
    crate::worker::add_outputs(&mut result, reply.outputs);
    result
}

/// The result of a run that ended its session.
fn ended_result(why: String, end: SessionEnd) -> ExecutionResult {
    ExecutionResult {
        stdout: String::new(),
        stderr: String::new(),
        exit_code: None,
        signal: matches!(end, SessionEnd::Overran | SessionEnd::OutOfMemory)
            .then(|| "SIGKILL".to_owned()),
        duration_ms: 0.0,
        timed_out: matches!(end, SessionEnd::Overran | SessionEnd::CpuBudget),
        memory_exceeded: end == SessionEnd::OutOfMemory,
        truncated: false,
        success: false,
        images: Vec::new(),
        files: Vec::new(),
        session_ended: Some(why),
    }
}
