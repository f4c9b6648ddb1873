//! Shared set-up: a real sandbox on an ephemeral port, and helpers to call it.
#![allow(dead_code)] // Each test binary uses a different subset.

pub mod host;
pub mod procs;
pub mod wheels;

use std::{os::unix::fs::PermissionsExt, path::PathBuf};

use serde_json::{Value, json};
use switchboard_protocol::sandbox::ExecutionResult;
use switchboard_sandbox::{Config, SandboxService};

/// A running sandbox; dropping it stops the service.
pub struct Running {
    pub server: switchboard_testkit::Running,
    pub http: reqwest::Client,
    /// Holds the managed site-packages (and anything else the test puts there).
    pub dir: tempfile::TempDir,
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
    // Ready: started (the host allows the isolation) and its pool able to start interpreters.
    let server = switchboard_testkit::spawn::<SandboxService>(config).await;
    Running {
        server,
        http: reqwest::Client::new(),
        dir,
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// `GET path` as JSON (the request must succeed).
    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        response.json().await.expect("a JSON body")
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
