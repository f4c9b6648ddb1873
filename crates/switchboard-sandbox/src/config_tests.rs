//! Settings validation: safe defaults, errors that name the setting.

use super::*;
use crate::isolation::Layer;

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
    assert_ne!(
        c.host_uid, c.installer_uid,
        "programs and pip never share a uid"
    );
}

#[test]
fn programs_and_pip_never_share_a_uid() {
    for (host, installer) in [
        (Some(65534), None),
        (Some(70000), Some(70000)),
        (Some(0), None),
    ] {
        let err = config(RawConfig {
            host_uid: host,
            installer_uid: installer,
            ..RawConfig::default()
        })
        .expect_err("refused")
        .to_string();
        assert!(
            err.contains("host_uid") && err.contains("installer_uid"),
            "{err}"
        );
    }
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
    for (raw, flag) in [
        (
            RawConfig {
                preinstall: Some(vec!["numpy>=2".into()]),
                ..Default::default()
            },
            "SANDBOX_PREINSTALL",
        ),
        (
            RawConfig {
                session_idle_seconds: Some(7200),
                ..Default::default()
            },
            "SANDBOX_SESSION_IDLE_SECONDS",
        ),
        (
            RawConfig {
                max_sessions_per_caller: Some(0),
                ..Default::default()
            },
            "SANDBOX_MAX_SESSIONS_PER_CALLER",
        ),
    ] {
        let err = config(raw).expect_err(flag);
        assert!(err.to_string().contains(flag), "{err}");
    }
}

#[test]
fn weaker_isolation_is_named_explicitly() {
    let c = config(RawConfig::default()).expect("defaults");
    assert!(
        c.allow_weaker_isolation.is_empty(),
        "nothing weaker by default"
    );
    assert!(!c.allow_exec_scratch, "scratch is noexec by default");
    let c = config(RawConfig {
        allow_weaker_isolation: Some(vec!["landlock".into(), "cgroups".into(), "memory".into()]),
        ..Default::default()
    })
    .expect("known layers");
    assert_eq!(
        c.allow_weaker_isolation,
        [
            Layer::Landlock,
            Layer::Memory,
            Layer::Swap,
            Layer::Pids,
            Layer::Cpu
        ]
    );
    for bad in ["memroy", "seccomp"] {
        let err = config(RawConfig {
            allow_weaker_isolation: Some(vec![bad.into()]),
            ..Default::default()
        })
        .expect_err("not a layer that can be weakened");
        let msg = err.to_string();
        assert!(
            msg.contains("--allow-weaker-isolation / SANDBOX_ALLOW_WEAKER_ISOLATION")
                && msg.contains(bad),
            "{msg}"
        );
    }
}

#[test]
fn flags_and_toml_spell_the_new_settings() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        raw: RawConfig,
    }
    let cli = Cli::try_parse_from([
        "sandbox",
        "--allow-weaker-isolation",
        "memory,landlock",
        "--allow-exec-scratch",
    ])
    .expect("parses");
    assert_eq!(
        cli.raw.allow_weaker_isolation,
        Some(vec!["memory".to_owned(), "landlock".to_owned()])
    );
    assert_eq!(
        cli.raw.allow_exec_scratch,
        Some(true),
        "the flag alone means true"
    );
    let file = switchboard_runtime::config::ConfigFile::parse(
        std::path::Path::new("switchboard.toml"),
        "[sandbox]\nallow_weaker_isolation = [\"cgroups\"]\nallow_exec_scratch = false\n",
    )
    .expect("TOML");
    let toml: RawConfig =
        switchboard_runtime::config::layer(&RawConfig::default(), Some(&file), "sandbox")
            .expect("known keys");
    assert_eq!(
        toml.allow_weaker_isolation,
        Some(vec!["cgroups".to_owned()])
    );
    assert_eq!(toml.allow_exec_scratch, Some(false));
}

#[test]
fn the_admin_token_can_come_from_a_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("token");
    std::fs::write(&file, "from-a-secret-mount-0123\n").expect("token file");
    let c = config(RawConfig {
        admin_token: Some(format!("file:{}", file.display())),
        ..RawConfig::default()
    })
    .expect("a token from a file");
    assert_eq!(
        c.packages.admin_token.as_deref(),
        Some("from-a-secret-mount-0123")
    );
    let missing = config(RawConfig {
        admin_token: Some("file:/nonexistent/token".into()),
        ..RawConfig::default()
    })
    .expect_err("an unreadable file is an error");
    assert!(missing.to_string().contains("admin_token"), "{missing}");
}
