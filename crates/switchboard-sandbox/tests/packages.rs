//! Package installs from a local wheel directory (wheels built by the test, no index): allowed
//! installs become importable, blocked names are refused, suspicious ones wait for an operator
//! with the admin token, malformed names and pins are refused.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::path::PathBuf;

use common::{Running, wheels};
use serde_json::{Value, json};
use switchboard_protocol::sandbox::{InstallOutcome, InstallStatus};
use switchboard_sandbox::Config;

const TOKEN: &str = "test-admin-token-0123456789";

async fn sandbox_with_wheels() -> Running {
    common::start_with(|config, dir| {
        let wheel_dir = dir.join("wheels");
        std::fs::create_dir(&wheel_dir).unwrap();
        wheels::build(&wheel_dir, "demo-pkg", "1.0.0", "VALUE = '1.0.0'\n", &[]);
        wheels::build(&wheel_dir, "demo-pkg", "2.0.0", "VALUE = '2.0.0'\n", &[]);
        wheels::build(
            &wheel_dir,
            "dep-lib",
            "0.3.0",
            "def greet(): return 'hi from dep-lib'\n",
            &[],
        );
        wheels::build(
            &wheel_dir,
            "app-with-dep",
            "1.0.0",
            "from dep_lib import greet\n",
            &["dep-lib"],
        );
        wheels::build(
            &wheel_dir,
            "evil-pkg",
            "1.0.0",
            "raise SystemExit('pwned')\n",
            &[],
        );
        wheels::build(
            &wheel_dir,
            "app-with-bad-dep",
            "1.0.0",
            "import evil_pkg\n",
            &["evil-pkg"],
        );
        wheels::build(&wheel_dir, "held-pkg", "0.1.0", "ANSWER = 42\n", &[]);
        with_policy(config, wheel_dir)
    })
    .await
}

/// Install from `wheel_dir` only, with the test's blocked and suspicious lists and token.
fn with_policy(mut config: Config, wheel_dir: PathBuf) -> Config {
    let mut packages = config
        .packages
        .clone()
        .with_wheel_dir(wheel_dir, true)
        .with_blocked(vec!["evil-pkg: steals tokens".into()])
        .with_suspicious(vec!["held-pkg".into()])
        .with_admin_token(TOKEN);
    packages.install_timeout = std::time::Duration::from_secs(120);
    config.packages = packages;
    config
}

async fn pending(sandbox: &Running) -> Value {
    sandbox.get("/packages/pending").await
}

async fn install(sandbox: &Running, body: Value) -> (u16, InstallOutcome) {
    let response = sandbox
        .http
        .post(sandbox.url("/packages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn approve(sandbox: &Running, id: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = sandbox
        .http
        .post(sandbox.url(&format!("/packages/pending/{id}/approve")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// An allowed package (exact pin) installs and is importable; so is one with a dependency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_install_then_import() {
    let sandbox = sandbox_with_wheels().await;
    assert!(
        !sandbox.run("import demo_pkg").await.success,
        "not there before"
    );
    let (status, outcome) =
        install(&sandbox, json!({"package": "Demo_Pkg", "version": "1.0.0"})).await;
    assert_eq!(status, 200);
    assert_eq!(outcome.status, InstallStatus::Installed, "{outcome:?}");
    assert_eq!(outcome.package, "demo-pkg");
    assert_eq!(outcome.installed, vec!["demo-pkg==1.0.0"]);
    let r = sandbox
        .run("import demo_pkg\nprint(demo_pkg.VALUE, demo_pkg.__file__)")
        .await;
    assert_eq!(r.stdout, "1.0.0 /packages/demo_pkg/__init__.py\n", "{r:?}");
    let write = sandbox
        .run("open('/packages/demo_pkg/__init__.py', 'w')")
        .await;
    assert!(
        write.stderr.contains("Read-only file system"),
        "programs cannot change packages"
    );

    let (_, again) = install(&sandbox, json!({"package": "demo-pkg==1.0.0"})).await;
    assert_eq!(again.status, InstallStatus::Installed);
    assert!(again.message.contains("already installed"), "{again:?}");
    // PEP 440 equality, not string equality: 1.0 is the installed 1.0.0.
    let (_, same) = install(&sandbox, json!({"package": "demo_pkg==1.0"})).await;
    assert_eq!(same.status, InstallStatus::Installed, "{same:?}");
    assert!(same.message.contains("already installed"), "{same:?}");

    let (_, with_dep) = install(&sandbox, json!({"package": "app-with-dep"})).await;
    assert_eq!(with_dep.status, InstallStatus::Installed, "{with_dep:?}");
    assert!(
        with_dep.installed.contains(&"dep-lib==0.3.0".to_owned()),
        "{with_dep:?}"
    );
    let r = sandbox
        .run("import app_with_dep\nprint(app_with_dep.greet())")
        .await;
    assert_eq!(r.stdout, "hi from dep-lib\n", "{r:?}");

    let listed: Value = sandbox.get("/packages").await;
    let names: Vec<&str> = listed["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-with-dep", "demo-pkg", "dep-lib"], "{listed}");
}

/// Blocked names are refused with the reason, also when they come in as a dependency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_names_are_rejected() {
    let sandbox = sandbox_with_wheels().await;
    let (status, outcome) = install(&sandbox, json!({"package": "evil_pkg"})).await;
    assert_eq!(status, 200);
    assert_eq!(outcome.status, InstallStatus::Rejected);
    assert_eq!(outcome.reason.as_deref(), Some("steals tokens"));
    let (_, via_dep) = install(&sandbox, json!({"package": "app-with-bad-dep"})).await;
    assert_eq!(via_dep.status, InstallStatus::Rejected, "{via_dep:?}");
    assert!(via_dep.reason.unwrap().contains("evil-pkg==1.0.0"));
    let r = sandbox.run("import evil_pkg").await;
    assert!(r.stderr.contains("ModuleNotFoundError"), "{r:?}");
    assert!(!sandbox.run("import app_with_bad_dep").await.success);
}

/// A suspicious package waits for approval; the wrong token is refused; the right one
/// installs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspicious_package_waits_for_the_operator() {
    let sandbox = sandbox_with_wheels().await;
    let (status, held) =
        install(&sandbox, json!({"package": "held-pkg", "version": "0.1.0"})).await;
    assert_eq!(status, 202);
    assert_eq!(held.status, InstallStatus::PendingApproval, "{held:?}");
    let id = held.approval_id.clone().unwrap();
    assert!(
        !sandbox.run("import held_pkg").await.success,
        "not usable while pending"
    );
    let pending = pending(&sandbox).await;
    assert_eq!(pending["pending"][0]["id"], id.as_str(), "{pending}");
    assert_eq!(pending["pending"][0]["package"], "held-pkg");

    for token in [None, Some("wrong-token-wrong-token")] {
        let refused = approve(&sandbox, &id, token).await;
        assert_eq!(refused.status().as_u16(), 401, "{token:?}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    assert!(
        !sandbox.run("import held_pkg").await.success,
        "still not installed"
    );

    let approved = approve(&sandbox, &id, Some(TOKEN)).await;
    assert_eq!(approved.status().as_u16(), 200);
    let outcome: InstallOutcome = approved.json().await.unwrap();
    assert_eq!(outcome.status, InstallStatus::Installed, "{outcome:?}");
    assert_eq!(
        sandbox
            .run("import held_pkg\nprint(held_pkg.ANSWER)")
            .await
            .stdout,
        "42\n"
    );
    assert_eq!(
        approve(&sandbox, &id, Some(TOKEN)).await.status().as_u16(),
        404,
        "decided once"
    );

    let (_, typo) = install(&sandbox, json!({"package": "reqeusts"})).await;
    assert_eq!(
        typo.status,
        InstallStatus::PendingApproval,
        "near-misses of popular names are held"
    );
    assert!(typo.reason.unwrap().contains("requests"));
}

/// A held request survives a restart of the sandbox: a new sandbox on the same managed
/// directory lists it under the same id, and approving it there installs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_survive_a_restart() {
    let first = sandbox_with_wheels().await;
    let (status, held) = install(&first, json!({"package": "held-pkg==0.1.0"})).await;
    assert_eq!(status, 202, "{held:?}");
    let id = held.approval_id.unwrap();
    let site = common::site(&first);
    let wheel_dir = first.dir.path().join("wheels");
    // Stop the first sandbox (its directory stays with `first`), then start a second one.
    first
        .server
        .shutdown()
        .await
        .expect("the first sandbox stops cleanly");
    let second = common::start_with(|config, _| {
        let mut config = with_policy(config, wheel_dir.clone());
        config.packages.dir = site.clone();
        config
    })
    .await;
    let listed = pending(&second).await;
    assert_eq!(listed["pending"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["pending"][0]["package"], "held-pkg");
    assert_eq!(listed["pending"][0]["version"], "0.1.0");
    let approved = approve(&second, &id, Some(TOKEN)).await;
    assert_eq!(approved.status().as_u16(), 200);
    assert_eq!(
        second
            .run("import held_pkg\nprint(held_pkg.ANSWER)")
            .await
            .stdout,
        "42\n"
    );
    // Decided: gone from the list, and from the file a third start would read (in the
    // service's state directory, which `/ready` names).
    assert_eq!(pending(&second).await["pending"], json!([]));
    let ready: Value = second.get("/ready").await;
    let file = ready["dependencies"]["packages"]["detail"]["pending_file"]
        .as_str()
        .unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(saved, json!([]));
}

/// Malformed names and pins are refused, and nothing is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_names_and_pins_are_rejected() {
    let sandbox = sandbox_with_wheels().await;
    for body in [
        json!({"package": "demo pkg"}),
        json!({"package": "demo-pkg>=1.0"}),
        json!({"package": "demo-pkg[extra]"}),
        json!({"package": "../../etc/passwd"}),
        json!({"package": "https://example.invalid/demo.whl"}),
        json!({"package": "-demo"}),
        json!({"package": ""}),
        json!({"package": "demo-pkg", "version": "latest"}),
        json!({"package": "demo-pkg", "version": ">=1.0"}),
        json!({"package": "demo-pkg==1.0.0", "version": "2.0.0"}),
        json!({"package": "demo-pkg @ https://example.invalid/demo.whl"}),
        json!({"package": "demo-pkg; python_version > '3'"}),
    ] {
        let (status, outcome) = install(&sandbox, body.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            outcome.status,
            InstallStatus::Rejected,
            "{body}: {outcome:?}"
        );
        assert!(outcome.reason.is_some_and(|r| !r.is_empty()), "{body}");
    }
    let (_, missing) = install(&sandbox, json!({"package": "demo-pkg", "version": "9.9.9"})).await;
    assert_eq!(missing.status, InstallStatus::Failed, "{missing:?}");
    assert!(missing.reason.unwrap().contains("9.9.9"));
    let listed: Value = sandbox.get("/packages").await;
    assert_eq!(listed["packages"], json!([]), "nothing was installed");
}
