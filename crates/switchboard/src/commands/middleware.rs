//! `switchboard middleware`: the chat middleware (REST, SSE, OpenAI-compatible API, chat page).

use switchboard_middleware::{Config, RawConfig};
use switchboard_runtime::{config::layer, http::HttpArgs};

use crate::cli::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub service: RawConfig,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// The validated configuration from flags, environment and `[middleware]`/`[http]`.
pub fn config(args: &Args, context: &Context) -> anyhow::Result<Config> {
    let file = context.config_file.as_ref();
    let raw = layer(&args.service, file, switchboard_middleware::SERVICE)?;
    Ok(Config::from_parts(
        raw,
        super::http_settings(&args.http, file)?,
    )?)
}

pub async fn run(args: Args, context: Context) -> anyhow::Result<()> {
    let config = config(&args, &context)?;
    let listener = super::bind(switchboard_middleware::SERVICE, config.listen).await?;
    switchboard_middleware::serve(listener, config, context.shutdown).await?;
    Ok(())
}
