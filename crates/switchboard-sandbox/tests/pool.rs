//! The pool recovers when idle interpreters die. (Its own test binary: it kills this
//! process's sandbox workers, which would break other tests' runs.)
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::procs;

/// Kill every idle worker from outside; the next programs still run, and /metrics counts the
/// deaths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_that_die_are_replaced() {
    let sandbox = common::start().await;
    assert_eq!(sandbox.run("print('warm')").await.stdout, "warm\n");
    // Wait for the pool to be full again, so the workers killed below are idle ones (killing
    // one still starting would count as a start failure, not an idle death).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while metric(&sandbox, "sandbox_pool_idle_workers").await < 4 {
        assert!(std::time::Instant::now() < deadline, "the pool refills");
        tokio::task::yield_now().await;
    }
    let me = std::process::id() as i32;
    let workers: Vec<i32> = procs::descendants(me)
        .into_iter()
        .filter(|(p, depth)| *depth == 1 && p.ns_pids.last() == Some(&1))
        .map(|(p, _)| p.pid)
        .collect();
    assert!(!workers.is_empty(), "idle workers exist");
    for pid in &workers {
        // SAFETY: a pidfd for, then SIGKILL to, our own child process; then wait (poll) until
        // it has exited, so the runs below find the pool really dead rather than dying.
        unsafe {
            let pidfd = libc::syscall(libc::SYS_pidfd_open, *pid, 0) as i32;
            assert!(pidfd >= 0, "pidfd_open {pid}");
            libc::kill(*pid, libc::SIGKILL);
            let mut poll = libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            };
            assert_eq!(libc::poll(&mut poll, 1, 10_000), 1, "worker {pid} exits");
            libc::close(pidfd);
        }
    }
    for i in 0..6 {
        let r = sandbox.run(&format!("print({i})")).await;
        assert_eq!(
            r.stdout,
            format!("{i}\n"),
            "run {i} after the pool was killed"
        );
    }
    let deaths = metric(&sandbox, "sandbox_idle_worker_deaths_total").await;
    assert!(deaths >= 1, "deaths counted: {deaths}");
    for pid in workers {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "killed worker {pid} was reaped"
        );
    }
}

/// The value of a sample (of a metric with no labels but `service`) in the sandbox's /metrics.
async fn metric(sandbox: &common::Running, name: &str) -> u64 {
    let metrics = sandbox
        .http
        .get(sandbox.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"))
}
