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

/// mimalloc, without transparent huge pages, as the process allocator. Same commit, same
/// machine (2 cores, THP `always`), glibc's allocator against this one, the gateway in front of
/// the time-client: gateway CPU per `tools/call` at c=32 117 → 75 µs and 8.6k → 12.4k req/s; at
/// c=1 212–236 → 184–200 µs and p50 452–489 → 412–437 µs. glibc's cost was its arenas: an answer
/// is allocated on one worker thread and freed on another, and the free waits for the other
/// arena's lock. Memory: `switchboard up` idle RSS 38.6–39.1 → 40.9–41.3 MiB (anonymous
/// 4.9 → 6.4 MiB); the gateway after a c=32 run 43 → 36 MiB. With huge pages (mimalloc's
/// default) the idle `up` held 59 MiB, hence `no_thp`. `--no-default-features` builds without
/// it.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::run()
}
