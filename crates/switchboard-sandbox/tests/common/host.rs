//! Changing the host a sandbox starts on, for one scenario: a private mount namespace in which
//! the cgroup hierarchies are read-only (as in a container) or a file system is mounted under a
//! read-only tree, and a seccomp filter under which a system call looks missing (an older
//! kernel). Each scenario runs in a child process of its own (the test binary run again, see
//! [`run_scenarios`]): the changes must not reach other tests, and both have to be made while
//! the process still has a single thread.

use std::{collections::BTreeMap, ffi::CString, path::Path, process::Command};

use seccompiler::{SeccompAction, SeccompFilter};

const SCENARIO: &str = "SWITCHBOARD_SANDBOX_HOST_SCENARIO";

/// One scenario: its name and a function that panics when it fails.
pub type Scenario = (&'static str, fn());

/// The `main` of a scenario test binary: with no scenario named in the environment, run each
/// in a child process and report like libtest; in a child, run the one named.
pub fn run_scenarios(scenarios: &[Scenario]) {
    if let Some(name) = std::env::var_os(SCENARIO) {
        let (_, run) = scenarios
            .iter()
            .find(|(n, _)| name == *n)
            .expect("a known scenario");
        run();
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let exe = std::env::current_exe().expect("the test binary");
    let mut failed = Vec::new();
    for (name, _) in scenarios {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let output = Command::new(&exe)
            .env(SCENARIO, name)
            .output()
            .expect("running the scenario");
        if output.status.success() {
            println!("test {name} ... ok");
        } else {
            println!(
                "test {name} ... FAILED\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// This process gets a mount namespace of its own, with no propagation back to the host's.
pub fn private_mounts() {
    // SAFETY: plain system calls; the process has one thread (see the module documentation).
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare(CLONE_NEWNS)");
        let r = libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        assert_eq!(r, 0, "making mounts private");
    }
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL")
}

/// Mount a tmpfs at `dir` (in the private namespace).
pub fn mount_tmpfs(dir: &Path, options: &str) {
    let (dir, options) = (cstr(dir), CString::new(options).expect("no NUL"));
    // SAFETY: NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            dir.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    assert_eq!(
        r,
        0,
        "mounting a tmpfs: {}",
        std::io::Error::last_os_error()
    );
}

/// Make every cgroup hierarchy read-only, as container runtimes mount `/sys/fs/cgroup`.
pub fn read_only_cgroups() {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mut made = 0;
    for line in table.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if !right.starts_with("cgroup") {
            continue;
        }
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let point = cstr(Path::new(point));
        // SAFETY: as above.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                point.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                std::ptr::null(),
            )
        };
        assert_eq!(
            r,
            0,
            "read-only {point:?}: {}",
            std::io::Error::last_os_error()
        );
        made += 1;
    }
    assert!(made > 0, "this host has cgroup hierarchies to hide");
}

/// From now on, these system calls fail with `ENOSYS` in this process and everything it
/// starts, sandboxes included, as on a kernel without them.
pub fn missing_syscalls(calls: &[i64]) {
    let rules = calls
        .iter()
        .map(|&nr| (nr, Vec::new()))
        .collect::<BTreeMap<_, _>>();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        std::env::consts::ARCH
            .try_into()
            .expect("a supported architecture"),
    )
    .expect("a filter");
    let program: seccompiler::BpfProgram = filter.try_into().expect("compiles");
    seccompiler::apply_filter(&program).expect("installed");
}

/// A multi-threaded runtime for one scenario (created after the changes above).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}
