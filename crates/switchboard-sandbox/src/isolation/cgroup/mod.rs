//! Control groups for sandboxes: memory, process count and CPU limits, and killing a whole
//! tree at once — whatever this host lets the service use.
//!
//! Layouts differ (pure v2; hybrid v1 + v2 as on the machine this was written on; v1 only;
//! none inside some containers), so nothing is assumed: at start-up each controller is tried
//! in a group of our own under the service's own cgroup (`/proc/self/cgroup`), v2 first, then
//! v1, and what works is used and reported on `/ready`; what does not is a missing layer
//! (see [`super::layers`]), which stops the service unless accepted. A v2 group delegated to
//! the service (systemd's `Delegate=yes`; a container's own cgroup, writable and owned by its
//! user) first has its processes moved into a leaf so that its controllers can be enabled for
//! child groups (`delegated`). Each worker gets its own child group,
//! joined by the parent before the sandboxed process runs anything, and removed after it is
//! reaped. A worker whose groups cannot be created is not started.

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use serde_json::json;

mod delegated;
mod layout;
mod worker;

use super::layers::{Layer, Probe};
use layout::{mounts, own_groups};
pub(crate) use worker::WorkerCgroup;

/// Limits a worker's group enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CgroupLimits {
    pub memory_bytes: u64,
    pub processes: u64,
    /// CPU time per 100 ms period, in microseconds (100_000 = one core).
    pub cpu_quota_us: u64,
}

const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V2,
}

/// Our own group in one hierarchy, under which workers' groups are made.
#[derive(Debug, Clone)]
struct Group {
    version: Version,
    dir: PathBuf,
}

/// What this host lets us use.
#[derive(Debug)]
pub(crate) struct Cgroups {
    memory: Option<Group>,
    pids: Option<Group>,
    cpu: Option<Group>,
    /// A v2 group whose children offer `cgroup.kill`.
    kill: Option<PathBuf>,
    /// The memory group's limit covers swap too (`memsw` on v1, `memory.swap.max` on v2).
    swap: bool,
    /// Why each controller is unavailable.
    missing: Vec<(String, String)>,
    /// Our own groups, removed at shutdown.
    created: Vec<PathBuf>,
    /// The leaf of our delegated v2 group the service moved its processes into.
    moved_to: Option<PathBuf>,
    limits: Option<CgroupLimits>,
}

const PREFIX: &str = "switchboard-sandbox.";

impl Cgroups {
    /// Probe the host; never fails (an unusable controller is recorded as missing).
    pub(crate) fn detect(limits: CgroupLimits) -> Self {
        static INSTANCE: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{PREFIX}{}.{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        );
        let mut found = Cgroups {
            memory: None,
            pids: None,
            cpu: None,
            kill: None,
            swap: false,
            missing: Vec::new(),
            created: Vec::new(),
            moved_to: None,
            limits: Some(limits),
        };
        let mounts = mounts();
        let own = own_groups();

        // v2: our own group, controllers enabled for its children where offered, cgroup.kill.
        // Why each controller is not had from v2, added to v1's reason if v1 lacks it too.
        let mut v2_why: Vec<(&str, String)> = Vec::new();
        if let Some(own) = mounts
            .iter()
            .find(|m| m.v2)
            .and_then(|m| m.dir_for(own.iter().find(|g| g.v2).map(|g| g.path.as_str())))
        {
            let (base, refused) = match delegated::prepare(&own, &["memory", "pids", "cpu"]) {
                Ok(prepared) => {
                    if prepared.moved {
                        found.moved_to = Some(prepared.base.join(delegated::LEAF));
                    }
                    (prepared.base, None)
                }
                // Our group may still offer cgroup.kill.
                Err(why) => (own, Some(why)),
            };
            v2_why = found.v2(&base, &name, refused.as_deref());
        }
        // v1 for whatever v2 did not give us.
        for controller in ["memory", "pids", "cpu"] {
            if found.slot(controller).is_some() {
                continue;
            }
            let v2 = v2_why
                .iter()
                .find(|(c, _)| *c == controller)
                .map(|(_, why)| format!("v2: {why}; v1: "))
                .unwrap_or_default();
            let Some(mount) = mounts
                .iter()
                .find(|m| m.controllers.iter().any(|c| c == controller))
            else {
                found
                    .missing
                    .push((controller.into(), format!("{v2}no hierarchy mounted")));
                continue;
            };
            let own_path = own
                .iter()
                .find(|g| g.controllers.iter().any(|c| c == controller))
                .map(|g| g.path.as_str());
            let Some(base) = mount.dir_for(own_path) else {
                found
                    .missing
                    .push((controller.into(), format!("{v2}own group not found")));
                continue;
            };
            remove_stale(&base);
            let dir = base.join(&name);
            let probe = dir.join("probe");
            let tried = fs::create_dir(&dir)
                .and_then(|()| fs::create_dir(&probe))
                .and_then(|()| write_limits(controller, Version::V1, &probe, &limits))
                .and_then(|()| fs::remove_dir(&probe));
            match tried {
                Ok(()) => {
                    if controller == "memory" {
                        found.swap = dir.join("memory.memsw.limit_in_bytes").exists();
                    }
                    found.created.push(dir.clone());
                    *found.slot(controller) = Some(Group {
                        version: Version::V1,
                        dir,
                    });
                }
                Err(error) => {
                    let _ = fs::remove_dir(&probe);
                    let _ = fs::remove_dir(&dir);
                    found.missing.push((
                        controller.into(),
                        format!(
                            "{v2}cannot create a group under {}: {error}",
                            base.display()
                        ),
                    ));
                }
            }
        }
        found
    }

    fn slot(&mut self, controller: &str) -> &mut Option<Group> {
        match controller {
            "memory" => &mut self.memory,
            "pids" => &mut self.pids,
            _ => &mut self.cpu,
        }
    }

    pub(crate) fn has_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Record in `probe` every limit this host does not let us enforce.
    pub(crate) fn report_missing(&self, probe: &mut Probe) {
        for (controller, why) in &self.missing {
            let layer = match controller.as_str() {
                "memory" => Layer::Memory,
                "pids" => Layer::Pids,
                _ => Layer::Cpu,
            };
            probe.missing(layer, format!("{controller} cgroup: {why}"));
        }
        // Without a memory group the address-space rlimit stands in, and it counts swap too.
        if self.memory.is_some() && !self.swap {
            probe.missing(
                Layer::Swap,
                "the memory cgroup does not account swap (no memory.memsw.limit_in_bytes / memory.swap.max)",
            );
        }
    }

    /// What is in use, for `/ready`.
    pub(crate) fn describe(&self) -> serde_json::Value {
        let show = |g: &Option<Group>| match g {
            Some(g) => json!(format!(
                "{} {}",
                if g.version == Version::V1 { "v1" } else { "v2" },
                g.dir.display()
            )),
            None => json!(null),
        };
        json!({
            "memory": show(&self.memory),
            "pids": show(&self.pids),
            "cpu": show(&self.cpu),
            "swap_accounted": self.memory.is_some().then_some(self.swap),
            "kill": self.kill.as_ref().map(|d| format!("v2 cgroup.kill under {}", d.display())),
            "service_moved_to": self.moved_to.as_ref().map(|d| d.display().to_string()),
            "unavailable": self.missing.iter().map(|(c, why)| json!({"controller": c, "why": why})).collect::<Vec<_>>(),
        })
    }

    /// Create worker `id`'s groups with the limits applied.
    pub(crate) fn create(&self, id: u64) -> io::Result<WorkerCgroup> {
        let Some(limits) = self.limits else {
            return Ok(WorkerCgroup::default());
        };
        let mut worker = WorkerCgroup::default();
        let name = format!("w{id}");
        fn ensure(dirs: &mut Vec<PathBuf>, parent: &Path, name: &str) -> io::Result<PathBuf> {
            let dir = parent.join(name);
            if !dirs.contains(&dir) {
                fs::create_dir(&dir)?;
                dirs.push(dir.clone());
            }
            Ok(dir)
        }
        for (controller, group) in [
            ("memory", &self.memory),
            ("pids", &self.pids),
            ("cpu", &self.cpu),
        ] {
            if let Some(group) = group {
                // On error `worker` is dropped, which removes what was created.
                let dir = ensure(&mut worker.dirs, &group.dir, &name)?;
                write_limits(controller, group.version, &dir, &limits)?;
                if controller == "memory" {
                    worker.memory = Some((group.version, dir));
                }
            }
        }
        if let Some(parent) = &self.kill {
            worker.kill = Some(ensure(&mut worker.dirs, parent, &name)?);
        }
        Ok(worker)
    }

    /// Remove our own groups (workers must be gone).
    pub(crate) fn shutdown(&mut self) {
        for dir in self.created.drain(..) {
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.path().is_dir() {
                        let _ = fs::remove_dir(entry.path());
                    }
                }
            }
            let _ = fs::remove_dir(&dir);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_limits(
    controller: &str,
    version: Version,
    dir: &Path,
    limits: &CgroupLimits,
) -> io::Result<()> {
    match (controller, version) {
        ("memory", Version::V1) => {
            fs::write(
                dir.join("memory.limit_in_bytes"),
                limits.memory_bytes.to_string(),
            )?;
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                fs::write(memsw, limits.memory_bytes.to_string())?;
            }
            Ok(())
        }
        ("memory", Version::V2) => {
            fs::write(dir.join("memory.max"), limits.memory_bytes.to_string())?;
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                fs::write(swap, "0")?;
            }
            Ok(())
        }
        ("pids", _) => fs::write(dir.join("pids.max"), limits.processes.to_string()),
        ("cpu", Version::V1) => {
            fs::write(dir.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())?;
            fs::write(
                dir.join("cpu.cfs_quota_us"),
                limits.cpu_quota_us.to_string(),
            )
        }
        ("cpu", Version::V2) => fs::write(
            dir.join("cpu.max"),
            format!("{} {CPU_PERIOD_US}", limits.cpu_quota_us),
        ),
        _ => Ok(()),
    }
}

/// Remove groups left behind by a service process that no longer exists.
fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('.').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if alive {
            continue;
        }
        if let Ok(children) = fs::read_dir(entry.path()) {
            for child in children.flatten() {
                if child.path().is_dir() {
                    let _ = fs::remove_dir(child.path());
                }
            }
        }
        let _ = fs::remove_dir(entry.path());
    }
}
