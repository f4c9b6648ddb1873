//! The MCP session with the gateway: tools are listed and called through it.
//!
//! The session is opened on first use and shared by every request (rmcp multiplexes
//! concurrent calls over it). When the gateway is down, each use fails fast with
//! [`GatewayError::Unreachable`] and the next use connects again, so the middleware recovers
//! by itself when the gateway comes back; an expired session (a restarted gateway) is
//! re-initialised by rmcp transparently.
//!
//! Trace context: every request to the gateway carries the current span's W3C context in
//! `params._meta` (`switchboard_protocol::mcp_trace`), so the gateway's spans of a tool call
//! join the chat's trace. The session's own tasks belong to no request: it is opened on a task
//! of its own (see [`Gateway::session`]).

use std::{sync::Arc, time::Duration};

use rmcp::{
    model::{CallToolRequestParams, CallToolResult, JsonObject, PaginatedRequestParams, Tool},
    service::ServiceError,
};
use switchboard_protocol::{
    mcp_client::{ConnectOptions, McpClient, connect},
    mcp_trace,
};
use tokio::sync::Mutex;

/// Longest wait for the tool list; listing is cheap, a slow answer means trouble.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait to open a session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the gateway could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot reach the MCP gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the MCP gateway at {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("the MCP gateway refused the request: {0}")]
    Refused(String),
}

/// The gateway client.
pub struct Gateway {
    url: String,
    options: ConnectOptions,
    session: Mutex<Option<Arc<McpClient>>>,
}

impl Gateway {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            options: ConnectOptions::default()
                .with_client_name("switchboard-middleware")
                .with_connect_timeout(CONNECT_TIMEOUT),
            session: Mutex::new(None),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The open session, or a new one.
    ///
    /// A new session is opened on a task of its own: rmcp's session tasks open their spans
    /// under the span current at connect time, and the session outlives the request that
    /// happened to open it — whose span would otherwise stay open (unexported, its trace id on
    /// unrelated log lines) until the session ends.
    async fn session(&self) -> Result<Arc<McpClient>, GatewayError> {
        let mut slot = self.session.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let (url, options) = (self.url.clone(), self.options.clone());
        let connecting = tokio::spawn(async move { connect(&url, &options).await });
        let client = match connecting.await {
            Ok(connected) => connected.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the connecting task failed: {e}")),
        }
        .map_err(|reason| GatewayError::Unreachable {
            url: self.url.clone(),
            reason,
        })?;
        tracing::info!(url = %self.url, "MCP session with the gateway opened");
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Forget `stale` so that the next use connects again.
    async fn forget(&self, stale: &Arc<McpClient>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, stale)) {
            *slot = None;
        }
    }

    fn classify(&self, error: ServiceError) -> (GatewayError, bool) {
        match error {
            ServiceError::McpError(e) => (GatewayError::Refused(e.message.to_string()), false),
            ServiceError::Timeout { timeout } => (
                GatewayError::Timeout {
                    url: self.url.clone(),
                    after: timeout,
                },
                false,
            ),
            other @ (ServiceError::TransportSend(_) | ServiceError::TransportClosed) => (
                GatewayError::Unreachable {
                    url: self.url.clone(),
                    reason: other.to_string(),
                },
                true,
            ),
            other => (GatewayError::Refused(other.to_string()), false),
        }
    }

    /// Every tool the gateway offers now. Retried once on a fresh session when the old one
    /// broke (listing has no side effects).
    pub async fn list_tools(&self) -> Result<Vec<Tool>, GatewayError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.session().await?;
            match tokio::time::timeout(LIST_TIMEOUT, list_all_tools(&client)).await {
                Ok(Ok(tools)) => return Ok(tools),
                Ok(Err(error)) => {
                    let (error, broken) = self.classify(error);
                    if broken {
                        self.forget(&client).await;
                        if attempt < 2 {
                            continue;
                        }
                    }
                    return Err(error);
                }
                Err(_) => {
                    return Err(GatewayError::Timeout {
                        url: self.url.clone(),
                        after: LIST_TIMEOUT,
                    });
                }
            }
        }
    }

    /// Call `name` with `arguments`, waiting at most `timeout`. A tool that fails is a
    /// `CallToolResult` with `is_error`; an `Err` means the call itself did not happen or did
    /// not finish. Not retried: a tool call may have side effects.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        timeout: Duration,
    ) -> Result<CallToolResult, GatewayError> {
        let client = self.session().await?;
        let params = mcp_trace::with_trace_context(
            CallToolRequestParams::new(name.to_owned()).with_arguments(arguments),
        );
        match tokio::time::timeout(timeout, client.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => {
                let (error, broken) = self.classify(error);
                if broken {
                    self.forget(&client).await;
                }
                Err(error)
            }
            Err(_) => Err(GatewayError::Timeout {
                url: self.url.clone(),
                after: timeout,
            }),
        }
    }
}

/// Every page of the gateway's tool list, each request carrying the current trace context
/// (rmcp's `list_all_tools` sends no `_meta`).
async fn list_all_tools(client: &McpClient) -> Result<Vec<Tool>, ServiceError> {
    let mut tools = Vec::new();
    let mut cursor = None;
    loop {
        let params =
            mcp_trace::with_trace_context(PaginatedRequestParams::default().with_cursor(cursor));
        let page = client.list_tools(Some(params)).await?;
        tools.extend(page.tools);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(tools),
        }
    }
}
