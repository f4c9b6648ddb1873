//! Nobody else can touch a worker: a process of pip's uid (65534 when the service is root;
//! whatever a package's build starts runs as it) can neither open an idle worker's pipes
//! through `/proc/<pid>/fd`, nor take them with `pidfd_getfd`, nor trace the worker, nor open
//! the service's own descriptors (which include every idle worker's stdin). Workers run as a
//! uid of their own (65533), so this holds from the worker's `execve` on, before the
//! interpreter makes itself undumpable. Runs as root.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::process::Command;

use common::procs;

/// Tries every way in from `pids` and prints one line per attempt: `<what> ok|<errno name>`.
const PROBE: &str = r#"
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def report(what, fn):
    try:
        fn()
        print(what, 'ok')
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, e.errno))
def syscall(*args):
    r = libc.syscall(*args)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
service, workers = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
report(f'list /proc/{service}/fd', lambda: os.listdir(f'/proc/{service}/fd'))
for fd in range(3, 200):
    path = f'/proc/{service}/fd/{fd}'
    report(f'open {path}', lambda: os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK)))
for pid in workers:
    report(f'list /proc/{pid}/fd', lambda: os.listdir(f'/proc/{pid}/fd'))
    for fd, flags in ((0, os.O_WRONLY), (1, os.O_RDONLY), (2, os.O_RDONLY)):
        path = f'/proc/{pid}/fd/{fd}'
        report(f'open {path}', lambda: os.close(os.open(path, flags | os.O_NONBLOCK)))
    def getfd():
        pidfd = syscall(434, pid, 0)  # pidfd_open
        try:
            os.close(syscall(438, pidfd, 0, 0))  # pidfd_getfd
        finally:
            os.close(pidfd)
    report(f'pidfd_getfd {pid} 0', getfd)
    report(f'ptrace seize {pid}', lambda: syscall(101, 0x4206, pid, 0, 0))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_and_the_service_are_out_of_reach_of_other_processes() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (to probe as pip's uid 65534)");
        return;
    }
    let sandbox = common::start().await;
    assert_eq!(sandbox.run("print('warm')").await.stdout, "warm\n");
    let me = std::process::id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let workers = loop {
        let workers: Vec<i32> = procs::descendants(me)
            .into_iter()
            .filter(|(p, depth)| *depth == 1 && p.ns_pids.last() == Some(&1))
            .map(|(p, _)| p.pid)
            .filter(|pid| runs_as(*pid, 65533))
            .collect();
        if workers.len() >= 2 {
            break workers;
        }
        assert!(std::time::Instant::now() < deadline, "idle workers exist");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["/usr/bin/python3", "-c", PROBE, &me.to_string()])
        .args(workers.iter().map(i32::to_string))
        .output()
        .expect("setpriv runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("pidfd_getfd"),
        "the probe ran: {text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let allowed: Vec<&str> = text.lines().filter(|l| l.ends_with(" ok")).collect();
    assert!(
        allowed.is_empty(),
        "uid 65534 got in:\n{}\n\nfull probe:\n{text}",
        allowed.join("\n")
    );
    // The probes changed nothing: programs run and answer as before.
    for i in 0..4 {
        let r = sandbox.run(&format!("print({i})")).await;
        assert_eq!(r.stdout, format!("{i}\n"), "{r:?}");
        assert!(r.success && r.stderr.is_empty(), "{r:?}");
    }
}

/// Whether `pid` has dropped to host `uid` (a worker past its set-up).
fn runs_as(pid: i32, uid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| s.lines().any(|l| l.starts_with(&format!("Uid:\t{uid}\t"))))
}
