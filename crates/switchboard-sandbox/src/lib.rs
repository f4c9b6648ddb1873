//! The sandbox service: untrusted Python in isolated, pre-started interpreters (port 8001).
//!
//! # Layout
//!
//! - [`config`]: settings (limits, pool, interpreter, packages) and their validation.
//! - [`isolation`]: starting an interpreter under namespaces, a minimal read-only root,
//!   rlimits, cgroups, Landlock and seccomp, and finding out what the host allows.
//! - `worker` and `pool`: one pre-started interpreter running exactly one program; the pool
//!   that keeps them ready and replaces each after use.
//! - [`packages`]: name validation, the block/approve policy, pip, audit events.
//! - `state`: the service's own files, in a directory no other uid can write.
//! - `service`: [`Sandbox`], the engine behind both faces.
//! - [`api`] (REST) and [`server`] (MCP `execute_code`, `install_package`).
//!
//! [`serve`] runs the service on a listener the caller bound; [`router`] builds the app once
//! a [`Sandbox`] is started. The crate README explains the design.

pub mod api;
pub mod config;
pub mod error;
pub mod isolation;
pub mod packages;
pub mod server;

mod metrics;
mod owner;
mod pool;
mod service;
mod session_api;
mod session_tools;
mod sessions;
mod state;
mod worker;

use axum::Router;
use switchboard_protocol::mcp_server::{McpEndpointOptions, endpoint::McpEndpoint};
use switchboard_runtime::{Metrics, Service, ServiceApp, service::BoxFuture};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, Limits, PackageSettings, RawConfig};
pub use error::{Error, ExecuteError};
pub use owner::OWNER_HEADER;
pub use server::SandboxServer;
pub use service::Sandbox;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "sandbox";

/// The whole HTTP application: REST, `/mcp` and the common endpoints.
pub fn router(
    sandbox: Sandbox,
    metrics: Metrics,
    config: &Config,
    shutdown: CancellationToken,
) -> Router {
    let handler = SandboxServer::new(sandbox.clone());
    let peers = handler.session_peers();
    let mcp = McpEndpoint::new(
        handler,
        peers,
        &McpEndpointOptions::new(
            config.http.allowed_hosts.clone(),
            config.http.allowed_origins.clone(),
            config.http.max_body_bytes,
        ),
        shutdown,
    );
    ServiceApp::new(SERVICE, metrics, config.http.clone())
        .rest(api::routes(sandbox.clone()))
        .mcp(mcp)
        .readiness(sandbox.readiness())
        .build()
}

/// Start the sandbox and serve it on `listener` until `shutdown` is cancelled. Fails before
/// serving when the host refuses the isolation.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = Metrics::new(SERVICE);
    let sandbox = Sandbox::start(&config, &metrics, shutdown.child_token()).await?;
    let app = router(sandbox.clone(), metrics, &config, shutdown.child_token());
    tracing::info!(
        address = %listener.local_addr().map_err(switchboard_runtime::Error::Serve)?,
        "sandbox serving REST and MCP at /mcp"
    );
    let served = switchboard_runtime::serve(listener, app, shutdown, &config.http).await;
    sandbox.shutdown().await;
    served?;
    Ok(())
}

/// The sandbox as a [`Service`]: how the CLI and the test harness configure and
/// serve it.
pub struct SandboxService;

impl Service for SandboxService {
    const NAME: &'static str = SERVICE;
    type Raw = RawConfig;
    type Config = Config;
    fn from_parts(
        raw: RawConfig,
        http: switchboard_runtime::HttpSettings,
    ) -> Result<Config, switchboard_runtime::Error> {
        Config::from_parts(raw, http)
    }
    fn listen(config: &Config) -> std::net::SocketAddr {
        config.listen
    }
    fn serve(
        listener: TcpListener,
        config: Config,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), switchboard_runtime::Error>> {
        // The sandbox's own error type carries more detail; callers of a `Service` take the
        // runtime's.
        Box::pin(async move { serve(listener, config, shutdown).await.map_err(Into::into) })
    }
}
