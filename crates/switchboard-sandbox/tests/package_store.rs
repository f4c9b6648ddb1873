//! The package store belongs to the service and its manifest is the truth: an allowed wheel
//! cannot take over another distribution's module, forge a distribution, or survive a change
//! at rest. (Each of these passed an attacker through on the store pip's uid owned, where any
//! `*.dist-info` found on disk counted as installed.)
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Running, wheels};
use serde_json::{Value, json};
use switchboard_protocol::sandbox::{InstallOutcome, InstallStatus};

async fn sandbox(site: Option<std::path::PathBuf>, wheel_dir: std::path::PathBuf) -> Running {
    common::start_with(|mut config, _| {
        if let Some(site) = site {
            config.packages.dir = site;
        }
        let mut packages = config.packages.clone().with_wheel_dir(wheel_dir, true);
        packages.install_timeout = std::time::Duration::from_secs(120);
        config.packages = packages;
        config
    })
    .await
}

fn wheels_dir() -> tempfile::TempDir {
    let dir = common::shared_tempdir();
    let d = dir.path();
    wheels::build(d, "demo-pkg", "1.0.0", "VALUE = '1.0.0'\n", &[]);
    // Overwrites demo-pkg's module.
    wheels::build_with_files(
        d,
        "hijack",
        "1.0",
        &[("demo_pkg/__init__.py", "VALUE = 'hijacked'\n")],
    );
    // Adds a submodule to demo-pkg's package.
    wheels::build_with_files(
        d,
        "sneak",
        "1.0",
        &[("demo_pkg/extra.py", "X = 'sneaked'\n")],
    );
    // Claims to be numpy 1.26.4 (pip refuses a second .dist-info in a wheel, but moves what
    // the wheel's .data/purelib holds into the site directory as it is).
    wheels::build_with_files(
        d,
        "forger",
        "1.0",
        &[
            (
                "forger-1.0.data/purelib/numpy-1.26.4.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n",
            ),
            (
                "forger-1.0.data/purelib/numpy/__init__.py",
                "print('forged numpy')\n",
            ),
        ],
    );
    dir
}

async fn install(sandbox: &Running, package: &str) -> InstallOutcome {
    let response = sandbox
        .http
        .post(sandbox.url("/packages"))
        .json(&json!({ "package": package }))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_wheel_cannot_take_over_another_or_forge_one() {
    let wheels = wheels_dir();
    let sandbox = sandbox(None, wheels.path().to_owned()).await;
    let demo = install(&sandbox, "demo-pkg").await;
    assert_eq!(demo.status, InstallStatus::Installed, "{demo:?}");

    for (package, why) in [
        ("hijack", "would overwrite demo_pkg/__init__.py of demo-pkg"),
        ("sneak", "would add to the module 'demo_pkg'"),
        ("forger", "metadata of another distribution"),
    ] {
        let outcome = install(&sandbox, package).await;
        assert_eq!(
            outcome.status,
            InstallStatus::Failed,
            "{package}: {outcome:?}"
        );
        assert!(
            outcome.message.contains(why),
            "{package}: {}",
            outcome.message
        );
    }
    let numpy = install(&sandbox, "numpy==1.26.4").await;
    assert_ne!(
        numpy.status,
        InstallStatus::Installed,
        "a forged numpy counts as installed: {numpy:?}"
    );

    let result = sandbox
        .run("import demo_pkg; print(demo_pkg.VALUE)\ntry:\n    import demo_pkg.extra\nexcept ImportError: print('no extra')\ntry:\n    import numpy\nexcept ImportError: print('no numpy')\n")
        .await;
    assert_eq!(result.stdout, "1.0.0\nno extra\nno numpy\n", "{result:?}");
    let listed: Value = sandbox.get("/packages").await;
    assert_eq!(
        listed["packages"],
        json!([{"name": "demo-pkg", "version": "1.0.0"}]),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_changed_at_rest_is_refused_at_start_and_reported() {
    let wheels = wheels_dir();
    let first = sandbox(None, wheels.path().to_owned()).await;
    assert_eq!(
        install(&first, "demo-pkg").await.status,
        InstallStatus::Installed
    );
    let site = common::site(&first);
    first.server.shutdown().await.expect("stops cleanly");

    std::fs::write(site.join("demo_pkg/__init__.py"), "VALUE = 'tampered'\n").unwrap();
    std::fs::write(site.join("planted.py"), "X = 1\n").unwrap();
    let second = sandbox(Some(site.clone()), wheels.path().to_owned()).await;

    let ready: Value = second.get("/ready").await;
    let checked = &ready["dependencies"]["packages"]["detail"]["store"]["checked_at_start"];
    assert_eq!(checked["refused"][0]["name"], "demo-pkg", "{ready}");
    assert!(
        checked["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("demo_pkg/__init__.py"),
        "{checked}"
    );
    assert!(
        checked["removed_examples"]
            .to_string()
            .contains("planted.py"),
        "{checked}"
    );
    let result = second
        .run("try:\n    import demo_pkg; print(demo_pkg.VALUE)\nexcept ImportError: print('gone')\ntry:\n    import planted\nexcept ImportError: print('gone')\n")
        .await;
    assert_eq!(result.stdout, "gone\ngone\n", "{result:?}");
    // Installing it again brings it back.
    assert_eq!(
        install(&second, "demo-pkg").await.status,
        InstallStatus::Installed
    );
    let result = second.run("import demo_pkg; print(demo_pkg.VALUE)").await;
    assert_eq!(result.stdout, "1.0.0\n", "{result:?}");
}
