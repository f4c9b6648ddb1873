//! The five service subcommands (`time-client`, `sandbox`, `code-executor`, `mcp-server`,
//! `middleware`) and `up` read a service's settings the same way: its own flags or
//! environment, then its section of the config file, then the shared `[http]`, `[auth]` and `[audit]` settings. Each
//! service crate describes itself once with a [`Service`] impl; [`run`] serves one alone and
//! `up` starts all of them with [`config`].

use switchboard_runtime::{
    HttpSettings,
    config::{ConfigFile, layer},
};

pub use switchboard_runtime::Service;

use crate::cli::Context;

// The services under the names of their subcommands.
pub use switchboard_code_executor::CodeExecutorService as CodeExecutor;
pub use switchboard_gateway::GatewayService as McpServer;
pub use switchboard_middleware::MiddlewareService as Middleware;
pub use switchboard_sandbox::SandboxService as Sandbox;
pub use switchboard_time::TimeService as TimeClient;

/// A service subcommand's arguments: its own settings and the shared ones.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs<R: clap::Args> {
    #[command(flatten)]
    pub service: R,
    #[command(flatten)]
    pub shared: super::SharedArgs,
}

/// `raw` (flags or environment) over the `[S::NAME]` section of `file`, validated with `http`.
pub fn config<S: Service>(
    raw: &S::Raw,
    file: Option<&ConfigFile>,
    http: HttpSettings,
) -> anyhow::Result<S::Config> {
    let raw = layer(raw, file, S::NAME)?;
    Ok(S::from_parts(raw, http)?)
}

/// Serve `S` alone until `context.shutdown`.
pub async fn run<S: Service>(args: ServiceArgs<S::Raw>, context: Context) -> anyhow::Result<()> {
    let file = context.config_file.as_ref();
    let http = super::http_settings(&args.shared, file)?;
    let config = config::<S>(&args.service, file, http.clone())?;
    let listener = super::bind(S::NAME, S::listen(&config), &http).await?;
    S::serve(listener, config, context.shutdown).await?;
    // What the last calls recorded reaches the log before the process ends.
    http.audit.flush(std::time::Duration::from_secs(5));
    Ok(())
}
