//! A file system mounted under a tree the sandbox binds read-only is read-only inside the
//! sandbox too. Before, the bind copied the mounts under `/usr` or the packages directory
//! (`MS_REC`) but the read-only remount covered only the top one: a tmpfs mounted there stayed
//! writable to programs. Each scenario runs in a child process with a private mount namespace
//! in which it mounts tmpfs under `/usr/local` and, two deep, under the packages directory (see
//! `common::host`); once with `mount_setattr` as this kernel has it, once with it answering
//! `ENOSYS` as on kernels before 5.12 (the remount-each-submount fallback; container seccomp
//! profiles refuse it with `EPERM`, which takes the same path).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::host;
use serde_json::{Value, json};
use switchboard_sandbox::SandboxService;

fn main() {
    host::run_scenarios(&[
        ("submounts_are_read_only", || {
            submounts_are_read_only("mount_setattr")
        }),
        ("submounts_are_read_only_without_mount_setattr", || {
            host::missing_syscalls(&[libc::SYS_mount_setattr]);
            submounts_are_read_only("each mount under a read-only bind remounted");
        }),
    ]);
}

/// Programs see these writable, for the host's part: only the mount can refuse them.
const MOUNTED: &[&str] = &["/usr/local", "/packages/sub", "/packages/sub/deeper"];

const PROGRAM: &str = r#"import os
for path in ["/usr/local", "/packages/sub", "/packages/sub/deeper"]:
    flags = "ro" if os.statvfs(path).f_flag & os.ST_RDONLY else "RW"
    try:
        open(path + "/planted", "w").write("x")
        print(path, flags, "WRITTEN")
    except OSError as e:
        print(path, flags, "refused", e.errno)
"#;

fn submounts_are_read_only(how: &str) {
    host::private_mounts();
    let dir = common::shared_tempdir();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    host::mount_tmpfs(&site.join("sub"), "mode=1777,size=1m");
    std::fs::create_dir(site.join("sub/deeper")).unwrap();
    host::mount_tmpfs(&site.join("sub/deeper"), "mode=1777,size=1m");
    host::mount_tmpfs(std::path::Path::new("/usr/local"), "mode=1777,size=1m");

    host::runtime().block_on(async {
        let mut config = switchboard_sandbox::Config::with_packages_dir(site.clone());
        config.pool_size = 2;
        let server = switchboard_testkit::spawn::<SandboxService>(config).await;
        let http = reqwest::Client::new();
        let ready: Value = http
            .get(format!("{}/ready", server.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let binds = &ready["dependencies"]["isolation"]["detail"]["read_only_binds"];
        assert!(binds.as_str().unwrap().contains(how), "{binds}");
        let ran: Value = http
            .post(format!("{}/execute", server.url()))
            .json(&json!({ "code": PROGRAM }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stdout = ran["stdout"].as_str().unwrap();
        for path in MOUNTED {
            // EROFS (30), not Landlock's EACCES: the mount itself refuses.
            assert!(
                stdout.contains(&format!("{path} ro refused 30")),
                "{path} is read-only in the sandbox: {ran}"
            );
        }
        assert!(!stdout.contains("WRITTEN"), "{ran}");
        server.shutdown().await.unwrap();
    });
    for path in [site.join("sub/planted"), site.join("sub/deeper/planted")] {
        assert!(!path.exists(), "{} was written", path.display());
    }
}
