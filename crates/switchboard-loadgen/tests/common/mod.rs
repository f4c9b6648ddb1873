//! Running the load generator's binary in tests, and what it runs against.
#![allow(dead_code)] // Each test binary uses part of this module.

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use switchboard_testkit::Running;
use switchboard_time::TimeService;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Child,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard-loadgen");

/// A time-client served in this process on 127.0.0.1:0; stops when dropped.
pub async fn time_client() -> Running {
    switchboard_testkit::spawn::<TimeService>(switchboard_time::Config::default()).await
}

/// Run the binary to completion off the async runtime (the servers live on it); its output
/// and its JSON report (`null` when it printed none).
pub async fn loadgen(args: &[&str]) -> (Output, Value) {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let output =
        tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
            .await
            .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// Start a serving command of the binary and read the address it prints once it listens;
/// the process is killed when the child is dropped.
pub async fn serving(args: &[&str]) -> (Child, String) {
    let mut child = tokio::process::Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr = first.strip_prefix("listening on ").unwrap().to_owned();
    (child, addr)
}
