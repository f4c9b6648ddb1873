//! What the binary's tests share: free ports for `switchboard up`, and running a client
//! subcommand.
#![allow(dead_code, clippy::unwrap_used)] // Each test uses part of it; a panic is the failure report.

use std::{net::TcpListener, process::Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A base port with the four ports after it free too (checked by binding them).
pub fn free_base_port() -> u16 {
    for _ in 0..50 {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base > 65530 {
            continue;
        }
        let held: Vec<_> = (0..5)
            .filter_map(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == 5 {
            return base;
        }
    }
    panic!("no five consecutive free ports");
}

/// Run `switchboard ARGS` with `env` (and no LLM, log filter or token from the test's own
/// environment): success, stdout, stderr.
pub fn client(args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("LLM_BASE_URL")
        .env_remove("SWITCHBOARD_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `switchboard up` running on five free ports, its log read on a thread of its own (so the
/// pipe never fills).
pub struct Up {
    pub base: u16,
    /// What it printed on stdout until it said it is up.
    pub printed: Vec<String>,
    child: std::process::Child,
    log: Option<std::thread::JoinHandle<String>>,
    /// Its code-executor's task directory (else one per port under /var/lib, left behind).
    _tasks: tempfile::TempDir,
}

/// A test that fails before `stop` leaves nothing running: a leftover `up` would hold its
/// ports and its code-executor's state directory.
impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Up {
    /// Start it with `env` (and no LLM or log filter from the test's environment) and wait
    /// until it says it is up.
    pub fn start(env: &[(&str, &std::ffi::OsStr)]) -> Self {
        use std::io::{BufRead, BufReader};
        let base = free_base_port();
        let mut command = Command::new(BIN);
        command
            .args(["up", "--base-port", &base.to_string()])
            .env_remove("LLM_BASE_URL")
            .env_remove("LLM_API_KEY")
            .env_remove("LLM_MODEL_NAME")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let tasks = tempfile::tempdir().unwrap();
        command.env("CODE_EXECUTOR_STATE_DIR", tasks.path().join("tasks"));
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
            text
        });
        // Read `up`'s lines until it says it is up: the ready signal.
        let mut printed = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let done = line.starts_with("switchboard is up");
            printed.push(line);
            if done {
                break;
            }
        }
        assert!(
            printed
                .last()
                .is_some_and(|l| l.starts_with("switchboard is up")),
            "up did not come up: {printed:?}"
        );
        Self {
            base,
            printed,
            child,
            log: Some(log),
            _tasks: tasks,
        }
    }

    /// Ctrl-C: it must exit successfully. Its whole log.
    pub fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            self.child.wait().unwrap().success(),
            "up exits cleanly on SIGINT"
        );
        self.log.take().unwrap().join().unwrap()
    }
}
