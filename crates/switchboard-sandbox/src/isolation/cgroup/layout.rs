//! Where the cgroup hierarchies are mounted (`/proc/self/mountinfo`) and which group this
//! process is in, in each (`/proc/self/cgroup`).

use std::{fs, path::PathBuf};

/// A cgroup file system mount.
#[derive(Debug)]
pub(super) struct Mount {
    pub v2: bool,
    pub controllers: Vec<String>,
    /// The hierarchy path this mount shows at `point`.
    pub root: String,
    pub point: PathBuf,
}

impl Mount {
    pub(super) fn dir_for(&self, own: Option<&str>) -> Option<PathBuf> {
        let own = own?;
        let relative = own.strip_prefix(self.root.trim_end_matches('/'))?;
        let dir = self.point.join(relative.trim_start_matches('/'));
        dir.is_dir().then_some(dir)
    }
}

pub(super) fn mounts() -> Vec<Mount> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().filter_map(parse_mount).collect()
}

fn parse_mount(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let _source = right.next();
    let options = right.next().unwrap_or_default();
    let root = unescape(left.get(3)?);
    let point = PathBuf::from(unescape(left.get(4)?));
    match fstype {
        "cgroup2" => Some(Mount {
            v2: true,
            controllers: Vec::new(),
            root,
            point,
        }),
        "cgroup" => Some(Mount {
            v2: false,
            controllers: options.split(',').map(str::to_owned).collect(),
            root,
            point,
        }),
        _ => None,
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[derive(Debug)]
pub(super) struct OwnGroup {
    pub v2: bool,
    pub controllers: Vec<String>,
    pub path: String,
}

pub(super) fn own_groups() -> Vec<OwnGroup> {
    fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?.to_owned();
            Some(OwnGroup {
                v2: id == "0" && controllers.is_empty(),
                controllers: controllers.split(',').map(str::to_owned).collect(),
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_and_v2_mount_lines() {
        let v1 = parse_mount(
            "35 25 0:30 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory",
        )
        .expect("v1");
        assert!(!v1.v2);
        assert!(v1.controllers.iter().any(|c| c == "memory"));
        assert_eq!(v1.point, PathBuf::from("/sys/fs/cgroup/memory"));
        let v2 =
            parse_mount("30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw").expect("v2");
        assert!(v2.v2);
        assert!(parse_mount("22 1 8:1 / / rw - ext4 /dev/sda1 rw").is_none());
    }

    #[test]
    fn group_dirs_are_relative_to_the_mount_root() {
        let mount = Mount {
            v2: false,
            controllers: vec!["memory".into()],
            root: "/".into(),
            point: PathBuf::from("/"),
        };
        assert_eq!(mount.dir_for(Some("/tmp")), Some(PathBuf::from("/tmp")));
        let nested = Mount {
            root: "/a".into(),
            ..mount
        };
        assert_eq!(nested.dir_for(Some("/b")), None, "outside the mount");
    }
}
