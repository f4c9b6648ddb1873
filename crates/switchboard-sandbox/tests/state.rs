//! The service's own files live where no other uid can write. The managed packages directory
//! used to belong to pip's uid (65534) when the service ran as root, so anything the service
//! wrote there by name could be redirected by a symlink that any process of that uid planted:
//! root would then overwrite a file of the attacker's choosing. Now that directory is the
//! service's too (pip installs elsewhere), and links found in it are neither followed nor kept.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
};

use common::Running;
use serde_json::{Value, json};

const TOKEN: &str = "test-admin-token-0123456789";
/// The names the service used to write in the packages directory.
const OLD_NAMES: [&str; 2] = [".switchboard-pending.json.tmp", ".switchboard-pending.json"];

/// A sandbox on `site` (or a fresh directory) that holds `held-pkg` for approval.
async fn sandbox(site: Option<PathBuf>) -> Running {
    common::start_with(|mut config, _| {
        if let Some(site) = site {
            config.packages.dir = site;
        }
        config.packages = config
            .packages
            .clone()
            .with_suspicious(vec!["held-pkg".into()])
            .with_admin_token(TOKEN);
        config
    })
    .await
}

/// Where the service says it keeps the held requests (`/ready`).
async fn pending_file(sandbox: &Running) -> PathBuf {
    let ready = sandbox.get("/ready").await;
    let file = &ready["dependencies"]["packages"]["detail"]["pending_file"];
    PathBuf::from(file.as_str().unwrap())
}

/// Try to plant a symbolic link at `link` pointing to `target` as uid 65534 (pip's); whether
/// it worked.
fn plant_symlink_as_pip_user(target: &Path, link: &Path) -> bool {
    std::process::Command::new("/bin/ln")
        .arg("-s")
        .arg(target)
        .arg(link)
        .uid(65534)
        .gid(65534)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Symlinks planted by pip's uid at the old predictable names do not make root overwrite
/// the file they point to; the held request is saved in a directory only the service's uid
/// can write, outside the packages directory, and a restart still sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_approvals_are_never_written_through_the_packages_dir() {
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the packages directory is handed to another uid only as root");
        return;
    }
    let first = sandbox(None).await;
    let site = common::site(&first);
    let meta = std::fs::metadata(&site).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (0, 0o755),
        "the packages directory is the service's"
    );
    let canary = first.dir.path().join("canary");
    std::fs::write(&canary, "canary\n").unwrap();
    for name in OLD_NAMES {
        let link = site.join(name);
        assert!(
            !plant_symlink_as_pip_user(&canary, &link),
            "uid 65534 can write in {}",
            site.display()
        );
        // As if an older version had left the directory to pip's uid, which planted them.
        std::os::unix::fs::symlink(&canary, &link).unwrap();
    }

    let response = first
        .http
        .post(first.url("/packages"))
        .json(&json!({"package": "held-pkg==0.1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let held: Value = response.json().await.unwrap();
    let id = held["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        "canary\n",
        "root wrote through a symlink that uid 65534 planted"
    );

    let file = pending_file(&first).await;
    assert!(!file.starts_with(&site), "{}", file.display());
    let dir = file.parent().unwrap();
    let dir_meta = std::fs::symlink_metadata(dir).unwrap();
    assert!(dir_meta.is_dir(), "{}", dir.display());
    assert_eq!(dir_meta.uid(), 0, "owned by the service's uid");
    assert_eq!(dir_meta.permissions().mode() & 0o777, 0o700);
    let file_meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(file_meta.is_file());
    assert_eq!(
        (file_meta.uid(), file_meta.permissions().mode() & 0o777),
        (0, 0o600)
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved[0]["id"], id.as_str(), "{saved}");

    // A restart on the same packages directory: the request waits again, and the links at
    // the old names are not followed (not even for reading).
    first.server.shutdown().await.expect("stops cleanly");
    let second = sandbox(Some(site.clone())).await;
    let listed = second.get("/packages/pending").await;
    assert_eq!(listed["pending"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(pending_file(&second).await, file);
    let rejected = second
        .http
        .post(second.url(&format!("/packages/pending/{id}/reject")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status().as_u16(), 200);
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "canary\n");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved, json!([]));
    // The check at start removed the links: no installed package listed them.
    for name in OLD_NAMES {
        assert!(
            std::fs::symlink_metadata(site.join(name)).is_err(),
            "{name} is still there"
        );
    }
}
