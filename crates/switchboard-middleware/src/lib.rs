//! The chat middleware (port 8002): what users talk to. It turns a conversation into LLM
//! requests and MCP tool calls through the gateway, and returns an answer.
//!
//! # Layout
//!
//! - [`config`]: settings (`LLM_*`, `MIDDLEWARE_*`) and their validation.
//! - [`llm`]: the provider-neutral conversation model and the two wire formats
//!   (OpenAI-compatible, Ollama native), over the workspace's HTTP(S) client (reqwest on rustls).
//! - [`gateway`]: the MCP session with the gateway (list and call tools).
//! - [`catalog`]: the gateway's tools under names LLM APIs accept, results as text, truncation.
//! - [`dispatch`]: running one turn's tool calls concurrently, results in order.
//! - [`conversation`]: the tool loop with its round bound and wrap-up turn.
//! - [`planner`]: the offline planner used when no LLM is configured.
//! - [`sessions`]: one sandbox session per conversation, created on first code use, closed
//!   when the conversation ends or idles out.
//! - [`events`]: the answer, tool-call records and the typed streaming events.
//! - [`api`]: the REST routes — `/chat`, `/tools`, `/execute`, `/v1/chat/completions`,
//!   `/v1/models` and the chat page at `/`.
//! - [`health`]: readiness (gateway) and `/health` detail (gateway, LLM).
//! - [`metrics`], [`error`], [`state`].
//!
//! [`serve`] runs the service on a listener the caller bound; [`router`] builds the app.

pub mod api;
pub mod catalog;
pub mod config;
pub mod conversation;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod gateway;
pub mod health;
pub mod llm;
pub mod metrics;
pub mod planner;
pub mod sessions;
pub mod state;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    http::{HeaderName, Method, header},
};
use switchboard_runtime::{HttpSettings, Metrics, Service, ServiceApp, service::BoxFuture};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{Config, LlmSettings, Provider, RawConfig};
pub use events::{ChatAnswer, ChatEvent, Source, ToolCallRecord, ToolImage};

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "middleware";

/// How long browsers may cache a CORS preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// CORS for the configured origins. The same origins are added to the Host/Origin guard's
/// allowlist: an origin allowed to read answers is allowed to ask.
fn cors(origins: &[String]) -> CorsLayer {
    let matcher = HttpSettings::default().with_allowed_origins(origins.to_vec());
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| matcher.origin_allowed(o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(CORS_MAX_AGE)
}

/// The whole HTTP application. Fails only when the LLM client cannot be set up (TLS).
pub fn router(config: Config) -> Result<Router, switchboard_runtime::Error> {
    Ok(app(config)?.0)
}

/// The application and its state (which `serve` keeps, to close the gateway session last).
fn app(config: Config) -> Result<(Router, state::AppState), switchboard_runtime::Error> {
    let metrics = Metrics::new(SERVICE);
    let mut http = config.http.clone();
    for origin in &config.cors_origins {
        if !http.allowed_origins.contains(origin) {
            http.allowed_origins.push(origin.clone());
        }
    }
    let cors = cors(&config.cors_origins);
    let state = Arc::new(state::Shared::new(config, &metrics)?);
    let app = ServiceApp::new(SERVICE, metrics, http)
        .rest(api::routes(state.clone()))
        .readiness(health::MiddlewareReadiness(state.clone()))
        .health_details()
        .build();
    Ok((app.layer(cors), state))
}

/// Serve the middleware on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), switchboard_runtime::Error> {
    let http = config.http.clone();
    let mode = match &config.llm {
        Some(llm) => format!(
            "{} LLM at {} ({})",
            llm.provider.as_str(),
            llm.base_url,
            llm.model
        ),
        None => "offline planner (no LLM configured)".to_owned(),
    };
    let gateway = config.gateway_url.clone();
    let (app, state) = app(config)?;
    let sweeper = tokio::spawn(sweep_idle_conversations(
        state.clone(),
        shutdown.child_token(),
    ));
    tracing::info!(
        address = %listener.local_addr().map_err(switchboard_runtime::Error::Serve)?,
        %gateway,
        %mode,
        "middleware serving /chat, /v1/chat/completions and the chat page at /"
    );
    let served = switchboard_runtime::serve(listener, app, shutdown, &http).await;
    sweeper.abort();
    // Requests are done: close the conversations' sandbox sessions, then end the gateway
    // session (DELETE), while the gateway still listens, rather than from a task left behind
    // when the process winds down.
    state.conversations.close_all(&state).await;
    state.gateway.close().await;
    served
}

/// End idle conversations (closing their sandbox sessions) until `stop`: checked four times
/// per idle limit, so a conversation ends at most a quarter of the limit late.
async fn sweep_idle_conversations(state: state::AppState, stop: CancellationToken) {
    let every = (state.config.conversation_idle_timeout / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => state.conversations.close_idle(&state).await,
        }
    }
}

/// The middleware as a [`Service`]: how the CLI and the test harness configure and
/// serve it.
pub struct MiddlewareService;

impl Service for MiddlewareService {
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
