//! Serving MCP over Streamable HTTP, the same way in every service.

use std::sync::Arc;

use rmcp::{
    ServerHandler,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
        session::{SessionManager, local::LocalSessionManager, store::SessionStore},
    },
};

pub mod endpoint;
pub mod envelope;
pub mod rewrite;
pub mod sealed;
pub mod tasks_2025;
use tokio_util::sync::CancellationToken;

/// What an MCP endpoint accepts. Built from the service's HTTP settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct McpEndpointOptions {
    /// `Host` values accepted (DNS-rebinding protection); empty or `*` accepts any.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted when present; `*` accepts any.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// Where sessions this process does not hold are looked up (sealed ids: [`sealed`]).
    pub session_store: Option<Arc<dyn SessionStore>>,
    /// Sessions idle this long are closed (`None`: rmcp's default).
    pub idle_timeout: Option<std::time::Duration>,
    /// With keys, session ids are sealed and any replica holding a key serves any session.
    pub session_keys: Option<sealed::SessionKeys>,
    /// The handler's custom request methods that [`endpoint::McpEndpoint`] may answer on its
    /// own path (a session's, like a tool call).
    pub custom_methods: &'static [&'static str],
}

impl std::fmt::Debug for McpEndpointOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpEndpointOptions")
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("session_store", &self.session_store.is_some())
            .field("idle_timeout", &self.idle_timeout)
            .field("session_keys", &self.session_keys.is_some())
            .field("custom_methods", &self.custom_methods)
            .finish()
    }
}

impl McpEndpointOptions {
    pub fn new(
        allowed_hosts: Vec<String>,
        allowed_origins: Vec<String>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            allowed_hosts,
            allowed_origins,
            max_body_bytes,
            session_store: None,
            idle_timeout: None,
            session_keys: None,
            custom_methods: &[],
        }
    }

    /// Close sessions idle for `idle`.
    pub fn with_idle_timeout(mut self, idle: std::time::Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Seal session ids with `keys` (`None`: random ids).
    pub fn with_session_keys(mut self, keys: Option<sealed::SessionKeys>) -> Self {
        self.session_keys = keys;
        self
    }

    /// The handler's custom methods the endpoint may answer on its own path.
    pub fn with_custom_methods(mut self, methods: &'static [&'static str]) -> Self {
        self.custom_methods = methods;
        self
    }

    /// Restore sessions this process does not hold from `store`.
    pub fn with_session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.session_store = Some(store);
        self
    }
}

/// The session manager every service uses: sessions live in this process.
pub type Sessions = LocalSessionManager;

/// An rmcp Streamable HTTP service for `handler`, to be mounted at `/mcp`.
///
/// Each session gets a clone of `handler`. Sessions end when `shutdown` is cancelled, which
/// also closes open SSE streams so a graceful HTTP shutdown is not held up by them.
pub fn streamable_http_service<S>(
    handler: S,
    options: &McpEndpointOptions,
    shutdown: CancellationToken,
) -> StreamableHttpService<S, Sessions>
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    streamable_http_service_with_sessions(handler, options, shutdown, Arc::default())
}

/// Like [`streamable_http_service`], on a session manager the caller keeps: to configure it
/// (e.g. its idle timeout) or to look sessions up while they are served.
pub fn streamable_http_service_with_sessions<S, M>(
    handler: S,
    options: &McpEndpointOptions,
    shutdown: CancellationToken,
    sessions: Arc<M>,
) -> StreamableHttpService<S, M>
where
    S: ServerHandler + Clone + Send + Sync + 'static,
    M: SessionManager,
{
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(options.max_body_bytes);
    config = if options.allowed_hosts.is_empty() || options.allowed_hosts.iter().any(|h| h == "*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(options.allowed_hosts.clone())
    };
    config = if options.allowed_origins.iter().any(|o| o == "*") {
        config.disable_allowed_origins()
    } else {
        // An empty list with enforcement rejects every request that carries an Origin header.
        config
            .with_allowed_origins(options.allowed_origins.clone())
            .enforce_origin_validation()
    };
    config.session_store = options.session_store.clone();
    StreamableHttpService::new(move || Ok(handler.clone()), sessions, config)
}
