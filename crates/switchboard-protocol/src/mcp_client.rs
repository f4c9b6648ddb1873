//! Connecting to an MCP server over Streamable HTTP as an rmcp client.

use std::time::Duration;

use rmcp::{
    ClientLifecycleMode, ClientServiceExt, RoleClient,
    model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

/// A connected client session with the default (no-op) client handler.
pub type McpClient = RunningService<RoleClient, ClientConfig>;

/// Errors of [`connect`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("building the HTTP client failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("MCP initialization with {url} failed: {source}")]
    Initialize {
        url: String,
        #[source]
        source: Box<rmcp::service::ClientInitializeError>,
    },
    #[error("MCP initialization with {url} timed out after {timeout:?}")]
    Timeout { url: String, timeout: Duration },
}

/// How a client identifies itself and how long it waits to connect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    pub client_name: String,
    pub connect_timeout: Duration,
    /// Most ordinary POSTs in flight on one session at once.
    pub max_concurrent_requests: usize,
    /// The HTTP client to use (e.g. one from `switchboard_runtime::client`, with a CA file and
    /// proxies); `None` builds a plain one with `connect_timeout`.
    pub http: Option<reqwest::Client>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            client_name: "switchboard".to_owned(),
            connect_timeout: Duration::from_secs(5),
            max_concurrent_requests: 64,
            http: None,
        }
    }
}

impl ConnectOptions {
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }
    pub fn with_max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n;
        self
    }
}

/// The client configuration (`clientInfo`, capabilities) Switchboard sends.
pub fn client_config(name: &str) -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(name, env!("CARGO_PKG_VERSION")),
    )
}

/// Connect to the MCP server at `url` (e.g. `http://127.0.0.1:8003/mcp`) and initialize.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<McpClient, ConnectError> {
    connect_with(url, options, client_config(&options.client_name)).await
}

/// Like [`connect`], with a custom client handler (to receive notifications).
pub async fn connect_with<H>(
    url: &str,
    options: &ConnectOptions,
    handler: H,
) -> Result<RunningService<RoleClient, H>, ConnectError>
where
    H: rmcp::ClientHandler,
{
    connect_in(url, options, handler, ClientLifecycleMode::Initialize).await
}

/// Like [`connect_with`], on the 2026-07-28 lifecycle: `server/discover`, then stateless
/// requests carrying their `_meta`; no fallback to `initialize` (a server without
/// `server/discover` is an error).
pub async fn discover_with<H>(
    url: &str,
    options: &ConnectOptions,
    handler: H,
) -> Result<RunningService<RoleClient, H>, ConnectError>
where
    H: rmcp::ClientHandler,
{
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    connect_in(url, options, handler, lifecycle).await
}

async fn connect_in<H>(
    url: &str,
    options: &ConnectOptions,
    handler: H,
    lifecycle: ClientLifecycleMode,
) -> Result<RunningService<RoleClient, H>, ConnectError>
where
    H: rmcp::ClientHandler,
{
    let http = match &options.http {
        Some(http) => http.clone(),
        None => reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .build()?,
    };
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .max_concurrent_requests(options.max_concurrent_requests);
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let handshake = handler.serve_with_lifecycle(transport, lifecycle);
    match tokio::time::timeout(options.connect_timeout, handshake).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(source)) => Err(ConnectError::Initialize {
            url: url.to_owned(),
            source: Box::new(source),
        }),
        Err(_) => Err(ConnectError::Timeout {
            url: url.to_owned(),
            timeout: options.connect_timeout,
        }),
    }
}
