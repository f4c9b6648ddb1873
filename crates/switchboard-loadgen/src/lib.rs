//! `switchboard-loadgen`: the load generator behind `bench/run.sh`.
//!
//! It keeps N workers busy against one target and reports throughput and latency percentiles
//! as one JSON object, so the bench harness can put a service and its baseline side by side.
//! Each worker owns its connection: one rmcp client session (MCP mode), one HTTP client (HTTP
//! mode), or one child process at a time (process mode); with `mcp --shared-session` all
//! workers send on one rmcp session instead, as the gateway does towards an upstream. Workers
//! run closed-loop: a worker sends its next request when the previous one has been answered,
//! so concurrency N means N requests in flight.
//!
//! # Layout
//!
//! - [`args`]: the command line (`mcp`, `http`, `process`, `scripted-llm`; hidden: `fixed`,
//!   `forward`) and the load options shared by the load modes (concurrency, duration or request
//!   count, warm-up, expectation, and for `mcp` the protocol revision).
//! - [`plan`]: what a run does — warm-up, then a fixed duration or a fixed number of requests —
//!   and the [`plan::Control`] that tells each worker whether its next request counts.
//! - [`driver`]: runs one [`operation::Operation`] per worker under a plan and collects samples.
//! - [`operation`]: the three kinds of request: an MCP `tools/call`, a JSON POST, a process
//!   start.
//! - [`report`]: exact percentiles from the samples and the JSON report.
//! - [`scripted_llm`]: the test suite's scripted LLM with an endless rule, a stand-in that
//!   answers at once, for measuring the middleware's own overhead per chat turn.
//! - [`floor`]: the hidden `fixed` and `forward` commands, a fixed-answer server and a
//!   pass-through hop, whose difference is the floor of one extra loopback HTTP round trip.
//! - [`error`]: what can stop a run before it starts.
//!
//! [`run`] executes a parsed command line.

pub mod args;
pub mod driver;
pub mod error;
pub mod floor;
pub mod operation;
pub mod plan;
pub mod report;
pub mod scripted_llm;

pub use error::Error;
pub use report::Report;

use args::{Cli, Mode};

/// Run the command and return the report of a load mode (`None` for `scripted-llm`, `fixed`
/// and `forward`, which serve until they are stopped).
pub async fn run(cli: Cli) -> Result<Option<Report>, Error> {
    match cli.mode {
        Mode::Mcp(args) => {
            let plan = args.load.plan()?;
            let report = if args.raw {
                let ops = operation::raw_mcp::connect_all(&args, plan.concurrency).await?;
                driver::drive(&plan, ops, "mcp", args.target()).await
            } else {
                let ops = operation::mcp::connect_all(&args, plan.concurrency).await?;
                driver::drive(&plan, ops, "mcp", args.target()).await
            };
            Ok(Some(report))
        }
        Mode::Http(args) => {
            let plan = args.load.plan()?;
            let ops = operation::http::build_all(&args, plan.concurrency)?;
            Ok(Some(
                driver::drive(&plan, ops, "http", args.url.clone()).await,
            ))
        }
        Mode::Process(args) => {
            let plan = args.load.plan()?;
            let ops = operation::process::build_all(&args, plan.concurrency)?;
            Ok(Some(
                driver::drive(&plan, ops, "process", args.target()).await,
            ))
        }
        Mode::ScriptedLlm(args) => {
            scripted_llm::serve(&args).await?;
            Ok(None)
        }
        Mode::Fixed(args) => {
            floor::serve_fixed(&args).await?;
            Ok(None)
        }
        Mode::Forward(args) => {
            floor::serve_forward(&args).await?;
            Ok(None)
        }
    }
}
