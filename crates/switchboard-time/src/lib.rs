//! The time-client service: MCP time tools over Streamable HTTP (port 8003).
//!
//! # Layout
//!
//! - [`config`]: settings (`--listen`, `--default-timezone`) and their validation.
//! - [`clock`]: the time logic — time-zone lookup with suggestions, conversion — free of MCP.
//! - [`server`]: the rmcp `ServerHandler` with `get_current_time` and `convert_time`; each call
//!   runs in an `mcp_tool_call` span that continues the caller's trace (the reference wiring of
//!   `switchboard_protocol::mcp_trace` for every MCP service).
//!
//! [`serve`] runs the service on a listener the caller bound; [`router`] builds the app.

pub mod clock;
pub mod config;
pub mod server;

use axum::Router;
use switchboard_protocol::mcp_server::{McpEndpointOptions, endpoint::McpEndpoint};
use switchboard_runtime::{Metrics, Service, ServiceApp, service::BoxFuture};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, RawConfig};
pub use server::TimeServer;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "time-client";

/// The whole HTTP application: `/mcp` plus the common endpoints.
pub fn router(config: &Config, shutdown: CancellationToken) -> Router {
    let metrics = Metrics::new(SERVICE);
    let handler = TimeServer::new(config.default_timezone.clone(), &metrics);
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
        .mcp(mcp)
        .build()
}

/// Serve the time-client on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), switchboard_runtime::Error> {
    let app = router(&config, shutdown.child_token());
    tracing::info!(
        address = %listener.local_addr().map_err(switchboard_runtime::Error::Serve)?,
        "time-client serving MCP at /mcp"
    );
    switchboard_runtime::serve(listener, app, shutdown, &config.http).await
}

/// The time-client as a [`Service`]: how the CLI and the test harness configure and
/// serve it.
pub struct TimeService;

impl Service for TimeService {
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
        Box::pin(serve(listener, config, shutdown))
    }
}
