//! Settings validation: safe defaults, errors that name the setting.

use super::*;

fn config(raw: RawConfig) -> Result<Config, Error> {
    Config::from_parts(
        RawConfig {
            packages_dir: raw.packages_dir.clone().or(Some("/tmp/p".into())),
            ..raw
        },
        HttpSettings::default(),
    )
}

#[test]
fn defaults_are_safe() {
    let c = config(RawConfig::default()).expect("defaults");
    assert_eq!(c.limits.default_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.memory_bytes, 256 << 20);
    assert_eq!(c.pool_size, 6);
    assert!(!c.packages.allow_source_builds);
    assert_eq!(
        c.packages.state_dir().expect("a default"),
        PathBuf::from("/tmp/p.state"),
        "a sibling of the packages directory"
    );
}

#[test]
fn errors_name_the_setting() {
    let err = config(RawConfig {
        memory_mib: Some(0),
        ..Default::default()
    })
    .expect_err("zero memory");
    assert!(
        err.to_string()
            .contains("--memory-mib / SANDBOX_MEMORY_MIB"),
        "{err}"
    );
    let err = config(RawConfig {
        offline: Some(true),
        ..Default::default()
    })
    .expect_err("offline without wheels");
    assert!(err.to_string().contains("wheel_dir"), "{err}");
    let err = config(RawConfig {
        default_timeout_seconds: Some(100.0),
        ..Default::default()
    })
    .expect_err("default above max");
    assert!(
        err.to_string().contains("SANDBOX_DEFAULT_TIMEOUT_SECONDS"),
        "{err}"
    );
    let err = config(RawConfig {
        state_dir: Some("state".into()),
        ..Default::default()
    })
    .expect_err("a relative state directory");
    assert!(err.to_string().contains("SANDBOX_STATE_DIR"), "{err}");
}
