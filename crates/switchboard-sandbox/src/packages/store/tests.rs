//! The store with distributions staged by hand (as pip's `--target` leaves them).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::*;
use crate::packages::pip::Pin;

fn pin(name: &str, version: &str) -> Pin {
    Pin {
        name: name.into(),
        version: version.into(),
        sha256: None,
    }
}

/// Stage `name` `version` with `files` (path, contents) and a RECORD listing them.
fn stage(staging: &Path, name: &str, version: &str, files: &[(&str, &str)]) {
    let info = format!("{}-{version}.dist-info", name.replace('-', "_"));
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect();
    all.push((
        format!("{info}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"),
    ));
    let mut record = String::new();
    for (path, contents) in &all {
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(contents.as_bytes()));
        record.push_str(&format!("{path},sha256={digest},{}\n", contents.len()));
        let file = staging.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, contents).unwrap();
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    std::fs::write(staging.join(format!("{info}/RECORD")), record).unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    state: StateDir,
    store: Store,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    std::fs::create_dir(&dir).unwrap();
    let state = StateDir::open(&tmp.path().join("state")).unwrap();
    let store = Store::open(dir.clone(), &state);
    Fixture {
        _tmp: tmp,
        dir,
        state,
        store,
    }
}

impl Fixture {
    fn add(&self, name: &str, version: &str, files: &[(&str, &str)]) -> Result<(), String> {
        let staging = tempfile::tempdir().unwrap();
        stage(staging.path(), name, version, files);
        self.store
            .add(&self.state, staging.path(), &[pin(name, version)])
    }

    fn reopen(self) -> Self {
        let store = Store::open(self.dir.clone(), &self.state);
        Self { store, ..self }
    }
}

#[test]
fn a_distribution_cannot_take_over_another_ones_module_or_metadata() {
    let f = fixture();
    f.add(
        "demo-pkg",
        "1.0.0",
        &[("demo_pkg/__init__.py", "VALUE = 1\n")],
    )
    .unwrap();

    let overwrite = f.add("evil", "1.0", &[("demo_pkg/__init__.py", "pwned\n")]);
    assert!(
        overwrite
            .unwrap_err()
            .contains("would overwrite demo_pkg/__init__.py of demo-pkg")
    );
    let add_module = f.add("evil", "1.0", &[("demo_pkg/extra.py", "pwned\n")]);
    assert!(add_module.unwrap_err().contains("module 'demo_pkg'"));
    let shadow = f.add("evil", "1.0", &[("demo_pkg.py", "pwned\n")]);
    assert!(
        shadow.is_err(),
        "a module file of the same name shadows the package"
    );
    let forged = f.add(
        "evil",
        "1.0",
        &[(
            "numpy-1.26.4.dist-info/METADATA",
            "Name: numpy\nVersion: 1.26.4\n",
        )],
    );
    assert!(
        forged
            .unwrap_err()
            .contains("metadata of another distribution")
    );

    assert_eq!(
        std::fs::read_to_string(f.dir.join("demo_pkg/__init__.py")).unwrap(),
        "VALUE = 1\n"
    );
    let names: Vec<String> = f.store.installed().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["demo-pkg"]);
    // Namespace packages are shared file by file.
    f.add("ns-a", "1.0", &[("nsp/a/__init__.py", "")]).unwrap();
    f.add("ns-b", "1.0", &[("nsp/b/__init__.py", "")]).unwrap();
}

#[test]
fn an_upgrade_replaces_the_old_files() {
    let f = fixture();
    f.add(
        "demo-pkg",
        "1.0.0",
        &[("demo_pkg/__init__.py", "1"), ("demo_pkg/old.py", "")],
    )
    .unwrap();
    f.add("demo-pkg", "2.0.0", &[("demo_pkg/__init__.py", "2")])
        .unwrap();
    assert!(!f.dir.join("demo_pkg/old.py").exists());
    assert!(!f.dir.join("demo_pkg-1.0.0.dist-info").exists());
    assert_eq!(f.store.installed()[0].version, "2.0.0");
}

#[test]
fn links_and_files_not_matching_their_record_are_refused() {
    let f = fixture();
    let staging = tempfile::tempdir().unwrap();
    stage(
        staging.path(),
        "linky",
        "1.0",
        &[("linky/__init__.py", "x")],
    );
    std::fs::remove_file(staging.path().join("linky/__init__.py")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", staging.path().join("linky/__init__.py")).unwrap();
    let linked = f
        .store
        .add(&f.state, staging.path(), &[pin("linky", "1.0")]);
    assert!(linked.unwrap_err().contains("link"));

    let staging = tempfile::tempdir().unwrap();
    stage(
        staging.path(),
        "changed",
        "1.0",
        &[("changed/__init__.py", "x")],
    );
    std::fs::write(staging.path().join("changed/__init__.py"), "y").unwrap();
    let changed = f
        .store
        .add(&f.state, staging.path(), &[pin("changed", "1.0")]);
    assert!(changed.unwrap_err().contains("does not match"));
    assert!(f.store.installed().is_empty());
    assert_eq!(
        std::fs::read_dir(&f.dir).unwrap().count(),
        0,
        "nothing was left behind"
    );
}

#[test]
fn the_check_at_start_removes_changed_distributions_and_unknown_files() {
    let f = fixture();
    f.add("good", "1.0", &[("good/__init__.py", "ok")]).unwrap();
    f.add(
        "demo-pkg",
        "1.0.0",
        &[("demo_pkg/__init__.py", "VALUE = 1\n")],
    )
    .unwrap();
    std::fs::write(f.dir.join("demo_pkg/__init__.py"), "pwned").unwrap();
    std::fs::create_dir(f.dir.join("planted")).unwrap();
    std::fs::write(f.dir.join("planted/__init__.py"), "pwned").unwrap();

    let f = f.reopen();
    let names: Vec<String> = f.store.installed().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["good"]);
    let report = f.store.describe();
    let checked = &report["checked_at_start"];
    assert_eq!(checked["refused"][0]["name"], "demo-pkg", "{report}");
    assert!(checked["removed"].as_u64().unwrap() >= 3, "{report}");
    assert!(!f.dir.join("demo_pkg").exists());
    assert!(!f.dir.join("planted").exists());
    assert!(f.dir.join("good/__init__.py").exists());
}
