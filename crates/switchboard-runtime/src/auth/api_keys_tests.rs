use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use super::*;

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("keys.toml");
    // Replace, so the length or time changes even within the same second.
    let tmp = dir.join("keys.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    path
}

#[test]
fn a_new_key_is_admitted_by_its_entry_and_nothing_else_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, entry) = new_key("ci");
    assert!(
        key.starts_with(PREFIX) && key.len() == PREFIX.len() + 64,
        "{key}"
    );
    let path = write(dir.path(), &format!("{entry}groups = [\"ops\"]\n"));
    let keys = ApiKeys::load(&path).expect("loads");
    let who = keys.check(&key).expect("admitted");
    assert_eq!((who.subject.as_str(), who.method), ("ci", Method::ApiKey));
    assert_eq!(who.groups, ["ops"]);
    assert!(matches!(
        keys.check("sbk_wrong"),
        Err(Rejection::Invalid(_))
    ));
    let (other, _) = new_key("ci");
    assert!(keys.check(&other).is_err(), "another key of the same name");
}

#[test]
fn expired_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, entry) = new_key("old");
    let path = write(
        dir.path(),
        &format!("{entry}expires = \"2020-01-01T00:00:00Z\"\n"),
    );
    let err = ApiKeys::load(&path)
        .expect("loads")
        .check(&key)
        .expect_err("expired");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn malformed_files_name_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, says) in [
        ("[[key]]\nname = \"a\"\nsha256 = \"abc\"\n", "64 hex digits"),
        (
            "[[key]]\nname = \"a\"\nsha256 = \"zz\"\nextra = 1\n",
            "unknown field",
        ),
        ("[[key]]\nname = \"\"\nsha256 = \"00\"\n", "without a name"),
        ("[[key]\n", "keys.toml"),
    ] {
        let path = write(dir.path(), text);
        let err = ApiKeys::load(&path).expect_err("refused").to_string();
        assert!(
            err.contains(says) && err.contains("--api-keys"),
            "{text}: {err}"
        );
    }
    let missing = ApiKeys::load(&dir.path().join("none.toml")).expect_err("refused");
    assert!(missing.to_string().contains("cannot read"), "{missing}");
}

#[test]
fn the_file_is_reread_when_it_changes_and_a_broken_edit_keeps_the_old_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, first_entry) = new_key("first");
    let (second, second_entry) = new_key("second");
    let path = write(dir.path(), &first_entry);
    let keys = ApiKeys::load(&path).expect("loads");
    assert!(keys.check(&second).is_err());
    write(dir.path(), &format!("{first_entry}{second_entry}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while keys.check(&second).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new key is admitted after a reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    write(dir.path(), "[[key]\nbroken");
    // Let a recheck happen: after it the old keys still work.
    keys.file.as_ref().expect("a file").look_again();
    assert!(keys.check(&first).is_ok() && keys.check(&second).is_ok());
}
