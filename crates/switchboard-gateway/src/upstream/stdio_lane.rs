//! A stdio upstream's pipes, shared by rmcp's client and the gateway's raw requests.
//!
//! rmcp's child-process transport parses every line the program writes into its own types,
//! which model the later tasks extension: a 2025-11-25 `CreateTaskResult` comes out as an
//! empty result and the `tasks` capability is dropped (see `super::tasks`). So the gateway
//! keeps the program's pipes itself:
//!
//! - stdout is read line by line. The answer to a raw request (its id is a string `sb-raw-N`,
//!   never one of rmcp's numbers) goes to the request's waiter as JSON; the `capabilities` of
//!   the `initialize` answer are written down ([`Declared`]); every line, but a raw answer,
//!   goes on to rmcp's client as the program wrote it.
//! - stdin gets rmcp's lines and the raw requests, each line whole.
//! - Closing the transport stops the program as the MCP specification's stdio shutdown (and
//!   rmcp's transport) does: stdin closed, then `SIGTERM`, then `SIGKILL`, [`GRACE`] apart;
//!   `close` returns once the program is gone.
//!
//! Written by hand: rmcp has no hook on its transport's lines, and this is the smallest
//! layer that gives raw answers without a second parser for everything else.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rmcp::{
    RoleClient,
    model::{ClientJsonRpcMessage, ClientRequest, ErrorData, JsonRpcRequest},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{Transport, async_rw::AsyncRwTransport},
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, duplex},
    process::{Child, ChildStdout},
    sync::{mpsc, oneshot},
};

use super::tasks::Declared;

/// How long the program has after stdin closes, and again after `SIGTERM` (rmcp's 3 s).
const GRACE: Duration = Duration::from_secs(3);
/// Bytes buffered between the pumps and rmcp's transport.
const PIPE_BYTES: usize = 1 << 16;
/// How the ids of raw requests begin.
const RAW_ID: &str = "sb-raw-";

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// Raw requests to one run of the program.
pub struct Lane {
    to_stdin: mpsc::UnboundedSender<Vec<u8>>,
    waiters: Waiters,
    next: AtomicU64,
}

impl Lane {
    fn waiters(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<Value>>> {
        lock(&self.waiters)
    }

    /// Send `request` and read its answer as the program wrote it: the result, or its error.
    /// `Err` when the program is gone (or goes before it answers).
    pub async fn exchange(
        &self,
        request: ClientRequest,
    ) -> Result<Result<Value, ErrorData>, String> {
        let id = format!("{RAW_ID}{}", self.next.fetch_add(1, Ordering::Relaxed));
        let message = ClientJsonRpcMessage::Request(JsonRpcRequest::new(
            rmcp::model::RequestId::String(id.clone().into()),
            request,
        ));
        let mut line =
            serde_json::to_vec(&message).map_err(|e| format!("cannot encode the request: {e}"))?;
        line.push(b'\n');
        let (answer, answered) = oneshot::channel();
        self.waiters().insert(id.clone(), answer);
        // Removed however this ends (answered, failed, or the caller gave up).
        let _waiting = Waiting { lane: self, id };
        self.to_stdin
            .send(line)
            .map_err(|_| "the program is not running".to_owned())?;
        let mut answer = answered
            .await
            .map_err(|_| "the program ended before it answered".to_owned())?;
        if let Some(error) = answer.get_mut("error") {
            return Ok(Err(serde_json::from_value(error.take()).unwrap_or_else(
                |e| ErrorData::internal_error(format!("an unreadable error: {e}"), None),
            )));
        }
        Ok(Ok(answer
            .get_mut("result")
            .map(Value::take)
            .unwrap_or_default()))
    }
}

struct Waiting<'a> {
    lane: &'a Lane,
    id: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.lane.waiters().remove(&self.id);
    }
}

fn lock(waiters: &Waiters) -> MutexGuard<'_, HashMap<String, oneshot::Sender<Value>>> {
    // Inserts and removes only: a panic cannot leave the map inconsistent.
    waiters.lock().unwrap_or_else(|p| p.into_inner())
}

/// rmcp's side of the program's pipes.
pub struct Lines {
    inner: AsyncRwTransport<RoleClient, DuplexStream, DuplexStream>,
    /// Fires when the program has exited (or was killed).
    exited: Option<oneshot::Receiver<()>>,
}

impl Transport<RoleClient> for Lines {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.inner.receive()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        let closed = self.inner.close().await;
        if let Some(exited) = self.exited.take() {
            // The stdin pump stops the program once rmcp's side is closed.
            let _ = tokio::time::timeout(GRACE * 3, exited).await;
        }
        closed
    }
}

/// Take over `child`'s stdin and stdout (both piped): rmcp's transport, the raw lane, and
/// the tasks that pump the lines and stop the program.
pub fn attach(
    name: &Arc<str>,
    mut child: Child,
    declared: Declared,
) -> Result<(Lines, Lane), String> {
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the program's stdin and stdout are not pipes".to_owned());
    };
    // Each a pipe whose reader sees the end when the other side drops its end (rmcp drops
    // its writer on close).
    let (rmcp_reads, to_rmcp) = duplex(PIPE_BYTES);
    let (from_rmcp, rmcp_writes) = duplex(PIPE_BYTES);
    let (to_stdin, raw_lines) = mpsc::unbounded_channel();
    let waiters = Waiters::default();
    let (exited_tx, exited) = oneshot::channel();
    tokio::spawn(read_stdout(
        name.clone(),
        stdout,
        to_rmcp,
        waiters.clone(),
        declared,
    ));
    tokio::spawn(async move {
        write_stdin(stdin, from_rmcp, raw_lines).await;
        let status = stop(child).await;
        tracing::debug!(?status, "stdio upstream stopped");
        let _ = exited_tx.send(());
    });
    Ok((
        Lines {
            inner: AsyncRwTransport::new_client(rmcp_reads, rmcp_writes),
            exited: Some(exited),
        },
        Lane {
            to_stdin,
            waiters,
            next: AtomicU64::new(0),
        },
    ))
}

/// Each line of the program's stdout to its raw waiter, or on to rmcp.
async fn read_stdout(
    name: Arc<str>,
    stdout: ChildStdout,
    mut to_rmcp: DuplexStream,
    waiters: Waiters,
    declared: Declared,
) {
    let mut stdout = BufReader::new(stdout);
    let mut line = Vec::new();
    // The first answer is `initialize`'s; after it, only an answer to a raw request is read
    // here (rmcp reads every line again).
    let mut initialized = false;
    loop {
        line.clear();
        match stdout.read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(upstream = %name, %error, "stdout of the program closed");
                break;
            }
        }
        if let Some(message) = looked_at(&line, initialized) {
            if let Some(id) = message["id"].as_str().filter(|id| id.starts_with(RAW_ID)) {
                if let Some(waiter) = lock(&waiters).remove(id) {
                    let _ = waiter.send(message);
                }
                continue;
            }
            if !initialized {
                initialized = true;
                if let Some(capabilities) = message["result"].get("capabilities")
                    && message["result"].get("protocolVersion").is_some()
                {
                    declared.store(Some(Arc::new(capabilities.clone())));
                }
            }
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        if to_rmcp.write_all(&line).await.is_err() {
            break; // rmcp's side is closed
        }
    }
    // rmcp sees the end of the program's output; a raw request still waiting is answered
    // with an error by its dropped sender.
    let _ = to_rmcp.shutdown().await;
    lock(&waiters).clear();
}

/// A response line (not a request or notification), parsed: the first (`initialize`'s), then
/// only those that may answer a raw request. rmcp parses every line again; quick tests on
/// the text keep this to the lines that matter.
fn looked_at(line: &[u8], initialized: bool) -> Option<Value> {
    let text = std::str::from_utf8(line).ok()?;
    if !text.contains("\"result\"") && !text.contains("\"error\"") {
        return None;
    }
    if initialized && !text.contains(RAW_ID) {
        return None;
    }
    let message: Value = serde_json::from_str(text).ok()?;
    (message.get("method").is_none()).then_some(message)
}

/// rmcp's lines and the raw requests to the program's stdin, each whole, until rmcp closes
/// its side (then stdin closes too).
async fn write_stdin(
    mut stdin: impl tokio::io::AsyncWrite + Unpin,
    from_rmcp: DuplexStream,
    mut raw_lines: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut from_rmcp = BufReader::new(from_rmcp);
    // What rmcp has written of its next line so far: a raw request may come in the middle of
    // one (`read_until` given up by the select keeps what it read in `line`, and is called
    // again to read on), and goes in before it, never inside it.
    let mut line = Vec::new();
    loop {
        let written = tokio::select! {
            read = from_rmcp.read_until(b'\n', &mut line) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let written = stdin.write_all(&line).await;
                    line.clear();
                    written
                }
            },
            Some(raw) = raw_lines.recv() => stdin.write_all(&raw).await,
        };
        if written.is_err() {
            break; // the program is gone
        }
    }
    drop(stdin);
}

/// Stop the program: it has [`GRACE`] after stdin closed, then `SIGTERM` and [`GRACE`]
/// again, then `SIGKILL`. How it ended, if that could be read.
async fn stop(mut child: Child) -> Option<std::process::ExitStatus> {
    if let Ok(status) = tokio::time::timeout(GRACE, child.wait()).await {
        return status.ok();
    }
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill(2) with a pid this process started and has not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if let Ok(status) = tokio::time::timeout(GRACE, child.wait()).await {
            return status.ok();
        }
    }
    let _ = child.kill().await;
    child.wait().await.ok()
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[test]
    fn only_answers_are_looked_at() {
        let raw = br#"{"jsonrpc":"2.0","id":"sb-raw-1","result":{}}"#;
        let error = br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"x"}}"#;
        let notice =
            br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"\"result\""}}"#;
        assert!(looked_at(raw, false).is_some() && looked_at(raw, true).is_some());
        assert!(
            looked_at(error, false).is_some(),
            "initialize's answer may be any"
        );
        assert!(looked_at(error, true).is_none(), "then only raw answers");
        assert!(looked_at(notice, false).is_none());
        assert!(looked_at(b"not json", false).is_none());
    }
    /// A raw request that comes while rmcp's line is half written goes in before that line,
    /// not inside it, and nothing of the line is lost.
    #[tokio::test]
    async fn a_raw_request_never_splits_one_of_rmcps_lines() {
        let (mut rmcp, from_rmcp) = duplex(PIPE_BYTES);
        let (stdin, mut program) = duplex(PIPE_BYTES);
        let (raw, raw_lines) = mpsc::unbounded_channel();
        let pump = tokio::spawn(write_stdin(stdin, from_rmcp, raw_lines));
        rmcp.write_all(br#"{"jsonrpc":"2.0","#).await.unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await; // the pump reads the half line
        }
        raw.send(b"{\"raw\":1}\n".to_vec()).unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await; // and writes the raw request
        }
        rmcp.write_all(b"\"id\":1}\n").await.unwrap();
        drop(rmcp);
        pump.await.unwrap();
        let mut written = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut program, &mut written)
            .await
            .unwrap();
        assert_eq!(written, "{\"raw\":1}\n{\"jsonrpc\":\"2.0\",\"id\":1}\n");
    }

    /// A program that ignores the end of its stdin is sent SIGTERM (and exits by its trap)
    /// before it would be killed.
    #[tokio::test]
    async fn a_program_that_ignores_its_closed_stdin_gets_sigterm() {
        let child = tokio::process::Command::new("sh")
            .args(["-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"])
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sh starts");
        let status = stop(child).await.expect("an exit status");
        assert_eq!(status.code(), Some(7), "{status:?}");
    }
}
