//! A worker turned into a session's interpreter: it answers requests (run a program, write,
//! list or read a file) one at a time on its results pipe, for as long as the session lives.
//!
//! A program that overruns its time gets SIGINT (a `KeyboardInterrupt` in Python) and
//! [`GRACE`] to give its answer: the session survives that. One that ignores it, an interpreter
//! that dies (memory limit, CPU-time budget, `os._exit`) or an answer that breaks the protocol
//! ends the session; [`SessionEnd`] says which.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Worker;

/// How long an interrupted program has to give its answer before the session is ended.
const GRACE: Duration = Duration::from_secs(2);

/// Why a session's interpreter is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// It was still running a program after its time and the grace period: killed.
    Overran,
    /// The kernel's OOM killer ended it.
    OutOfMemory,
    /// Its CPU-time budget (RLIMIT_CPU, over the session's whole life) ran out.
    CpuBudget,
    /// It exited or was killed on its own (`os._exit` in a program, a signal).
    Exited(String),
    /// Its answer broke the protocol (too large, malformed).
    Broken(String),
}

/// A request's answer, and whether the program had to be interrupted to get it.
pub(crate) struct SessionReply {
    pub value: serde_json::Value,
    pub interrupted: bool,
    pub elapsed: Duration,
}

impl Worker {
    /// Switch the interpreter into session mode (it is idle and ready).
    pub(crate) async fn begin_session(&mut self) -> Result<(), SessionEnd> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(SessionEnd::Exited("its input was closed".into()));
        };
        stdin
            .write_all(b"S\n")
            .await
            .map_err(|e| SessionEnd::Exited(format!("it did not take the session: {e}")))
    }

    /// Memory the interpreter and what it started use now, when cgroups measure it.
    pub(crate) fn memory(&self) -> Option<u64> {
        self.cgroup.as_ref().and_then(|c| c.memory_current())
    }

    /// Send one request and wait for its answer (at most `cap` bytes), interrupting the
    /// program after `timeout`.
    pub(crate) async fn request(
        &mut self,
        request: &serde_json::Value,
        timeout: Duration,
        cap: usize,
    ) -> Result<SessionReply, SessionEnd> {
        let start = Instant::now();
        let body = serde_json::to_vec(request)
            .map_err(|e| SessionEnd::Broken(format!("encoding the request: {e}")))?;
        let mut frame = format!("{}\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        let pid = self.pid;
        let pidfd = self.pidfd.clone();
        // The writer owns the pipe while it writes and gives it back (the interpreter's input
        // must stay open for the next request).
        let Some(mut stdin) = self.stdin.take() else {
            return Err(SessionEnd::Exited("its input was closed".into()));
        };
        let writer = async move {
            let sent = stdin.write_all(&frame).await;
            (stdin, sent)
        };
        tokio::pin!(writer);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let (mut written, mut interrupted, mut killed) = (false, false, false);
        let mut answer = Vec::new();
        let mut chunk = vec![0u8; 65536];
        let (mut out_discard, mut err_discard) = (vec![0u8; 16384], vec![0u8; 16384]);
        let (mut out_eof, mut err_eof, mut results_eof) = (false, false, false);
        loop {
            tokio::select! {
                (stdin, sent) = &mut writer, if !written => {
                    written = true;
                    self.stdin = Some(stdin);
                    if sent.is_err() {
                        // It is gone or closed its input: its exit (below) says why.
                        results_eof = true;
                    }
                }
                read = self.results.read(&mut chunk), if !results_eof => match read {
                    Ok(n) if n > 0 => {
                        answer.extend_from_slice(&chunk[..n]);
                        match frame_of(&answer, cap) {
                            Ok(Some(value)) => {
                                return Ok(SessionReply { value, interrupted, elapsed: start.elapsed() });
                            }
                            Ok(None) => {}
                            Err(why) => {
                                // SAFETY: our own unreaped child.
                                unsafe { libc::kill(pid, libc::SIGKILL) };
                                let _ = self.wait_exit().await;
                                return Err(SessionEnd::Broken(why));
                            }
                        }
                    }
                    _ => results_eof = true,
                },
                // Between programs only stray writes (a thread left running) arrive here.
                read = self.stdout.read(&mut out_discard), if !out_eof => if !matches!(read, Ok(n) if n > 0) { out_eof = true },
                read = self.stderr.read(&mut err_discard), if !err_eof => if !matches!(read, Ok(n) if n > 0) { err_eof = true },
                guard = pidfd.readable() => {
                    if let Some(status) = self.try_reap() {
                        return Err(if killed { SessionEnd::Overran } else { self.why_exited(status) });
                    }
                    if let Ok(mut guard) = guard { guard.clear_ready() }
                }
                () = &mut deadline, if !killed => {
                    if interrupted {
                        killed = true;
                        self.kill();
                    } else {
                        interrupted = true;
                        // SAFETY: our own unreaped child; SIGINT is a KeyboardInterrupt there.
                        unsafe { libc::kill(pid, libc::SIGINT) };
                        deadline.as_mut().reset(tokio::time::Instant::now() + GRACE);
                    }
                }
            }
        }
    }

    /// Wait until the process has exited and reap it.
    async fn wait_exit(&mut self) -> Option<i32> {
        let pidfd = self.pidfd.clone();
        loop {
            if let Some(status) = self.try_reap() {
                return Some(status);
            }
            match pidfd.readable().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(_) => return None,
            }
        }
    }

    fn why_exited(&self, status: i32) -> SessionEnd {
        if self.cgroup.as_ref().is_some_and(|c| c.oom_killed()) {
            return SessionEnd::OutOfMemory;
        }
        if libc::WIFSIGNALED(status) {
            return match libc::WTERMSIG(status) {
                libc::SIGXCPU => SessionEnd::CpuBudget,
                signal => SessionEnd::Exited(format!(
                    "its interpreter was killed by {}",
                    super::signal_name(signal)
                )),
            };
        }
        SessionEnd::Exited(format!(
            "its interpreter exited (exit code {})",
            libc::WEXITSTATUS(status)
        ))
    }
}

/// A complete `<size>\n<JSON>` frame at the start of `buffer`, if it is all there.
fn frame_of(buffer: &[u8], cap: usize) -> Result<Option<serde_json::Value>, String> {
    let Some(newline) = buffer.iter().position(|b| *b == b'\n') else {
        return if buffer.len() > 24 {
            Err("its answer did not start with a length".into())
        } else {
            Ok(None)
        };
    };
    let size: usize = std::str::from_utf8(&buffer[..newline])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("its answer did not start with a length")?;
    if size > cap {
        return Err(format!(
            "its answer was {size} bytes, over the {cap} bytes allowed"
        ));
    }
    let body = &buffer[newline + 1..];
    if body.len() < size {
        return Ok(None);
    }
    serde_json::from_slice(&body[..size])
        .map(Some)
        .map_err(|e| format!("its answer was not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_whole_and_bounded() {
        assert_eq!(frame_of(b"7\n{\"a\"", 100), Ok(None));
        assert_eq!(
            frame_of(b"7\n{\"a\":1}", 100),
            Ok(Some(serde_json::json!({"a": 1})))
        );
        assert!(frame_of(b"9999\n", 100).is_err());
        assert!(frame_of(b"x\n{}", 100).is_err());
        assert!(frame_of(&[b'1'; 30], 100).is_err());
        assert!(frame_of(b"2\n{]", 100).is_err());
    }
}
