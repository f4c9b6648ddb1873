//! `switchboard`: one binary, one subcommand per service, and `up` for all of them.
//!
//! This crate only wires things together: it parses the command line, loads the optional TOML
//! file, sets up logging and the shutdown signal, binds listeners and calls each service
//! crate's `serve`. Endpoints live in the service crates (see the README's map).

#[macro_use]
mod output;
mod cli;
mod commands;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
