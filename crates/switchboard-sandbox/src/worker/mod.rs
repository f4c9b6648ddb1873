//! One pre-started sandboxed interpreter: waiting until it is ready, running exactly one
//! program in it, and making sure it is gone afterwards.
//!
//! The interpreter runs `bootstrap.py`: it warms up, writes `R` on stdout, then reads
//! `<size>\n<program>` and the program's stdin from its stdin. The service reads stdout and
//! stderr as they come (up to a cap), waits for the process through a pidfd, and kills it with
//! SIGKILL on timeout or when output exceeds the cap. The process is PID 1 of its pid
//! namespace, so its exit (or kill) ends every process the program started; by the time the
//! pidfd reports the exit, they are all gone and whatever they wrote is in the pipes.

use std::{
    os::fd::{AsRawFd, OwnedFd},
    sync::Arc,
    time::{Duration, Instant},
};

use switchboard_protocol::sandbox::ExecutionResult;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, unix::AsyncFd},
    net::unix::pipe,
};
use tokio_util::sync::CancellationToken;

use crate::isolation::{Spawned, WorkerCgroup};

mod outputs;
mod session;

pub(crate) use outputs::{InputFiles, OutputLimits, Produced, add as add_outputs};
pub(crate) use session::{SessionEnd, SessionReply};

/// The Python source every worker runs before it receives a program.
pub(crate) const BOOTSTRAP: &str = include_str!("../bootstrap.py");

/// How a run ended early, when the service ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kill {
    Timeout,
    Output,
    /// Nobody waits for the result any more: the caller went away (a cancelled call or task,
    /// a closed connection).
    Abandoned,
}

/// What one run needs.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub code: String,
    pub stdin: Option<String>,
    pub timeout: Duration,
    pub max_output_bytes: usize,
    /// Written under /work before the program starts.
    pub files: InputFiles,
    /// What the program may hand back from /work/outputs/.
    pub outputs: OutputLimits,
    /// Cancelled when nobody waits for the result any more: the program is killed then.
    pub abandoned: CancellationToken,
}

/// A finished run: the result and what is left to clean up (off the answer's path).
pub(crate) struct Finished {
    pub result: ExecutionResult,
    pub killed: Option<Kill>,
    pub leftovers: Leftovers,
}

/// What a finished worker leaves: its cgroups and its (now empty) mount namespace.
/// [`Leftovers::release`] blocks briefly (cgroup removal, namespace teardown).
#[derive(Default)]
pub(crate) struct Leftovers {
    cgroup: Option<WorkerCgroup>,
    mount_ns: Option<OwnedFd>,
}

impl Leftovers {
    /// Release everything; returns processes found still in the cgroups (killed).
    pub(crate) fn release(mut self) -> Vec<i32> {
        drop(self.mount_ns.take());
        match self.cgroup.take() {
            Some(mut cgroup) => cgroup.remove(),
            None => Vec::new(),
        }
    }
}

pub(crate) struct Worker {
    pub id: u64,
    pid: i32,
    pidfd: Arc<AsyncFd<OwnedFd>>,
    stdin: Option<pipe::Sender>,
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
    results: pipe::Receiver,
    cgroup: Option<WorkerCgroup>,
    mount_ns: Option<OwnedFd>,
    reaped: bool,
}

impl Worker {
    /// Take over a freshly spawned process (needs the runtime: registers its descriptors).
    pub(crate) fn new(id: u64, spawned: Spawned, cgroup: WorkerCgroup) -> std::io::Result<Self> {
        let pid = spawned.pid;
        let build = || -> std::io::Result<Self> {
            Ok(Self {
                id,
                pid,
                // SAFETY: the OwnedFd moves into the AsyncFd and stays open until it drops.
                pidfd: Arc::new(unsafe {
                    AsyncFd::register_with_interest(spawned.pidfd, tokio::io::Interest::READABLE)
                }?),
                stdin: Some(pipe::Sender::from_owned_fd(spawned.stdin)?),
                stdout: pipe::Receiver::from_owned_fd(spawned.stdout)?,
                stderr: pipe::Receiver::from_owned_fd(spawned.stderr)?,
                results: pipe::Receiver::from_owned_fd(spawned.results)?,
                cgroup: Some(cgroup),
                mount_ns: Some(spawned.mount_ns),
                reaped: false,
            })
        };
        build().inspect_err(|_| {
            // SAFETY: our own unreaped child; kill and reap it so nothing is left behind.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
            }
        })
    }

    /// A handle that becomes readable when the process exits (for the idle sentry).
    pub(crate) fn exit_handle(&self) -> Arc<AsyncFd<OwnedFd>> {
        self.pidfd.clone()
    }

    /// Wait for the interpreter's `R`. On failure, its stderr says why.
    pub(crate) async fn ready(&mut self, timeout: Duration) -> Result<(), String> {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(timeout, self.stdout.read(&mut byte)).await {
            Ok(Ok(1)) if byte[0] == b'R' => Ok(()),
            Ok(Ok(_)) | Ok(Err(_)) => {
                let mut detail = Vec::new();
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    (&mut self.stderr).take(4096).read_to_end(&mut detail),
                )
                .await;
                Err(format!(
                    "the interpreter exited during start-up: {}",
                    String::from_utf8_lossy(&detail).trim()
                ))
            }
            Err(_) => Err(format!(
                "the interpreter did not start within {}s",
                timeout.as_secs()
            )),
        }
    }

    /// Whether the process has already exited (an idle worker that died).
    pub(crate) fn is_dead(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.pidfd.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack, zero timeout.
        unsafe { libc::poll(&mut poll, 1, 0) > 0 }
    }

    /// Run one program. Consumes the worker: it is dead and reaped when this returns.
    pub(crate) async fn run(mut self, job: Job) -> Finished {
        let start = Instant::now();
        let files = job.files.json();
        let mut input = Vec::with_capacity(job.code.len() + files.len() + 32);
        input.extend_from_slice(
            format!(
                "{} {} {} {}\n",
                job.code.len(),
                files.len(),
                job.outputs.max_files,
                job.outputs.max_bytes
            )
            .as_bytes(),
        );
        input.extend_from_slice(job.code.as_bytes());
        input.extend_from_slice(files);
        if let Some(stdin) = &job.stdin {
            input.extend_from_slice(stdin.as_bytes());
        }
        let stdin = self.stdin.take();
        let writer = async move {
            if let Some(mut stdin) = stdin {
                // A program that never reads its stdin makes this fail with EPIPE: fine.
                let _ = stdin.write_all(&input).await;
            }
        };
        tokio::pin!(writer);
        let deadline = tokio::time::sleep(job.timeout);
        tokio::pin!(deadline);
        let mut out = Capture::new(job.max_output_bytes);
        let mut err = Capture::new(job.max_output_bytes);
        let mut produced = Capture::new(job.outputs.read_cap());
        let (mut out_buf, mut err_buf) = (vec![0u8; 16384], vec![0u8; 16384]);
        let mut results_buf = vec![0u8; 16384];
        let (mut writer_done, mut out_eof, mut err_eof) = (false, false, false);
        let mut results_eof = false;
        let mut killed = None;
        let pidfd = self.pidfd.clone();
        let status = loop {
            tokio::select! {
                () = &mut writer, if !writer_done => writer_done = true,
                read = self.stdout.read(&mut out_buf), if !out_eof => match read {
                    Ok(n) if n > 0 => if out.push(&out_buf[..n]) && killed.is_none() {
                        killed = Some(Kill::Output);
                        self.kill();
                    },
                    _ => out_eof = true,
                },
                read = self.stderr.read(&mut err_buf), if !err_eof => match read {
                    Ok(n) if n > 0 => if err.push(&err_buf[..n]) && killed.is_none() {
                        killed = Some(Kill::Output);
                        self.kill();
                    },
                    _ => err_eof = true,
                },
                // Past its cap the results are dropped (the program wrote there itself).
                read = self.results.read(&mut results_buf), if !results_eof => match read {
                    Ok(n) if n > 0 => { produced.push(&results_buf[..n]); }
                    _ => results_eof = true,
                },
                guard = pidfd.readable() => {
                    match self.try_reap() {
                        Some(status) => break status,
                        None => if let Ok(mut guard) = guard { guard.clear_ready() },
                    }
                }
                () = &mut deadline, if killed.is_none() => {
                    killed = Some(Kill::Timeout);
                    self.kill();
                }
                () = job.abandoned.cancelled(), if killed.is_none() => {
                    killed = Some(Kill::Abandoned);
                    self.kill();
                }
            }
        };
        let duration = start.elapsed();
        // Every writer is dead: what they wrote is in the pipes now.
        drain(&self.stdout, &mut out);
        drain(&self.stderr, &mut err);
        drain(&self.results, &mut produced);
        let cgroup = self.cgroup.take();
        let oom = cgroup.as_ref().is_some_and(WorkerCgroup::oom_killed);
        let mut result = classify(status, duration, &out, &err, killed, oom);
        if !produced.bytes.is_empty() {
            outputs::attach(&mut result, &produced.bytes, produced.truncated);
        }
        Finished {
            result,
            killed,
            leftovers: Leftovers {
                cgroup,
                mount_ns: self.mount_ns.take(),
            },
        }
    }

    fn kill(&self) {
        if !self.reaped {
            // SAFETY: our own child, not yet reaped, so the pid is still ours.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }

    /// Reap the process if it has exited.
    fn try_reap(&mut self) -> Option<i32> {
        if self.reaped {
            return None;
        }
        let mut status = 0;
        // SAFETY: waiting for our own child without blocking.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG | libc::__WALL) };
        if r == self.pid {
            self.reaped = true;
            Some(status)
        } else {
            None
        }
    }

    /// Kill, reap and remove the groups now (blocking briefly: a killed sandbox takes about a
    /// millisecond to disappear). Used for idle workers that are discarded.
    pub(crate) fn destroy(mut self) -> Vec<i32> {
        self.kill_and_reap();
        match self.cgroup.take() {
            Some(mut cgroup) => cgroup.remove(),
            None => Vec::new(),
        }
    }

    fn kill_and_reap(&mut self) {
        if !self.reaped {
            self.kill();
            // SAFETY: blocking wait for our own killed child.
            unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), libc::__WALL) };
            self.reaped = true;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill_and_reap();
        if let Some(mut cgroup) = self.cgroup.take() {
            cgroup.remove();
        }
    }
}

/// Read whatever is buffered without waiting.
fn drain(pipe: &pipe::Receiver, into: &mut Capture) {
    let mut buf = [0u8; 16384];
    while let Ok(n) = pipe.try_read(&mut buf) {
        if n == 0 || into.push(&buf[..n]) {
            break;
        }
    }
}

/// Output kept up to a cap.
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    /// Append; true when the cap was exceeded (the rest is dropped).
    fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.cap.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.bytes.extend_from_slice(&chunk[..room]);
            self.truncated = true;
        } else {
            self.bytes.extend_from_slice(chunk);
        }
        self.truncated
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn classify(
    status: i32,
    duration: Duration,
    out: &Capture,
    err: &Capture,
    killed: Option<Kill>,
    oom: bool,
) -> ExecutionResult {
    let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let stderr = err.text();
    let memory_error = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.starts_with("MemoryError"));
    let timed_out = killed == Some(Kill::Timeout) || signal == Some(libc::SIGXCPU);
    let memory_exceeded = oom || memory_error;
    ExecutionResult {
        stdout: out.text(),
        stderr,
        exit_code,
        signal: signal.map(signal_name),
        duration_ms: duration.as_secs_f64() * 1000.0,
        timed_out,
        memory_exceeded,
        truncated: out.truncated || err.truncated,
        success: exit_code == Some(0) && !timed_out && !memory_exceeded,
        images: Vec::new(),
        files: Vec::new(),
        session_ended: None,
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_truncates_at_the_cap() {
        let mut c = Capture::new(5);
        assert!(!c.push(b"abc"));
        assert!(c.push(b"defg"));
        assert_eq!(c.text(), "abcde");
        assert!(c.truncated);
    }

    #[test]
    fn memory_errors_and_timeouts_are_classified() {
        let out = Capture::new(10);
        let mut err = Capture::new(100);
        err.push(b"Traceback...\nMemoryError\n");
        let r = classify(1 << 8, Duration::from_millis(3), &out, &err, None, false);
        assert_eq!(r.exit_code, Some(1));
        assert!(r.memory_exceeded && !r.success);
        let killed = classify(
            libc::SIGKILL,
            Duration::from_secs(1),
            &out,
            &Capture::new(1),
            Some(Kill::Timeout),
            false,
        );
        assert_eq!(killed.signal.as_deref(), Some("SIGKILL"));
        assert!(killed.timed_out && killed.exit_code.is_none());
    }
}
