//! The mount plan: read-only trees all the way down, noexec scratch, the `/proc` masks.

use super::*;

fn plan(read_only: &RecursiveReadOnly, exec_scratch: bool) -> Plan {
    Plan::build(RootLayout {
        python: Path::new("/usr/bin/python3"),
        python_args: &[],
        ro_paths: &[],
        packages_dir: None,
        scratch_bytes: 1 << 20,
        exec_scratch,
        read_only,
        drop_groups: false,
        rlimits: Vec::new(),
        user_limits: Vec::new(),
        landlock: None,
        seccomp: Vec::new(),
    })
    .expect("a plan")
}

fn text(c: &CString) -> &str {
    c.to_str().expect("UTF-8")
}

/// (remounted read-only, optional) targets and the `mount_setattr` targets.
fn read_only_targets(steps: &[Step]) -> (Vec<(String, bool)>, Vec<String>) {
    let (mut remounts, mut trees) = (Vec::new(), Vec::new());
    for step in steps {
        let (step, optional) = match step {
            Step::Optional(inner) => (inner.as_ref(), true),
            other => (other, false),
        };
        match step {
            Step::Remount { target, .. } => remounts.push((text(target).to_owned(), optional)),
            Step::ReadOnlyTree { target } => trees.push(text(target).to_owned()),
            _ => {}
        }
    }
    (remounts, trees)
}

#[test]
fn without_mount_setattr_every_submount_is_remounted() {
    // Two "mount points" under /usr as the host's table might list them (real directories,
    // so that their flags can be read), one beside it.
    let table = RecursiveReadOnly::Remount {
        mount_points: vec!["/usr/share".into(), "/usr/lib".into(), "/usrx".into()],
    };
    let (remounts, trees) = read_only_targets(&plan(&table, false).steps);
    assert!(trees.is_empty());
    assert!(
        remounts.contains(&("/tmp/usr".into(), false)),
        "{remounts:?}"
    );
    assert!(
        remounts.contains(&("/tmp/usr/lib".into(), true)),
        "{remounts:?}"
    );
    assert!(
        remounts.contains(&("/tmp/usr/share".into(), true)),
        "{remounts:?}"
    );
    assert!(
        !remounts.iter().any(|(t, _)| t.contains("usrx")),
        "{remounts:?}"
    );
}

#[test]
fn with_mount_setattr_each_tree_is_one_call() {
    let (remounts, trees) = read_only_targets(&plan(&RecursiveReadOnly::MountSetattr, false).steps);
    assert!(remounts.is_empty(), "{remounts:?}");
    assert!(trees.contains(&"/tmp/usr".to_owned()), "{trees:?}");
}

fn scratch_flags(plan: &Plan) -> Vec<(String, u64)> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::Tmpfs { target, flags, .. } => Some((text(target).to_owned(), *flags)),
            _ => None,
        })
        .collect()
}

#[test]
fn scratch_is_noexec_unless_allowed() {
    let noexec = scratch_flags(&plan(&RecursiveReadOnly::MountSetattr, false));
    assert_eq!(noexec.len(), 3, "/work, /tmp, /dev/shm: {noexec:?}");
    assert!(
        noexec.iter().all(|(_, f)| f & libc::MS_NOEXEC != 0),
        "{noexec:?}"
    );
    let exec = scratch_flags(&plan(&RecursiveReadOnly::MountSetattr, true));
    assert!(
        exec.iter().all(|(_, f)| f & libc::MS_NOEXEC == 0),
        "{exec:?}"
    );
}

#[test]
fn proc_is_masked_after_it_is_made_read_only() {
    let plan = plan(&RecursiveReadOnly::MountSetattr, false);
    let mut order = Vec::new();
    for step in &plan.proc_steps {
        let Step::Optional(inner) = step else {
            panic!("every /proc step is optional (entries differ between kernels)");
        };
        match inner.as_ref() {
            Step::BindPath { source, target } if text(source) == "/dev/null" => {
                order.push(format!("mask {}", text(target)));
            }
            Step::Remount { target, flags } => {
                assert_eq!(*flags, mounts::PROC_FLAGS);
                order.push(format!("ro {}", text(target)));
            }
            Step::Tmpfs { target, flags, .. } => {
                assert!(flags & libc::MS_RDONLY != 0);
                order.push(format!("empty {}", text(target)));
            }
            _ => {}
        }
    }
    let at = |entry: &str| order.iter().position(|o| o == entry).expect(entry);
    assert!(at("ro /proc/sys") < at("mask /proc/sys/kernel/random/boot_id"));
    for entry in [
        "mask /proc/cmdline",
        "mask /proc/config.gz",
        "empty /proc/acpi",
        "ro /proc/sysrq-trigger",
    ] {
        at(entry);
    }
}
