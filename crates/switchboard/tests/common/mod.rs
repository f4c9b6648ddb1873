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
