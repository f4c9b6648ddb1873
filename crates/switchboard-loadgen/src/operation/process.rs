//! Start a program and wait for it to exit: the cold-start baseline for code execution.

use std::process::Stdio;

use tokio::process::Command;

use super::{Operation, check_expected, shorten};
use crate::{Error, args::ProcessArgs};

/// One worker's command line.
pub struct ProcessRun {
    program: String,
    args: Vec<String>,
    expect: Option<String>,
}

/// One runner per worker; the program must be named.
pub fn build_all(args: &ProcessArgs, concurrency: usize) -> Result<Vec<ProcessRun>, Error> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err(Error::usage("process: expected a program after `--`"));
    };
    Ok((0..concurrency)
        .map(|_| ProcessRun {
            program: program.clone(),
            args: rest.to_vec(),
            expect: args.load.expect.clone(),
        })
        .collect())
}

impl Operation for ProcessRun {
    async fn call(&mut self) -> Result<(), String> {
        let output = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("starting {} failed: {e}", self.program))?;
        if !output.status.success() {
            return Err(format!(
                "{} exited with {}: {}",
                self.program,
                output.status,
                shorten(&String::from_utf8_lossy(&output.stderr))
            ));
        }
        check_expected(
            self.expect.as_deref(),
            &String::from_utf8_lossy(&output.stdout),
        )
    }
}
