//! A wrong setting stops the binary with one line naming the setting and the accepted form.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::process::Command;

fn switchboard(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn first_error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or("")
}

#[test]
fn bad_flag_value_names_flag_and_form() {
    let (code, err) = switchboard(&["time-client", "--listen", "localhost"], &[]);
    assert_eq!(code, 2);
    let line = first_error_line(&err);
    assert!(line.contains("--listen"), "{err}");
    assert!(line.contains("IP:PORT"), "{err}");
}

#[test]
fn bad_environment_value_names_the_setting() {
    let (code, err) = switchboard(&["time-client"], &[("TIME_CLIENT_LISTEN", "8003")]);
    assert_eq!(code, 2);
    assert!(first_error_line(&err).contains("--listen"), "{err}");

    let (code, err) = switchboard(
        &["time-client"],
        &[("TIME_CLIENT_DEFAULT_TIMEZONE", "Moon/Base")],
    );
    assert_eq!(code, 2);
    let line = first_error_line(&err);
    assert!(
        line.contains("TIME_CLIENT_DEFAULT_TIMEZONE") && line.contains("IANA"),
        "{err}"
    );
}

#[test]
fn config_file_errors_are_one_line_with_file_section_and_key() {
    let dir = std::env::temp_dir().join(format!("sb-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("switchboard.toml");

    std::fs::write(&path, "[time-client]\nlisten = 8003\n").unwrap();
    let (code, err) = switchboard(&["--config", path.to_str().unwrap(), "time-client"], &[]);
    assert_eq!(code, 2);
    let line = first_error_line(&err);
    assert!(
        line.contains("switchboard.toml")
            && line.contains("[time-client]")
            && line.contains("listen"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    std::fs::write(&path, "[time-clinet]\n").unwrap();
    let (code, err) = switchboard(&["--config", path.to_str().unwrap(), "time-client"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown section [time-clinet]"), "{err}");

    std::fs::write(&path, "[http]\nshutdown_grace_seconds = -1\n").unwrap();
    let (code, err) = switchboard(&["--config", path.to_str().unwrap(), "time-client"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("shutdown_grace_seconds") && err.contains("positive number of seconds"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
