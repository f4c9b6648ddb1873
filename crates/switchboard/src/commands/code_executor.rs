//! `switchboard code-executor`: the MCP face of code execution (port 8004), forwarding to the
//! sandbox.

use switchboard_code_executor::{Config, RawConfig};
use switchboard_runtime::{config::layer, http::HttpArgs};

use crate::cli::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub service: RawConfig,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// The validated configuration from flags, environment and `[code-executor]`/`[http]`.
pub fn config(args: &Args, context: &Context) -> anyhow::Result<Config> {
    let file = context.config_file.as_ref();
    let raw = layer(&args.service, file, switchboard_code_executor::SERVICE)?;
    Ok(Config::from_parts(
        raw,
        super::http_settings(&args.http, file)?,
    )?)
}

pub async fn run(args: Args, context: Context) -> anyhow::Result<()> {
    let config = config(&args, &context)?;
    let listener = super::bind(switchboard_code_executor::SERVICE, config.listen).await?;
    switchboard_code_executor::serve(listener, config, context.shutdown).await?;
    Ok(())
}
