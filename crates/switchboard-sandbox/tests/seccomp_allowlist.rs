//! The seccomp allow-list (default deny) against real programs through `POST /execute`:
//! what ordinary Python does still works (threads, multiprocessing with fork, spawn and
//! forkserver, subprocess, asyncio, sqlite3, hashlib/ssl, tempfile, mmap, signals, select,
//! poll, epoll), so does the scientific stack (numpy, pandas, matplotlib, installed through the
//! package API from pinned wheels), and what is not listed answers an errno while the program
//! carries on.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

use common::Running;
use serde_json::json;
use switchboard_protocol::sandbox::{ExecutionResult, InstallOutcome, InstallStatus};

/// Run `code` with room for interpreter start-ups in child processes; it must succeed.
async fn run_ok(sandbox: &Running, what: &str, code: &str) -> ExecutionResult {
    let r = sandbox
        .run_with(json!({ "code": code, "timeout_seconds": 60 }))
        .await;
    assert!(
        r.success && !r.timed_out,
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.exit_code,
        r.stdout,
        r.stderr
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_processes_and_the_standard_library_run() {
    let sandbox = common::start_with(|mut config, _| {
        config.pool_size = 2;
        config
    })
    .await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "threads",
            r#"import threading
from concurrent.futures import ThreadPoolExecutor
out, lock = [], threading.Lock()
def work(i):
    with lock:
        out.append(i * i)
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with ThreadPoolExecutor(4) as pool:
    print(sorted(out), list(pool.map(abs, [-1, -2, -3])))
"#,
            "[0, 1, 4, 9, 16, 25, 36, 49] [1, 2, 3]\n",
        ),
        (
            "multiprocessing",
            r#"import math, multiprocessing as mp
for method in ("fork", "spawn", "forkserver"):
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        squares = pool.map(math.factorial, range(6))
    queue = ctx.Queue()
    child = ctx.Process(target=queue.put, args=(method,))
    child.start()
    got = queue.get(timeout=30)
    child.join()
    print(method, squares, got, child.exitcode)
"#,
            "fork [1, 1, 2, 6, 24, 120] fork 0\n\
             spawn [1, 1, 2, 6, 24, 120] spawn 0\n\
             forkserver [1, 1, 2, 6, 24, 120] forkserver 0\n",
        ),
        (
            "subprocess",
            r#"import subprocess
r = subprocess.run(["/usr/bin/python3", "-c", "print(1)"], capture_output=True, text=True)
p = subprocess.Popen(["/usr/bin/python3", "-c", "import sys; print(sys.stdin.read().upper())"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
out, _ = p.communicate(b"piped", timeout=30)
print(r.returncode, r.stdout.strip(), out.decode().strip(), p.returncode)
"#,
            "0 1 PIPED 0\n",
        ),
        (
            "asyncio",
            r#"import asyncio
async def square(i):
    await asyncio.sleep(0.01)
    return i * i
async def main():
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/python3", "-c", "print(2)", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    squares = await asyncio.gather(*(square(i) for i in range(4)))
    total = await asyncio.to_thread(sum, squares)
    return squares, total, out.decode().strip(), proc.returncode
print(asyncio.run(main()))
"#,
            "([0, 1, 4, 9], 14, '2', 0)\n",
        ),
        (
            "sqlite3",
            r#"import sqlite3
db = sqlite3.connect(":memory:")
db.execute("create table t (x integer)")
db.executemany("insert into t values (?)", [(i,) for i in range(10)])
print(db.execute("select sum(x), count(*) from t").fetchone())
disk = sqlite3.connect("data.sqlite")
disk.execute("create table t (x)")
disk.execute("insert into t values (1)")
disk.commit()
print(disk.execute("select count(*) from t").fetchone())
"#,
            "(45, 10)\n(1,)\n",
        ),
        (
            "hashlib and ssl",
            r#"import hashlib, ssl
print(hashlib.sha256(b"abc").hexdigest()[:16], hashlib.md5(b"abc").hexdigest()[:8])
ctx = ssl.create_default_context()
print(ssl.OPENSSL_VERSION.split()[0], ctx.verify_mode == ssl.CERT_REQUIRED)
"#,
            "ba7816bf8f01cfea 90015098\nOpenSSL True\n",
        ),
        (
            "tempfile and mmap",
            r#"import mmap, os, tempfile
print(tempfile.gettempdir(), os.getcwd())
with tempfile.TemporaryDirectory(dir=".") as d:
    path = os.path.join(d, "data.bin")
    with open(path, "wb") as f:
        f.write(b"x" * 4096)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[:5] = b"hello"
        m.flush()
    with tempfile.NamedTemporaryFile(dir=d) as named:
        named.write(b"abc")
        named.flush()
        os.fsync(named.fileno())
        print(open(path, "rb").read(5), os.path.getsize(path), len(os.listdir(d)))
with tempfile.TemporaryFile() as t:
    t.write(b"12345")
    t.seek(0)
    print(t.read())
anonymous = mmap.mmap(-1, 8192)
anonymous[:2] = b"ok"
print(anonymous[:2])
"#,
            "/tmp /work\nb'hello' 4096 2\nb'12345'\nb'ok'\n",
        ),
        (
            "signals, select, poll, epoll, time",
            r#"import os, select, signal, socket, time
hits = []
signal.signal(signal.SIGALRM, lambda *_: hits.append("alarm"))
signal.setitimer(signal.ITIMER_REAL, 0.01)
time.sleep(0.2)
signal.signal(signal.SIGUSR1, lambda *_: hits.append("usr1"))
os.kill(os.getpid(), signal.SIGUSR1)
r, w = os.pipe()
os.write(w, b"x")
poll = select.poll()
poll.register(r, select.POLLIN)
epoll = select.epoll()
epoll.register(r, select.EPOLLIN)
a, b = socket.socketpair()
a.sendall(b"ping")
print(hits, select.select([r], [], [], 1)[0] == [r], len(poll.poll(1000)), len(epoll.poll(1)), b.recv(4))
print(time.time() > 1.7e9, time.monotonic() > 0, time.process_time() >= 0, time.thread_time() >= 0,
      time.localtime().tm_year >= 2024, os.cpu_count() >= 1, len(os.urandom(8)))
"#,
            "['alarm', 'usr1'] True 1 1 b'ping'\nTrue True True True True True 8\n",
        ),
    ];
    for (what, code, expected) in cases {
        let r = run_ok(&sandbox, what, code).await;
        assert_eq!(r.stdout, *expected, "{what}; stderr:\n{}", r.stderr);
    }
}

/// What is not on the list answers an errno and the program carries on: `ENOSYS` for what is
/// merely not listed (as on an older kernel), `EPERM` for what is refused on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_off_the_list_answer_an_errno_and_the_program_carries_on() {
    let sandbox = common::start_with(|mut config, _| {
        config.pool_size = 1;
        config
    })
    .await;
    let (personality, ioctl) = match std::env::consts::ARCH {
        "x86_64" => (135, 16),
        "aarch64" => (92, 29),
        other => panic!("no system call numbers for {other}"),
    };
    let code = format!(
        r#"import ctypes, errno, fcntl, os, termios
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    print(name, r, errno.errorcode.get(ctypes.get_errno(), "none") if r == -1 else "SUCCEEDED")
call("personality_linux32", {personality}, 0x0008)
call("personality_query", {personality}, 0xffffffff)
call("memfd_secret", 447, 0)
call("open_tree_attr", 467, -100, 0, 0, 0, 0)
call("made_up_1000", 1000)
call("clone3", 435, 0, 0)
call("tiocsti_high_bits", {ioctl}, 0, 0x100005412, 0)
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"x")
except OSError as e:
    print("tiocsti", errno.errorcode[e.errno])
try:
    os.memfd_create("x")
except OSError as e:
    print("memfd_create", errno.errorcode[e.errno])
print("still running", sum(range(10)))
"#
    );
    let r = run_ok(&sandbox, "refused calls", &code).await;
    assert_eq!(
        r.stdout,
        "personality_linux32 -1 EPERM\n\
         personality_query -1 EPERM\n\
         memfd_secret -1 ENOSYS\n\
         open_tree_attr -1 EPERM\n\
         made_up_1000 -1 ENOSYS\n\
         clone3 -1 ENOSYS\n\
         tiocsti_high_bits -1 EPERM\n\
         tiocsti EPERM\n\
         memfd_create ENOSYS\n\
         still running 45\n",
        "stderr:\n{}",
        r.stderr
    );
}

/// numpy (with OpenBLAS's threads), pandas and matplotlib (Agg), installed through the
/// package API from the pinned wheels with no index, compute, build a DataFrame and write a
/// PNG into the scratch directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numpy_pandas_and_matplotlib_run() {
    let wheels = common::wheels::scientific();
    let sandbox = common::start_with(move |mut config, _| {
        config.pool_size = 1;
        config.limits.memory_bytes = 1 << 30;
        let mut packages = config.packages.clone().with_wheel_dir(wheels, true);
        packages.install_timeout = Duration::from_secs(600);
        config.packages = packages;
        config
    })
    .await;
    for (package, version) in [
        ("numpy", "2.4.6"),
        ("pandas", "3.1.1"),
        ("matplotlib", "3.11.2"),
    ] {
        let response = sandbox
            .http
            .post(sandbox.url("/packages"))
            .json(&json!({ "package": package, "version": version }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let outcome: InstallOutcome = response.json().await.unwrap();
        assert_eq!(
            (status, outcome.status),
            (200, InstallStatus::Installed),
            "{package}=={version}: {outcome:?}"
        );
    }
    let code = r#"import os
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

a = np.arange(12, dtype=float).reshape(3, 4)
m = np.random.default_rng(7).standard_normal((200, 200))
print("numpy", np.__version__, a.sum(), np.linalg.matrix_rank(a), np.allclose(m @ np.linalg.inv(m), np.eye(200)))
df = pd.DataFrame({"x": range(10), "y": [i * i for i in range(10)], "g": [i % 2 for i in range(10)]})
print("pandas", pd.__version__, df.groupby("g")["y"].sum().to_dict(), df["y"].mean())
fig, ax = plt.subplots(figsize=(4, 3))
df.plot(x="x", y="y", ax=ax)
fig.savefig("plot.png", dpi=80)
with open("plot.png", "rb") as f:
    head = f.read(8)
size = os.path.getsize("plot.png")
print("matplotlib", matplotlib.__version__, head == b"\x89PNG\r\n\x1a\n", size > 1000)
print("png bytes", size)
"#;
    let r = run_ok(&sandbox, "numpy, pandas, matplotlib", code).await;
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines.get(..3),
        Some(
            &[
                "numpy 2.4.6 66.0 2 True",
                "pandas 3.1.1 {0: 120, 1: 165} 28.5",
                "matplotlib 3.11.2 True True",
            ][..]
        ),
        "stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    let size: u64 = lines
        .get(3)
        .and_then(|l| l.strip_prefix("png bytes "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no PNG size in:\n{}", r.stdout));
    assert!(size > 1000, "{size}");
    println!(
        "matplotlib wrote a {size}-byte PNG in {:.0} ms",
        r.duration_ms
    );
}
