//! A layer the configuration promises but the host cannot enforce stops the service from
//! starting, with a message naming the layer and how to grant it — unless the operator names
//! it in `allow_weaker_isolation`; then `/ready` shows it degraded (still 200) and
//! `sandbox_isolation_degraded{layer}` is 1. The host is changed realistically in a child
//! process per scenario (see `common::host`): the cgroup hierarchies read-only, as a container
//! runtime mounts them; `landlock_create_ruleset` answering `ENOSYS`, as on a kernel without
//! Landlock. A custom test binary (no libtest): those changes need a single-threaded process.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::host;
use serde_json::Value;
use switchboard_runtime::Metrics;
use switchboard_sandbox::{Config, Error, Sandbox, SandboxService, isolation::Layer};
use tokio_util::sync::CancellationToken;

fn main() {
    host::run_scenarios(&[
        (
            "read_only_cgroups_refuse_to_start",
            read_only_cgroups_refuse,
        ),
        (
            "read_only_cgroups_accepted_when_named",
            read_only_cgroups_accepted,
        ),
        (
            "missing_landlock_refuses_to_start",
            missing_landlock_refuses,
        ),
        (
            "missing_landlock_accepted_when_named",
            missing_landlock_accepted,
        ),
    ]);
}

fn config(dir: &tempfile::TempDir, allowed: &[&str]) -> Config {
    let mut config = Config::with_packages_dir(dir.path().join("site"));
    config.pool_size = 2;
    config.allow_weaker_isolation = allowed
        .iter()
        .flat_map(|name| Layer::parse(name, "test").unwrap())
        .collect();
    config
}

/// Start with `allowed`; the refusal's message, which the caller checks.
fn refusal(allowed: &[&str]) -> String {
    host::runtime().block_on(async {
        let dir = common::shared_tempdir();
        let metrics = Metrics::new(switchboard_sandbox::SERVICE);
        match Sandbox::start(&config(&dir, allowed), &metrics, CancellationToken::new()).await {
            Ok(sandbox) => {
                sandbox.shutdown().await;
                panic!("started although a layer is missing and {allowed:?} does not name it")
            }
            Err(error @ Error::Isolation(_)) => {
                println!("{error}"); // shown when the scenario fails
                error.to_string()
            }
            Err(other) => panic!("wrong error: {other}"),
        }
    })
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} missing in: {message}");
    }
}

/// Serve with `allowed`: the isolation detail of `/ready` (200), `/metrics`, and whether a
/// program still runs.
fn served(allowed: &[&str]) -> (Value, String) {
    host::runtime().block_on(async {
        let dir = common::shared_tempdir();
        let server = switchboard_testkit::spawn::<SandboxService>(config(&dir, allowed)).await;
        let http = reqwest::Client::new();
        let ready = http
            .get(format!("{}/ready", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "degraded, as accepted, is still ready");
        let ready: Value = ready.json().await.unwrap();
        let metrics = http
            .get(format!("{}/metrics", server.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ran: Value = http
            .post(format!("{}/execute", server.url()))
            .json(&serde_json::json!({"code": "print(6 * 7)"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ran["stdout"], "42\n", "{ran}");
        server.shutdown().await.unwrap();
        (
            ready["dependencies"]["isolation"]["detail"].clone(),
            metrics,
        )
    })
}

/// `sandbox_isolation_degraded{...,layer="LAYER"}`'s value.
fn gauge(metrics: &str, layer: &str) -> Option<i64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("sandbox_isolation_degraded{"))
        .find(|l| l.contains(&format!("layer=\"{layer}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn read_only_cgroups_refuse() {
    host::private_mounts();
    host::read_only_cgroups();
    let message = refusal(&["landlock"]);
    assert_mentions(
        &message,
        &[
            "the sandbox refuses to start",
            "isolation layers 'memory', 'pids', 'cpu' are not enforceable",
            "Read-only file system",
            "Delegate=yes",
            "--allow-weaker-isolation memory,pids,cpu",
            "SANDBOX_ALLOW_WEAKER_ISOLATION=memory,pids,cpu",
        ],
    );
    // Without a memory group the address-space rlimit stands in; swap is not a separate gap.
    assert!(!message.contains("'swap'"), "{message}");
}

fn read_only_cgroups_accepted() {
    host::private_mounts();
    host::read_only_cgroups();
    let (isolation, metrics) = served(&["cgroups"]);
    assert_eq!(isolation["status"], "degraded", "{isolation}");
    for layer in ["memory", "pids", "cpu"] {
        assert_eq!(
            isolation["layers"][layer]["state"], "degraded",
            "{isolation}"
        );
        assert_eq!(gauge(&metrics, layer), Some(1), "{metrics}");
    }
    assert_eq!(isolation["layers"]["landlock"]["state"], "enforced");
    assert_eq!(gauge(&metrics, "landlock"), Some(0), "{metrics}");
    assert!(
        isolation["rlimits"]["address_space_bytes"].is_u64(),
        "the address-space rlimit stands in for the memory cgroup: {isolation}"
    );
}

fn missing_landlock_refuses() {
    host::missing_syscalls(&[libc::SYS_landlock_create_ruleset]);
    let message = refusal(&["memory"]);
    assert_mentions(
        &message,
        &[
            "isolation layer 'landlock' is not enforceable",
            "Function not implemented",
            "CONFIG_SECURITY_LANDLOCK",
            "allow_weaker_isolation = [\"landlock\"]",
        ],
    );
    assert!(!message.contains("'memory'"), "{message}");
}

fn missing_landlock_accepted() {
    host::missing_syscalls(&[libc::SYS_landlock_create_ruleset]);
    let (isolation, metrics) = served(&["landlock"]);
    assert_eq!(
        isolation["layers"]["landlock"]["state"], "degraded",
        "{isolation}"
    );
    assert_eq!(isolation["layers"]["memory"]["state"], "enforced");
    assert_eq!(gauge(&metrics, "landlock"), Some(1), "{metrics}");
    assert_eq!(gauge(&metrics, "memory"), Some(0), "{metrics}");
}
