//! The installer's sandbox, with a program that is not pip: what it can write, whether it
//! keeps a network, whether what it leaves behind survives.
#![allow(clippy::unwrap_used)]

use std::{os::unix::fs::PermissionsExt, process::Stdio, time::Duration};

use super::*;

const NOBODY: (u32, u32) = (65534, 65534);

/// Run `program` with /usr/bin/python3 confined to `scratch` (as the installer uid when root).
async fn run(
    scratch: &Path,
    offline: bool,
    program: &str,
    timeout: Duration,
) -> Option<std::process::Output> {
    let root = is_root();
    if root {
        std::os::unix::fs::chown(scratch, Some(NOBODY.0), Some(NOBODY.1)).unwrap();
    }
    let mut confinement = Confinement::new(root.then_some(NOBODY), scratch, offline, &[443], 30);
    let mut command = tokio::process::Command::new("/usr/bin/python3");
    command
        .args(["-I", "-c", program])
        .current_dir(scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: as in pip.rs.
    unsafe {
        command.pre_exec(move || confinement.apply());
    }
    let child = command.spawn().unwrap();
    tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .ok()
        .map(Result::unwrap)
}

#[tokio::test]
async fn writes_only_its_scratch_directory_and_has_no_network_offline() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let program = format!(
        r#"
import os, socket
open("inside", "w").write("ok")
try:
    open({outside:?} + "/planted", "w").write("x"); print("wrote outside")
except OSError as e: print("outside refused", e.errno)
try:
    socket.create_connection(("1.1.1.1", 443), timeout=2); print("connected")
except OSError as e: print("network refused")
print("pid", os.getpid())
print("processes", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
"#,
        outside = outside.path().display().to_string()
    );
    let output = run(scratch.path(), true, &program, Duration::from_secs(30))
        .await
        .expect("finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("outside refused"), "{stdout}");
    assert!(stdout.contains("network refused"), "{stdout}");
    assert!(
        stdout.contains("pid 1\n"),
        "pip is pid 1 of its own namespace: {stdout}"
    );
    assert!(
        stdout.contains("processes [1]\n"),
        "it sees no other process: {stdout}"
    );
    assert!(scratch.path().join("inside").exists());
    assert!(!outside.path().join("planted").exists());
}

#[tokio::test]
async fn nothing_it_starts_outlives_it_or_its_timeout() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("daemon-alive");
    // A daemon (double fork, new session) that writes a marker every 50 ms, then the main
    // process hangs: the timeout must take the daemon with it.
    let program = format!(
        r#"
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            open({marker:?}, "w").write(str(time.time())); time.sleep(0.05)
    os._exit(0)
print("started", flush=True)
time.sleep(3600)
"#,
        marker = marker.display().to_string()
    );
    let finished = run(scratch.path(), true, &program, Duration::from_secs(3)).await;
    assert!(finished.is_none(), "the program hangs until its timeout");
    // Dropping the child killed the waiting process; pip's pid namespace goes with it. The
    // marker must stop changing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = std::fs::read_to_string(&marker).unwrap_or_default();
    let mut stable = 0;
    while stable < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon is still writing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = std::fs::read_to_string(&marker).unwrap_or_default();
        if now == last {
            stable += 1
        } else {
            stable = 0;
            last = now;
        }
    }
}
