//! Looking at this test process's process tree, to prove that nothing outlives a sandbox.
//!
//! Sandboxed interpreters are children of the service, which in tests is this process; each
//! is PID 1 of its own pid namespace and, while idle, has no children. So after a program has
//! finished (and no other runs), a stray process is any descendant that is not such a worker
//! (e.g. a grandchild, or a reparented orphan: [`become_subreaper`] makes orphans come to us
//! instead of the host's init, so they cannot hide).

use std::{collections::HashMap, fs};

/// Make orphaned descendants reparent to this process, where the checks can see them.
pub fn become_subreaper() {
    // SAFETY: a plain prctl on this process.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
}

#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    /// Namespace-local pids, outermost first (`NSpid:`).
    pub ns_pids: Vec<i32>,
    pub cmdline: String,
}

/// Every process on the host that we can read.
pub fn all() -> Vec<Proc> {
    let mut procs = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return procs;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue; // exited meanwhile
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        procs.push(Proc {
            pid,
            ppid: field("PPid:").parse().unwrap_or(0),
            state: field("State:").chars().next().unwrap_or('?'),
            ns_pids: field("NSpid:")
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
            cmdline,
        });
    }
    procs
}

/// All descendants of `root`, with their depth below it.
pub fn descendants(root: i32) -> Vec<(Proc, usize)> {
    let procs = all();
    let by_pid: HashMap<i32, &Proc> = procs.iter().map(|p| (p.pid, p)).collect();
    let mut found = Vec::new();
    for p in &procs {
        let mut depth = 0;
        let mut cursor = p.ppid;
        while cursor > 1 && depth < 64 {
            depth += 1;
            if cursor == root {
                found.push((p.clone(), depth));
                break;
            }
            cursor = by_pid.get(&cursor).map_or(0, |q| q.ppid);
        }
    }
    found
}

/// Processes of this test process's tree that are not idle sandbox workers.
pub fn strays() -> Vec<Proc> {
    descendants(std::process::id() as i32)
        .into_iter()
        .filter(|(p, depth)| {
            let idle_worker = *depth == 1 && p.ns_pids.len() == 2 && p.ns_pids[1] == 1;
            !idle_worker
        })
        .map(|(p, _)| p)
        .collect()
}

/// Processes anywhere on the host whose command line contains `marker`.
pub fn with_marker(marker: &str) -> Vec<Proc> {
    all()
        .into_iter()
        .filter(|p| p.cmdline.contains(marker))
        .collect()
}
