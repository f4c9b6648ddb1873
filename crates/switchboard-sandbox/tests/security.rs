//! Hostile programs. Each test runs one against a fresh sandbox and asserts that it was
//! contained, that no process it started is left anywhere, and that the service then still
//! runs an ordinary program. The tests take turns (one lock) so that "no process is left"
//! can be checked against this whole test process's tree.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

use common::{Running, procs};
use serde_json::json;
use switchboard_protocol::sandbox::ExecutionResult;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Tight limits so each attack hits them quickly.
async fn hostile_sandbox() -> Running {
    procs::become_subreaper();
    common::start_with(|mut config, _| {
        config.pool_size = 2;
        config.limits.memory_bytes = 96 << 20;
        config.limits.max_processes = 32;
        config.limits.max_output_bytes = 64 << 10;
        config.limits.max_file_bytes = 8 << 20;
        config.limits.scratch_bytes = 32 << 20;
        config.limits.cpu_seconds = 5;
        config
    })
    .await
}

/// Nothing the program started is alive, and the sandbox still works.
async fn assert_contained(sandbox: &Running, attack: &str) {
    let strays = procs::strays();
    assert!(
        strays.is_empty(),
        "{attack}: processes left behind: {strays:#?}"
    );
    let normal = sandbox.run("print(6 * 7)").await;
    assert_eq!(
        normal.stdout, "42\n",
        "{attack}: a normal program still runs"
    );
    assert!(normal.success);
}

async fn attack(sandbox: &Running, code: &str, timeout_seconds: f64) -> ExecutionResult {
    sandbox
        .run_with(json!({ "code": code, "timeout_seconds": timeout_seconds }))
        .await
}

/// A fork bomb stops at the process limit and dies with its PID 1 at the time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let counted = attack(
        &s,
        "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print(n, type(e).__name__)",
        10.0,
    )
    .await;
    let made: u32 = counted
        .stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(made < 32, "the process limit holds: {}", counted.stdout);
    assert!(counted.stdout.contains("BlockingIOError"), "{counted:?}");
    assert_contained(
        &s,
        "counting fork bomb (children sleeping when PID 1 exits)",
    )
    .await;

    let bomb = attack(
        &s,
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        2.0,
    )
    .await;
    assert!(bomb.timed_out && !bomb.success, "{bomb:?}");
    assert_eq!(bomb.signal.as_deref(), Some("SIGKILL"));
    assert_contained(&s, "fork bomb").await;
}

/// Allocating without end ends at the memory limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let r = attack(
        &s,
        "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))",
        20.0,
    )
    .await;
    assert!(r.memory_exceeded && !r.success && !r.timed_out, "{r:?}");
    assert_contained(&s, "memory bomb").await;
}

/// A busy loop and a long sleep are killed at the wall-clock limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_loop_and_sleep_past_the_time_limit() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    for (name, code) in [
        ("busy loop", "while True:\n    pass"),
        ("sleep", "import time\ntime.sleep(3600)"),
    ] {
        let r = attack(&s, &format!("print('started', flush=True)\n{code}"), 1.0).await;
        assert!(r.timed_out && !r.success, "{name}: {r:?}");
        assert_eq!(r.signal.as_deref(), Some("SIGKILL"), "{name}");
        assert!(
            r.duration_ms >= 1000.0 && r.duration_ms < 5000.0,
            "{name}: {}",
            r.duration_ms
        );
        assert_eq!(
            r.stdout, "started\n",
            "{name}: output before the kill is kept"
        );
        assert_contained(&s, name).await;
    }
}

/// A flood of output is cut at the cap and the program stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_stdout_and_stderr() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    for stream in ["stdout", "stderr"] {
        let r = attack(
            &s,
            &format!("import sys\nwhile True:\n    print('x' * 1000, file=sys.{stream})"),
            10.0,
        )
        .await;
        assert!(
            r.truncated && !r.success && !r.timed_out,
            "{stream}: {}",
            r.headline()
        );
        let captured = if stream == "stdout" {
            &r.stdout
        } else {
            &r.stderr
        };
        assert_eq!(captured.len(), 64 << 10, "{stream} kept up to the cap");
        assert_contained(&s, stream).await;
    }
}

/// A huge file stops at the file-size limit; many files stop at the scratch size. Nothing
/// reaches the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_files_in_tmp() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let one = attack(
        &s,
        "with open('/tmp/big', 'wb') as f:\n    while True:\n        f.write(b'\\0' * (1 << 20))",
        10.0,
    )
    .await;
    assert!(
        !one.success && one.stderr.contains("File too large"),
        "{one:?}"
    );
    let many = attack(&s, "i = 0\nwhile True:\n    with open(f'/tmp/f{i}', 'wb') as f:\n        f.write(b'\\0' * (7 << 20))\n    i += 1", 10.0).await;
    assert!(
        !many.success && many.stderr.contains("No space left"),
        "{many:?}"
    );
    assert!(
        !std::path::Path::new("/tmp/big").exists() && !std::path::Path::new("/tmp/f0").exists()
    );
    assert_contained(&s, "huge files").await;
}

/// No network: not the service's loopback, not the outside world, no raw or netlink sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_network_at_all() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        r#"import socket
attempts = [
    ("loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2)),
    ("outside", lambda: socket.create_connection(("192.0.2.1", 80), timeout=2)),
    ("dns", lambda: socket.getaddrinfo("example.com", 80)),
    ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53))),
    ("ipv6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM)),
    ("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)),
    ("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),
]
for name, attempt in attempts:
    try:
        attempt()
        print(name, "CONNECTED")
    except Exception as e:
        print(name, "refused", type(e).__name__)
"#
    );
    let r = attack(&s, &code, 10.0).await;
    assert!(r.success, "{r:?}");
    assert!(!r.stdout.contains("CONNECTED"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("refused").count(), 7, "{}", r.stdout);
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "nothing reached the listener on 127.0.0.1:{port}"
    );
    assert_contained(&s, "network").await;
}

/// The host's secrets and other processes are out of sight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_files_and_processes_are_out_of_sight() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let service = std::process::id();
    let code = format!(
        r#"import os
for path in ["/etc/shadow", "/proc/{service}/environ", "/root", "/home", "/var", "/sys", "/proc/kcore"]:
    try:
        with open(path, "rb") as f:
            print(path, "READ", len(f.read()))
    except Exception as e:
        print(path, "denied", type(e).__name__)
print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
try:
    os.kill({service}, 9)
    print("KILLED THE SERVICE")
except ProcessLookupError:
    print("service invisible")
"#
    );
    let r = attack(&s, &code, 10.0).await;
    assert!(r.success, "{r:?}");
    assert!(!r.stdout.contains("READ"), "{}", r.stdout);
    assert!(
        r.stdout.contains("pids [1]"),
        "only itself is visible: {}",
        r.stdout
    );
    assert!(r.stdout.contains("service invisible"), "{}", r.stdout);
    assert_contained(&s, "host files").await;
}

/// Only the work directory and /tmp are writable; the managed packages are read-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_outside_the_work_dir() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let code = r#"import os
for path in ["/evil", "/usr/evil", "/etc/evil", "/packages/evil", "/dev/evil", "/proc/evil", "/bin/evil"]:
    try:
        open(path, "w").write("x")
        print(path, "WRITTEN")
    except OSError as e:
        print(path, "denied", e.errno)
for path in ["/work/ok", "/tmp/ok", "ok"]:
    open(path, "w").write("x")
    print(path, "ok")
"#;
    let r = attack(&s, code, 10.0).await;
    assert!(r.success, "{r:?}");
    assert!(!r.stdout.contains("WRITTEN"), "{}", r.stdout);
    assert_eq!(r.stdout.matches(" ok").count(), 3, "{}", r.stdout);
    assert!(!common::site(&s).join("evil").exists());
    assert!(!std::path::Path::new("/evil").exists() && !std::path::Path::new("/usr/evil").exists());
    assert_contained(&s, "writes").await;
}

/// A daemon that double-forks and calls setsid does not outlive the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_forking_daemon_dies_with_the_run() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let marker = format!("switchboard-daemon-{}", uuid_like());
    let code = format!(
        r#"import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/python3", ["/usr/bin/python3", "-c", "import time; time.sleep(600)", "{marker}"])
    os._exit(0)
os.wait()
print("parent done")
"#
    );
    let r = attack(&s, &code, 10.0).await;
    assert!(r.success && r.stdout == "parent done\n", "{r:?}");
    assert!(procs::with_marker(&marker).is_empty(), "the daemon is gone");
    assert_contained(&s, "daemon").await;
}

/// ptrace, mount, unshare, setns, bpf, keyctl, perf, io_uring: all refused; clone3 is ENOSYS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_system_calls_are_refused() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let code = r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, fn):
    ctypes.set_errno(0)
    r = fn()
    print(name, r, os.strerror(ctypes.get_errno()) if r == -1 else "SUCCEEDED")
call("ptrace_traceme", lambda: libc.ptrace(0, 0, 0, 0))
call("ptrace_attach", lambda: libc.ptrace(16, 1, 0, 0))
call("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
call("umount", lambda: libc.umount2(b"/proc", 2))
call("unshare_user", lambda: libc.unshare(0x10000000))
call("unshare_net", lambda: libc.unshare(0x40000000))
call("setns", lambda: libc.syscall(308, 0, 0))
call("clone_newuser", lambda: libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
call("clone3", lambda: libc.syscall(435, 0, 0))
call("bpf", lambda: libc.syscall(321, 0, 0, 0))
call("keyctl", lambda: libc.syscall(250, 0, 0, 0, 0, 0))
call("perf_event_open", lambda: libc.syscall(298, 0, 0, -1, -1, 0))
call("io_uring_setup", lambda: libc.syscall(425, 1, 0))
call("chroot", lambda: libc.chroot(b"/tmp"))
call("setuid0", lambda: libc.setuid(0))
"#;
    let r = attack(&s, code, 10.0).await;
    assert!(r.success, "{r:?}");
    assert!(!r.stdout.contains("SUCCEEDED"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 15, "{}", r.stdout);
    assert!(
        r.stdout.contains("clone3 -1 Function not implemented"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("unshare_user -1 Operation not permitted"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("ptrace_attach -1 Operation not permitted"),
        "{}",
        r.stdout
    );
    assert_contained(&s, "system calls").await;
}

/// kill(-1) reaches only the program's own processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_one() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let r = attack(&s, "import os, signal\nfor sig in (signal.SIGKILL, signal.SIGTERM):\n    try:\n        os.kill(-1, sig)\n    except OSError as e:\n        print(type(e).__name__)\nprint('still here')", 10.0).await;
    assert!(r.stdout.ends_with("still here\n"), "{r:?}");
    assert_contained(&s, "kill(-1)").await;
    // And from a child, which could signal its PID 1 if anything could.
    let r = attack(&s, "import os, signal, time\nif os.fork() == 0:\n    os.kill(-1, signal.SIGKILL)\n    os.kill(1, signal.SIGKILL)\n    os._exit(0)\nos.wait()\nprint('pid 1 survived')", 10.0).await;
    assert_eq!(r.stdout, "pid 1 survived\n", "{r:?}");
    assert_contained(&s, "kill(-1) from a child").await;
}

/// Limits cannot be raised from inside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_its_own_rlimits() {
    let _turn = TURN.lock().await;
    let s = hostile_sandbox().await;
    let code = r#"import resource
for name in ["RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE"]:
    which = getattr(resource, name)
    soft, hard = resource.getrlimit(which)
    try:
        resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print(name, "RAISED")
    except (ValueError, OSError) as e:
        print(name, "refused", hard)
"#;
    let r = attack(&s, code, 10.0).await;
    assert!(r.success, "{r:?}");
    assert!(!r.stdout.contains("RAISED"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("refused").count(), 4, "{}", r.stdout);
    assert_contained(&s, "rlimits").await;
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos()
    )
}

/// The check used above does see a process left behind (so it can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stray_check_sees_strays() {
    let _turn = TURN.lock().await;
    let mut sleeper = std::process::Command::new("/bin/sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let seen = procs::strays().iter().any(|p| p.pid == sleeper.id() as i32);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert!(
        seen,
        "a child that is not an idle sandbox worker counts as a stray"
    );
}
