//! `switchboard sandbox`: the Python sandbox (REST and MCP, port 8001).
//!
//! Refuses to start when the host does not allow the isolation it needs; the message says what
//! is missing and how to grant it.

use switchboard_runtime::{config::layer, http::HttpArgs};
use switchboard_sandbox::{Config, RawConfig};

use crate::cli::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub service: RawConfig,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// The validated configuration from flags, environment and `[sandbox]`/`[http]`.
pub fn config(args: &Args, context: &Context) -> anyhow::Result<Config> {
    let file = context.config_file.as_ref();
    let raw = layer(&args.service, file, switchboard_sandbox::SERVICE)?;
    Ok(Config::from_parts(
        raw,
        super::http_settings(&args.http, file)?,
    )?)
}

pub async fn run(args: Args, context: Context) -> anyhow::Result<()> {
    let config = config(&args, &context)?;
    let listener = super::bind(switchboard_sandbox::SERVICE, config.listen).await?;
    switchboard_sandbox::serve(listener, config, context.shutdown).await?;
    Ok(())
}
