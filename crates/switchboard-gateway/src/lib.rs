//! The mcp-server service (port 8000): a federating MCP gateway. It discovers the tools,
//! resources and prompts of its upstream MCP servers, presents them as one MCP server at
//! `/mcp` (and tools over REST at `/api/tools`), routes each request to its upstream, and keeps
//! working when an upstream is slow, broken or gone.
//!
//! # Layout
//!
//! - [`config`]: settings (`--listen`, `--upstream name=url`, timeouts, limits) and their
//!   validation.
//! - [`gateway`]: [`Gateway`], the running core: upstreams, the current catalog, routing.
//! - [`upstream`]: one upstream: its rmcp client session, state, call path (breaker,
//!   concurrency slot, timeout, cancellation), and the supervisor that connects, lists,
//!   health-checks and reconnects it; `upstream::handler` receives its notifications.
//! - [`catalog`]: the federated lists and the routes of public names, rebuilt on every change.
//! - [`naming`]: the deterministic collision rule (`<upstream>_<tool>`, 64-character limit).
//! - [`breaker`]: the lock-free per-upstream circuit breaker.
//! - [`cache`]: the opt-in result cache of read-only, idempotent tools (in process or Redis).
//! - [`sessions`]: connected client sessions (for `list_changed` and their logging level).
//! - [`task_ids`]: the task ids and `tasks/list` cursors of MCP 2025-11-25 tasks, routed to
//!   their upstream by a tag (`gateway::tasks`, `upstream::tasks`, `server::tasks`).
//! - [`server`]: the rmcp `ServerHandler` clients talk to.
//! - [`endpoint`]: `/mcp`: rmcp's Streamable HTTP service, with the frequent requests of an
//!   initialized session answered on the HTTP request's own task.
//! - [`rest`]: `GET /api/tools`, `POST /api/tools/{name}`.
//! - [`metrics`]: `mcp_tool_calls_total`, `mcp_tool_call_duration_seconds`, `mcp_upstream_up`,
//!   `mcp_upstream_circuit_state`, `mcp_upstream_connects_total`.
//! - [`error`]: how a failed request looks to MCP and REST callers.
//! - `hop` (hidden): the per-call functions of the request path, named for the micro-benchmark
//!   `benches/hop.rs` (parse, route, rewrite, encode, without the network).
//!
//! [`serve`] runs the service on a listener the caller bound; [`router`] builds the app around
//! a [`Gateway`] started with [`Gateway::start`].

pub mod breaker;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod endpoint;

pub mod error;
pub mod gateway;
#[doc(hidden)]
pub mod hop;
pub mod metrics;
pub mod naming;
pub mod policy;
pub mod rest;
pub mod server;
pub mod sessions;
pub mod task_ids;
pub mod upstream;

use axum::Router;
use switchboard_protocol::mcp_server::McpEndpointOptions;
use switchboard_runtime::{
    DependencyStatus, Readiness, Service, ServiceApp, health::ReadinessReport, service::BoxFuture,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, RawConfig, UpstreamConfig};
pub use endpoint::Endpoint;
pub use gateway::Gateway;
pub use server::GatewayServer;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "mcp-server";

/// Ready when at least one upstream is up; every upstream's state is in the detail, and the
/// result cache's when it caches anything (degraded while its Redis fails: the gateway stays
/// ready, calls just go uncached).
struct GatewayReadiness(Gateway);

impl Readiness for GatewayReadiness {
    fn check(&self) -> BoxFuture<'_, ReadinessReport> {
        let states = rest::upstream_states(&self.0);
        let mut report = ReadinessReport::any(
            self.0
                .upstreams()
                .iter()
                .zip(states)
                .map(|(u, detail)| DependencyStatus::new(u.config.name.clone(), u.is_up(), detail))
                .collect(),
        );
        // Added after the verdict, which it must not change.
        report.dependencies.extend(self.0.cache().readiness());
        Box::pin(std::future::ready(report))
    }
}

/// The whole HTTP application for a started `gateway`: `/mcp`, `/api/tools`, and the common
/// endpoints.
pub fn router(gateway: &Gateway, config: &Config, shutdown: CancellationToken) -> Router {
    let mcp = Endpoint::new(
        gateway,
        &McpEndpointOptions::new(
            config.http.allowed_hosts.clone(),
            config.http.allowed_origins.clone(),
            config.http.max_body_bytes,
        ),
        config.session_idle_timeout,
        config.session_keys.clone(),
        shutdown,
    );
    ServiceApp::new(SERVICE, gateway.metrics().clone(), config.http.clone())
        .rest(rest::routes(gateway.clone()))
        .mcp(mcp)
        .readiness(GatewayReadiness(gateway.clone()))
        .build()
}

/// Serve the gateway on `listener` until `shutdown` is cancelled. Upstreams are connected in
/// the background; the gateway serves (and `/health` answers) before any of them is up.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), switchboard_runtime::Error> {
    let gateway = Gateway::start(&config, shutdown.child_token())?;
    serve_gateway(listener, gateway, config, shutdown).await
}

/// Like [`serve`], for a gateway the caller started (tests keep it to watch its state).
pub async fn serve_gateway(
    listener: TcpListener,
    gateway: Gateway,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), switchboard_runtime::Error> {
    let app = router(&gateway, &config, shutdown.child_token());
    tracing::info!(
        address = %listener.local_addr().map_err(switchboard_runtime::Error::Serve)?,
        upstreams = ?config.upstreams.iter().map(|u| format!("{}={}", u.name, u.url)).collect::<Vec<_>>(),
        "mcp-server serving MCP at /mcp and REST at /api/tools"
    );
    let served = switchboard_runtime::serve(listener, app, shutdown, &config.http).await;
    gateway.stopped(config.http.shutdown_grace).await;
    served
}

/// The gateway (mcp-server) as a [`Service`]: how the CLI and the test harness configure and
/// serve it.
pub struct GatewayService;

impl Service for GatewayService {
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
