//! Per-user kernel counters. The sandboxes' user namespaces are created by the service, so
//! what a sandboxed program takes of a per-user count (inotify instances, queued signals) is
//! also charged to the service's uid on the host — root, in CI. Each test runs a program that
//! takes all it can, then waits (reporting through its thread name, since its output arrives
//! only when it ends) while the test checks, as root on the host, that root can still do the
//! same; then the test releases it with SIGUSR1.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::{Duration, Instant};

use common::{Running, procs};
use serde_json::json;
use switchboard_protocol::sandbox::ExecutionResult;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The thread name (`comm`, at most 15 bytes) a program takes once it has exhausted a count.
const EXHAUSTED: &str = "sb-exhausted";

/// The program's epilogue: report through the thread name, wait for SIGUSR1 (blocked first,
/// so that it is queued even to a PID 1), then say so.
const WAIT_FOR_THE_TEST: &str = r#"
libc.prctl(15, b"sb-exhausted", 0, 0, 0)  # PR_SET_NAME
signal.sigwait({signal.SIGUSR1})
print("released")
"#;

/// Run `code` (which must end with [`WAIT_FOR_THE_TEST`]); once it has renamed itself, run
/// `check` with its host pid, release it, and return the check's answer and the result.
async fn while_exhausted<T>(
    sandbox: &Running,
    code: String,
    check: impl FnOnce(i32) -> T,
) -> (T, ExecutionResult) {
    let http = sandbox.http.clone();
    let url = sandbox.url("/execute");
    let run = tokio::spawn(async move {
        let response = http
            .post(url)
            .json(&json!({ "code": code, "timeout_seconds": 30 }))
            .send()
            .await
            .unwrap();
        response.json::<ExecutionResult>().await.unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let found = procs::descendants(std::process::id() as i32)
            .into_iter()
            .map(|(p, _)| p.pid)
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim_end() == EXHAUSTED)
            });
        if let Some(pid) = found {
            break pid;
        }
        if run.is_finished() || Instant::now() > deadline {
            panic!("the program never reported: {:?}", run.await);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let answer = check(pid);
    // SAFETY: signalling the sandbox process found above (it waits for this signal).
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    (answer, run.await.unwrap())
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// A program that opens inotify instances until refused does not leave root unable to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_instances_of_a_sandbox_are_not_roots() {
    let _turn = TURN.lock().await;
    let sandbox = common::start().await;
    let code = format!(
        r#"import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGUSR1}})
try:
    open("/proc/sys/user/max_inotify_instances", "w").write("100000")
    print("raised its own limit")
except OSError as e:
    print("limit fixed:", e.strerror)
fds = []
while (fd := libc.inotify_init1(0)) >= 0:
    fds.append(fd)
print(len(fds), "inotify instances, then", os.strerror(ctypes.get_errno()), flush=True)
{WAIT_FOR_THE_TEST}"#
    );
    let (host, result) = while_exhausted(&sandbox, code, |_| {
        // SAFETY: a plain system call; the descriptor is closed at once.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        let outcome = if fd >= 0 { Ok(()) } else { Err(errno()) };
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
        outcome
    })
    .await;
    assert!(
        host.is_ok(),
        "root on the host cannot create an inotify instance while a sandbox holds its count: {host:?}; the program: {result:?}"
    );
    assert!(result.stdout.contains("limit fixed:"), "{result:?}");
    assert!(result.stdout.ends_with("released\n"), "{result:?}");
    let made: u32 = result
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(made < 128, "{result:?}");
}

/// Queue a real-time signal to the calling thread (blocked there), then take it back:
/// whether root may still queue one.
fn root_can_queue_a_signal() -> Result<(), std::io::Error> {
    std::thread::spawn(|| {
        // SAFETY: signal-mask calls on this thread's own mask and stack values; the signal is
        // blocked in this thread, directed at it, and consumed before the thread ends.
        unsafe {
            let sig = libc::SIGRTMIN() + 7;
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            let queued = libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), sig);
            let outcome = if queued == 0 { Ok(()) } else { Err(errno()) };
            let now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&set, std::ptr::null_mut(), &now);
            outcome
        }
    })
    .join()
    .unwrap()
}

/// A program that queues signals until refused does not leave root unable to queue one; the
/// kernel shows the program's own limit (`SigQ: queued/limit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_signals_of_a_sandbox_are_not_roots() {
    let _turn = TURN.lock().await;
    let sandbox = common::start().await;
    let code = format!(
        r#"import ctypes, os, signal, threading
libc = ctypes.CDLL(None, use_errno=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGRTMIN, signal.SIGUSR1}})
me, n = threading.get_ident(), 0
try:
    while True:
        signal.pthread_kill(me, signal.SIGRTMIN)
        n += 1
except OSError as e:
    print(n, "signals queued, then", e.strerror, flush=True)
{WAIT_FOR_THE_TEST}"#
    );
    let ((host, sigq), result) = while_exhausted(&sandbox, code, |pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let sigq = status
            .lines()
            .find_map(|l| l.strip_prefix("SigQ:"))
            .map(|v| v.trim().to_owned())
            .unwrap();
        (root_can_queue_a_signal(), sigq)
    })
    .await;
    assert!(
        host.is_ok(),
        "root on the host cannot queue a signal while a sandbox holds its count: {host:?}; the program's SigQ {sigq}; {result:?}"
    );
    let (queued, limit) = sigq.split_once('/').unwrap();
    let (queued, limit): (u64, u64) = (queued.parse().unwrap(), limit.parse().unwrap());
    assert!(limit <= 1024 && queued <= limit, "SigQ {sigq}");
    assert!(result.stdout.ends_with("released\n"), "{result:?}");
    assert!(
        result.stdout.contains("Resource temporarily unavailable"),
        "{result:?}"
    );
}
