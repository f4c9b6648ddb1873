//! The code-executor service: the MCP face of code execution (port 8004).
//!
//! # Layout
//!
//! - [`config`]: settings (`--listen`, `--sandbox-url` (repeatable), timeouts) and their
//!   validation.
//! - [`sandboxes`]: several sandboxes behind one code-executor: choice by free interpreters,
//!   ejection, retry only when nothing ran, packages kept level; each session's calls routed
//!   to the sandbox that holds it.
//! - [`client`]: the sandbox's REST API (`POST /execute`, `POST /packages`, `GET /ready`) over
//!   reqwest, with errors written for the model that called the tool; each request carries
//!   the tool call's `traceparent`; sessions and files as the caller's `X-Switchboard-Owner`.
//! - [`server`]: the rmcp handler with `execute_code` and `install_package`; results as text
//!   for the model, every field as structured content, `isError` for failures; each call in an
//!   `mcp_tool_call` span continuing the caller's trace. [`session_tools`]: the code
//!   interpreter's `create_session`, `close_session`, `upload_file`, `list_files`,
//!   `download_file`.
//! - [`tasks`]: task-augmented calls (MCP 2025-11-25 tasks): a bounded queue, results kept in
//!   a state directory for the task's TTL and across restarts; [`front`] maps their methods
//!   onto rmcp, which models the later tasks extension instead.
//!
//! The code-executor runs nothing itself: the gateway federates it, and it forwards to the
//! sandboxes. Its only state is its tasks, and where each session is (a hint it can
//! rebuild). `/ready` is ready while any sandbox can take an
//! execution. [`serve`] runs it on a listener the caller bound; [`router`] builds the app.

pub mod client;
pub mod config;
pub mod front;
pub mod sandboxes;
pub mod server;
pub mod session_tools;
mod task_methods;
pub mod tasks;

use axum::Router;
use switchboard_protocol::mcp_server::{McpEndpointOptions, endpoint::McpEndpoint};
use switchboard_runtime::{
    DependencyStatus, Metrics, Readiness, Service, ServiceApp, health::ReadinessReport,
    service::BoxFuture,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use client::{ClientError, SandboxClient};
pub use config::{Config, RawConfig, TaskSettings};
pub use front::TasksFront;
pub use sandboxes::Sandboxes;
pub use server::CodeExecutorServer;
pub use tasks::Tasks;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "code-executor";

/// `/ready`: ready when at least one sandbox can take an execution.
struct SandboxReady(Sandboxes);

impl Readiness for SandboxReady {
    fn check(&self) -> BoxFuture<'_, ReadinessReport> {
        Box::pin(async move {
            let (ready, detail) = self.0.describe();
            ReadinessReport::all(vec![DependencyStatus::new("sandbox", ready, detail)])
        })
    }
}

/// The whole HTTP application: `/mcp` plus the common endpoints.
pub fn router(
    config: &Config,
    shutdown: CancellationToken,
) -> Result<Router, switchboard_runtime::Error> {
    let metrics = Metrics::new(SERVICE);
    let sandbox = Sandboxes::start(config, shutdown.child_token())?;
    let tasks = Tasks::start(&config.tasks, &metrics, shutdown.child_token())?;
    let tasks_offered = tasks.offered();
    let handler = CodeExecutorServer::new(sandbox.clone(), tasks, &metrics);
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
    Ok(ServiceApp::new(SERVICE, metrics, config.http.clone())
        .mcp(TasksFront::new(
            mcp,
            config.http.max_body_bytes,
            tasks_offered,
        ))
        .readiness(SandboxReady(sandbox))
        .build())
}

/// Serve the code-executor on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), switchboard_runtime::Error> {
    let app = router(&config, shutdown.child_token())?;
    tracing::info!(
        address = %listener.local_addr().map_err(switchboard_runtime::Error::Serve)?,
        sandboxes = ?config.sandbox_urls,
        "code-executor serving MCP at /mcp"
    );
    switchboard_runtime::serve(listener, app, shutdown, &config.http).await
}

/// The code-executor as a [`Service`]: how the CLI and the test harness configure and
/// serve it.
pub struct CodeExecutorService;

impl Service for CodeExecutorService {
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
