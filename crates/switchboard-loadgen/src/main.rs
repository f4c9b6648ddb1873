//! `switchboard-loadgen`: parse the command line, run, print the JSON report on stdout.
//!
//! Exit status: 0 when every measured request succeeded, 1 when some failed or none was
//! measured (the report is printed all the same), 2 when the run could not start.

use std::process::ExitCode;

use clap::Parser;
use switchboard_loadgen::{
    Error, Report,
    args::{Cli, Mode},
};

/// The load generator shares the machine's cores with the servers it measures, so what it
/// spends per request is taken from theirs. With glibc's allocator, a shared session's answers
/// are allocated on one worker thread and freed on another, and the frees queue on the other
/// thread's arena lock: `perf` showed ~20 % of the load generator's time in that lock's futex
/// waits and wake-ups, and ~20 % more in `malloc`/`free`, during a `tools/list` run against the
/// time-client (c=32, one shared session). mimalloc frees to the owning thread's page without a
/// lock. The `switchboard` binary uses it too, for the same reason.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = match &cli.mode {
        Mode::Mcp(a) => a.load.output.clone(),
        Mode::Http(a) => a.load.output.clone(),
        Mode::Process(a) => a.load.output.clone(),
        Mode::ScriptedLlm(_) | Mode::Fixed(_) | Mode::Forward(_) => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(switchboard_loadgen::run(cli)) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(report)) => match print(&report, output) {
            Ok(()) if report.errors == 0 && report.requests > 0 => ExitCode::SUCCESS,
            Ok(()) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        },
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// The report as pretty JSON on stdout, and in `--output FILE` if given.
fn print(report: &Report, output: Option<std::path::PathBuf>) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(report).expect("a report always serialises");
    println!("{json}");
    if let Some(path) = output {
        std::fs::write(&path, format!("{json}\n")).map_err(|source| Error::Output {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
