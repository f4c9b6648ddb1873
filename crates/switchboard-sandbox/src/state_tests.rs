//! The state directory's checks, and files that are never followed or trusted.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).expect("exists").mode() & 0o7777
}

fn root() -> bool {
    euid() == 0
}

#[test]
fn created_private_and_files_replaced_atomically() {
    let base = tempfile::tempdir().expect("temporary directory");
    let path = base.path().join("state");
    let state = StateDir::open(&path).expect("created");
    assert_eq!(mode(&path), 0o700);
    assert_eq!(state.read("f", 100).expect("readable"), None);
    state.write("f", b"one").expect("written");
    state.write("f", b"two").expect("replaced");
    assert_eq!(
        state.read("f", 100).expect("readable").as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(mode(&path.join("f")), 0o600);
    let names: Vec<_> = std::fs::read_dir(&path)
        .expect("listable")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["f"], "no temporary file is left");
    assert!(state.read("f", 2).is_err(), "larger than allowed");
    assert!(state.write("../f", b"x").is_err(), "names only, no paths");
}

#[test]
fn a_readable_directory_of_ours_is_made_private() {
    let base = tempfile::tempdir().expect("temporary directory");
    let path = base.path().join("state");
    std::fs::create_dir(&path).expect("created");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    StateDir::open(&path).expect("accepted");
    assert_eq!(mode(&path), 0o700);
}

#[test]
fn unsafe_directories_are_refused() {
    let base = tempfile::tempdir().expect("temporary directory");
    let real = base.path().join("real");
    std::fs::create_dir(&real).expect("created");
    let link = base.path().join("link");
    symlink(&real, &link).expect("symlink");
    let err = StateDir::open(&link).expect_err("a symbolic link");
    assert!(err.contains("symbolic link"), "{err}");

    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = StateDir::open(&real).expect_err("writable by others");
    assert!(err.contains("writable by other users"), "{err}");

    // An ancestor anyone may write (and not sticky) could swap the directory.
    let inside = real.join("state");
    let err = StateDir::open(&inside).expect_err("a writable ancestor");
    assert!(err.contains("lets another user replace"), "{err}");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    StateDir::open(&inside).expect("a sticky ancestor, like /tmp, is fine");
    // Writable by the service's own group (a Kubernetes fsGroup volume): no other user.
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o2775)).expect("chmod");
    StateDir::open(&inside).expect("an ancestor of the service's group");

    assert!(StateDir::open(Path::new("relative/state")).is_err());
    let file = base.path().join("file");
    std::fs::write(&file, b"").expect("written");
    let err = StateDir::open(&file).expect_err("not a directory");
    assert!(err.contains("not a directory"), "{err}");

    if root() {
        std::os::unix::fs::chown(&real, None, Some(65534)).expect("chgrp");
        let err = StateDir::open(&inside).expect_err("writable by another group");
        assert!(err.contains("lets another user replace"), "{err}");
        let theirs = base.path().join("theirs");
        std::fs::create_dir(&theirs).expect("created");
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        let err = StateDir::open(&theirs).expect_err("another uid's");
        assert!(err.contains("belongs to uid 65534"), "{err}");
        let err = StateDir::open(&theirs.join("state")).expect_err("under another uid's");
        assert!(err.contains("lets another user replace"), "{err}");
    }
}

#[test]
fn links_and_foreign_files_are_neither_followed_nor_trusted() {
    let base = tempfile::tempdir().expect("temporary directory");
    let canary = base.path().join("canary");
    std::fs::write(&canary, b"canary").expect("written");
    let state = StateDir::open(&base.path().join("state")).expect("created");

    symlink(&canary, state.file("f")).expect("symlink");
    let err = state.read("f", 100).expect_err("a symbolic link");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    state.write("f", b"new").expect("written");
    assert_eq!(std::fs::read(&canary).expect("readable"), b"canary");
    assert!(
        std::fs::symlink_metadata(state.file("f"))
            .expect("exists")
            .is_file()
    );

    std::fs::hard_link(&canary, state.file("g")).expect("hard link");
    let err = state.read("g", 100).expect_err("a hard link");
    assert!(err.to_string().contains("hard links"), "{err}");

    let fifo = CString::new(state.file("p").into_os_string().into_encoded_bytes()).expect("no NUL");
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let err = state.read("p", 100).expect_err("a FIFO");
    assert!(err.to_string().contains("not a regular file"), "{err}");

    if root() {
        std::fs::write(state.file("h"), b"x").expect("written");
        std::os::unix::fs::chown(state.file("h"), Some(65534), None).expect("chown");
        let err = state.read("h", 100).expect_err("another uid's file");
        assert!(err.to_string().contains("uid 65534"), "{err}");
    }
}
