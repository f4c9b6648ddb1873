//! Shared set-up: a real sandbox on an ephemeral port, and helpers to call it.
#![allow(dead_code)] // Each test binary uses a different subset.

pub mod procs;
pub mod wheels;

use std::{os::unix::fs::PermissionsExt, path::PathBuf, time::Duration};

use serde_json::{Value, json};
use switchboard_protocol::sandbox::ExecutionResult;
use switchboard_runtime::Metrics;
use switchboard_sandbox::{Config, Sandbox};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running sandbox; dropping it stops the service.
pub struct Running {
    pub base: String,
    pub sandbox: Sandbox,
    pub shutdown: CancellationToken,
    pub http: reqwest::Client,
    /// Holds the managed site-packages (and anything else the test puts there).
    pub dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A temporary directory the sandbox's unprivileged users can traverse.
pub fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("switchboard-sandbox-test")
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 755");
    dir
}

pub async fn start() -> Running {
    start_with(|c, _| c).await
}

/// Start with the default configuration changed by `adjust` (packages go to `<dir>/site`).
pub async fn start_with(adjust: impl FnOnce(Config, &std::path::Path) -> Config) -> Running {
    let dir = shared_tempdir();
    let mut config = Config::with_packages_dir(dir.path().join("site"));
    config.pool_size = 4;
    let config = adjust(config, dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new(switchboard_sandbox::SERVICE);
    let sandbox = Sandbox::start(&config, &metrics, shutdown.child_token())
        .await
        .expect("the sandbox starts (this host allows the isolation)");
    let app =
        switchboard_sandbox::router(sandbox.clone(), metrics, &config, shutdown.child_token());
    tokio::spawn(switchboard_runtime::serve(
        listener,
        app,
        shutdown.clone(),
        Duration::from_secs(5),
    ));
    Running {
        base,
        sandbox,
        shutdown,
        http: reqwest::Client::new(),
        dir,
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /execute` and the parsed result (the request must be accepted).
    pub async fn run(&self, code: &str) -> ExecutionResult {
        self.run_with(json!({ "code": code })).await
    }

    pub async fn run_with(&self, body: Value) -> ExecutionResult {
        let response = self
            .http
            .post(self.url("/execute"))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(status.is_success(), "POST /execute: {status} {text}");
        serde_json::from_str(&text).expect("an ExecutionResult")
    }
}

/// The managed site-packages directory of a sandbox started by [`start_with`].
pub fn site(running: &Running) -> PathBuf {
    running.dir.path().join("site")
}
