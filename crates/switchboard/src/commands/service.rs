//! The five service subcommands (`time-client`, `sandbox`, `code-executor`, `mcp-server`,
//! `middleware`) and `up` read a service's settings the same way: its own flags or
//! environment, then its section of the config file, then the shared `[http]` settings. Each
//! service crate is described once here by a [`Service`] impl; [`run`] serves one alone and
//! `up` starts all of them with [`config`].

use std::net::SocketAddr;

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use switchboard_runtime::{
    Error, HttpSettings,
    config::{ConfigFile, layer},
    http::HttpArgs,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::Context;

/// What the CLI needs of a service crate.
pub trait Service {
    /// The service's name: its config-file section and metric `service` label.
    const NAME: &'static str;
    /// Its settings as flags and environment variables.
    type Raw: clap::Args + clap::FromArgMatches + Serialize + DeserializeOwned;
    /// Its validated settings.
    type Config;
    fn from_parts(raw: Self::Raw, http: HttpSettings) -> Result<Self::Config, Error>;
    fn listen(config: &Self::Config) -> SocketAddr;
    fn serve(
        listener: TcpListener,
        config: Self::Config,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), Error>>;
}

/// A service subcommand's arguments: its own settings and the shared `[http]` ones.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs<R: clap::Args> {
    #[command(flatten)]
    pub service: R,
    #[command(flatten)]
    pub http: HttpArgs,
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
    let config = config::<S>(&args.service, file, super::http_settings(&args.http, file)?)?;
    let listener = super::bind(S::NAME, S::listen(&config)).await?;
    S::serve(listener, config, context.shutdown).await?;
    Ok(())
}

/// A [`Service`] impl for the service crate `$krate`, which has `SERVICE`, `RawConfig`,
/// `Config` (with `from_parts` and `listen`) and `serve`, like every service crate here.
macro_rules! service {
    ($(#[$doc:meta])* $name:ident = $krate:ident) => {
        $(#[$doc])*
        pub struct $name;

        impl Service for $name {
            const NAME: &'static str = $krate::SERVICE;
            type Raw = $krate::RawConfig;
            type Config = $krate::Config;
            fn from_parts(raw: Self::Raw, http: HttpSettings) -> Result<Self::Config, Error> {
                Self::Config::from_parts(raw, http)
            }
            fn listen(config: &Self::Config) -> SocketAddr {
                config.listen
            }
            fn serve(
                listener: TcpListener,
                config: Self::Config,
                shutdown: CancellationToken,
            ) -> BoxFuture<'static, Result<(), Error>> {
                // The sandbox has an error type of its own; the others' is this one.
                Box::pin(async move {
                    $krate::serve(listener, config, shutdown)
                        .await
                        .map_err(Into::into)
                })
            }
        }
    };
}

service!(
    /// The MCP time tools (port 8003).
    TimeClient = switchboard_time
);
service!(
    /// The Python sandbox (REST and MCP, port 8001). Refuses to start when the host does not
    /// allow the isolation it needs; the message says what is missing and how to grant it.
    Sandbox = switchboard_sandbox
);
service!(
    /// The MCP face of code execution (port 8004), forwarding to the sandbox.
    CodeExecutor = switchboard_code_executor
);
service!(
    /// The federating MCP gateway (port 8000).
    McpServer = switchboard_gateway
);
service!(
    /// The chat middleware (REST, SSE, OpenAI-compatible API, chat page; port 8002).
    Middleware = switchboard_middleware
);
