//! One worker's groups: joining them, reading what the OOM killer did, removing them.

use std::{fs, io, io::ErrorKind, path::PathBuf};

use super::Version;

/// One worker's groups.
#[derive(Debug, Default)]
pub(crate) struct WorkerCgroup {
    pub(super) dirs: Vec<PathBuf>,
    pub(super) memory: Option<(Version, PathBuf)>,
    pub(super) kill: Option<PathBuf>,
}

impl WorkerCgroup {
    /// Move `pid` into every group (before it runs anything of its own).
    pub(crate) fn attach(&self, pid: i32) -> io::Result<()> {
        for dir in &self.dirs {
            fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// Whether the kernel's OOM killer acted in this group.
    pub(crate) fn oom_killed(&self) -> bool {
        let Some((version, dir)) = &self.memory else {
            return false;
        };
        let file = match version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("oom_kill "))
            .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
    }

    /// Memory the group uses now (a session's interpreter and everything it started).
    pub(crate) fn memory_current(&self) -> Option<u64> {
        let (version, dir) = self.memory.as_ref()?;
        let file = match version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
    }

    /// Processes still in the groups (there should be none once the sandbox's PID 1 is gone).
    pub(crate) fn remaining(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in &self.dirs {
            for line in fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = line.trim().parse::<i32>()
                    && !pids.contains(&pid)
                {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Kill whatever is left: `cgroup.kill` where offered, else each listed process.
    pub(crate) fn kill_remaining(&self) {
        if let Some(dir) = &self.kill {
            let _ = fs::write(dir.join("cgroup.kill"), "1");
        }
        for pid in self.remaining() {
            // SAFETY: plain signal; the pid was read from our own group.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Remove the groups. Returns the processes that were found still inside (and killed).
    pub(crate) fn remove(&mut self) -> Vec<i32> {
        let strays = self.remaining();
        if !strays.is_empty() {
            self.kill_remaining();
        }
        for dir in self.dirs.drain(..) {
            // A killed process may take a moment to leave its group.
            for attempt in 0..50 {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    Err(error) if attempt == 49 => {
                        tracing::error!(group = %dir.display(), %error, "cannot remove a sandbox cgroup");
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            }
        }
        strays
    }
}

impl Drop for WorkerCgroup {
    fn drop(&mut self) {
        if !self.dirs.is_empty() {
            self.remove();
        }
    }
}
