//! The service's own group on the v2 hierarchy, made able to hand controllers to its children.
//!
//! A v2 group is delegated to a user by giving it the directory and `cgroup.procs`,
//! `cgroup.subtree_control` and `cgroup.threads` (`/sys/kernel/cgroup/delegate` lists them):
//! systemd does that for `Delegate=yes`, and runc does it for a container with its own cgroup
//! namespace and a writable `/sys/fs/cgroup` (Docker's `--security-opt writable-cgroups=true`,
//! containerd's `cgroup_writable`), owned by the uid the container runs as. The parent makes the
//! controllers available (`cgroup.controllers`), but none is enabled for the group's children
//! yet, and a domain controller (memory) cannot be while the group has processes of its own:
//! the kernel's "no internal processes" rule (EBUSY; threaded ones, cpu and pids, may). So the
//! service, which is in that group, moves the group's processes into a leaf child, [`LEAF`],
//! then enables the controllers in `cgroup.subtree_control`. Its own group for the workers'
//! groups is then made beside that leaf.
//!
//! Nothing happens when the controllers are already enabled (the host's root group, or an
//! earlier start of this process) or none of them is offered (the v1 hierarchies have them,
//! as on a hybrid host).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// The leaf child the service's own processes move into (a name that the clean-up of stale
/// groups, which looks for `switchboard-sandbox.<pid>.<n>`, leaves alone).
pub(super) const LEAF: &str = "switchboard-sandbox-service";

/// How often to move the group's processes and try again: one may join meanwhile (a
/// `docker exec`, a health check; once the controllers are on, runc puts those in the
/// container init's group instead).
const ATTEMPTS: usize = 20;

/// The group under which the service makes its own, with `wanted` enabled for its children
/// where offered; and whether the service's processes were moved into [`LEAF`] for that.
#[derive(Debug)]
pub(super) struct Prepared {
    pub base: PathBuf,
    pub moved: bool,
}

/// Make `own` (the service's v2 group, from `/proc/self/cgroup`) give each of `wanted` that its
/// parent offers to the groups made under it. `Err` says why it could not: the caller reports
/// that for each controller it then lacks.
pub(super) fn prepare(own: &Path, wanted: &[&str]) -> Result<Prepared, String> {
    // Moved into our leaf by an earlier start of this process: the group is its parent.
    let base = match own.parent() {
        Some(parent) if own.file_name().is_some_and(|n| n == LEAF) => parent.to_path_buf(),
        _ => own.to_path_buf(),
    };
    let offered = list(&base.join("cgroup.controllers"));
    let enabled = list(&base.join("cgroup.subtree_control"));
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| offered.iter().any(|o| o == c) && !enabled.iter().any(|e| e == c))
        .collect();
    if missing.is_empty() {
        return Ok(Prepared { base, moved: false });
    }
    let control = base.join("cgroup.subtree_control");
    let line = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let refused = |e: io::Error| format!("cannot write '{line}' to {}: {e}", control.display());
    match fs::write(&control, &line) {
        Ok(()) => return Ok(Prepared { base, moved: false }),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {} // processes in the group
        Err(e) => return Err(refused(e)),
    }
    let leaf = base.join(LEAF);
    match fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "{} has processes of its own, so its controllers can only be given to child groups once they move to a leaf, and creating {} failed: {e}",
                base.display(),
                leaf.display()
            ));
        }
    }
    let mut last = None;
    for _ in 0..ATTEMPTS {
        move_processes(&base, &leaf)?;
        match fs::write(&control, &line) {
            Ok(()) => return Ok(Prepared { base, moved: true }),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = Some(e),
            Err(e) => return Err(refused(e)),
        }
    }
    Err(format!(
        "{} (processes kept joining {} while they were being moved to {LEAF})",
        refused(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY))),
        base.display()
    ))
}

impl super::Cgroups {
    /// Make our own group `name` under `base` with every wanted controller `base` gives its
    /// children enabled for the workers' groups, and `cgroup.kill`. Returns why each of the
    /// others is not had from v2 (`refused`, when preparing `base` failed).
    pub(super) fn v2(
        &mut self,
        base: &Path,
        name: &str,
        refused: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut why = Vec::new();
        super::remove_stale(base);
        let dir = base.join(name);
        if let Err(e) = fs::create_dir(&dir) {
            let cannot = format!("cannot create a group under {}: {e}", base.display());
            for controller in ["memory", "pids", "cpu"] {
                why.push((
                    controller,
                    refused.map_or_else(|| cannot.clone(), str::to_owned),
                ));
            }
            return why;
        }
        self.created.push(dir.clone());
        if dir.join("cgroup.kill").exists() {
            self.kill = Some(dir.clone());
        }
        let offered = list(&dir.join("cgroup.controllers"));
        for controller in ["memory", "pids", "cpu"] {
            let enabled = if offered.iter().any(|c| c == controller) {
                fs::write(dir.join("cgroup.subtree_control"), format!("+{controller}"))
                    .map_err(|e| format!("cannot enable {controller} in {}: {e}", dir.display()))
            } else {
                Err(refused.map_or_else(
                    || {
                        format!(
                            "{} does not offer {controller} to child groups (cgroup.controllers)",
                            base.display()
                        )
                    },
                    str::to_owned,
                ))
            };
            match enabled {
                Ok(()) => {
                    if controller == "memory" {
                        self.swap = dir.join("memory.swap.max").exists();
                    }
                    *self.slot(controller) = Some(super::Group {
                        version: super::Version::V2,
                        dir: dir.clone(),
                    });
                }
                Err(e) => why.push((controller, e)),
            }
        }
        why
    }
}

/// Move every process in `from` (one write moves all of a process's threads) into `to`.
fn move_processes(from: &Path, to: &Path) -> Result<(), String> {
    let procs = to.join("cgroup.procs");
    for pid in list(&from.join("cgroup.procs")) {
        match fs::write(&procs, &pid) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {} // exited meanwhile
            Err(e) => {
                return Err(format!(
                    "cannot move process {pid} from {} to {}: {e}",
                    from.display(),
                    to.display()
                ));
            }
        }
    }
    Ok(())
}

/// The whitespace-separated words of a cgroup file (none if it cannot be read).
fn list(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_enable_changes_nothing() {
        // Not a cgroup at all: nothing offered, so nothing to do and nothing written.
        let dir = std::env::temp_dir().join(format!("sb-delegated-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("a directory");
        let prepared = prepare(&dir, &["memory", "pids", "cpu"]).expect("nothing to do");
        assert_eq!(prepared.base, dir);
        assert!(!prepared.moved);
        assert!(!dir.join(LEAF).exists());
        // Our own leaf from an earlier start: the group is its parent.
        let again = prepare(&dir.join(LEAF), &["memory"]).expect("nothing to do");
        assert_eq!(again.base, dir);
        fs::remove_dir_all(&dir).expect("removed");
    }

    /// On the host's v2 hierarchy (as root): a group with a process of its own and a controller
    /// offered but not enabled, as a runtime hands a container its cgroup. Enabling it directly
    /// is refused (no internal processes); `prepare` moves the process into the leaf first.
    /// The controller is a domain controller the root gives its children (on a hybrid host only
    /// `hugetlb`, which this enables at the root, where internal processes are allowed).
    #[test]
    fn a_group_with_processes_moves_them_into_a_leaf_to_enable_controllers() {
        // SAFETY: plain getter.
        assert_eq!(unsafe { libc::geteuid() }, 0, "makes cgroups: run as root");
        let mounts = super::super::layout::mounts();
        let v2 = mounts
            .iter()
            .find(|m| m.v2 && m.root == "/")
            .expect("a cgroup v2 hierarchy is mounted (its root)");
        let root = &v2.point;
        let enabled = list(&root.join("cgroup.subtree_control"));
        let offered = list(&root.join("cgroup.controllers"));
        // A domain controller: threaded ones (cpu, cpuset, pids, perf_event) may be enabled
        // beside processes.
        let domain = |c: &&String| !["cpu", "cpuset", "pids", "perf_event"].contains(&c.as_str());
        let controller = enabled
            .iter()
            .find(domain)
            .or_else(|| offered.iter().find(domain))
            .expect("the v2 root offers a domain controller")
            .clone();
        fs::write(
            root.join("cgroup.subtree_control"),
            format!("+{controller}"),
        )
        .expect("enabling it at the root");
        let group = root.join(format!("sb-delegated-unit.{}", std::process::id()));
        fs::create_dir(&group).expect("a group");
        let mut sleeper = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep");
        fs::write(group.join("cgroup.procs"), sleeper.id().to_string()).expect("joined");
        let direct = fs::write(
            group.join("cgroup.subtree_control"),
            format!("+{controller}"),
        );
        let prepared = prepare(&group, &[controller.as_str(), "no-such-controller"]);
        let in_leaf = list(&group.join(LEAF).join("cgroup.procs"));
        let left = list(&group.join("cgroup.procs"));
        let now_enabled = list(&group.join("cgroup.subtree_control"));
        let again = prepare(&group.join(LEAF), &[controller.as_str()]);
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        let _ = fs::remove_dir(group.join(LEAF));
        let _ = fs::remove_dir(&group);
        assert_eq!(
            direct.map_err(|e| e.raw_os_error()),
            Err(Some(libc::EBUSY)),
            "{controller}"
        );
        let prepared = prepared.expect("prepared");
        assert!(prepared.moved && prepared.base == group, "{prepared:?}");
        assert_eq!(in_leaf, [sleeper.id().to_string()]);
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(now_enabled, [controller]);
        let again = again.expect("already prepared");
        assert!(!again.moved && again.base == group, "{again:?}");
    }
}
