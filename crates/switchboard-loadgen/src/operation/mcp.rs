//! MCP `tools/call` (or `tools/list`) over Streamable HTTP: one rmcp client session per
//! worker, or one session shared by every worker (`--shared-session`); protocol 2025-11-25 (a
//! session opened with `initialize`) or 2026-07-28 (`server/discover`, then stateless
//! requests).

use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use switchboard_protocol::mcp_client::{
    ConnectOptions, McpClient, client_config, connect_with, discover_with,
};

use super::{Operation, check_expected, sessions, shorten, tool_arguments};
use crate::{
    Error,
    args::{McpArgs, Protocol},
};

/// One worker's session (its own, or a handle on the shared one) and the call it repeats.
pub struct McpCall {
    /// `Arc` so that workers can share one session; the session closes when the last worker
    /// drops its handle.
    client: Arc<McpClient>,
    /// `None`: `tools/list`.
    params: Option<CallToolRequestParams>,
    expect: Option<String>,
}

/// Open the sessions (one per worker, concurrently; or one for all) and check the arguments
/// once.
pub async fn connect_all(args: &McpArgs, concurrency: usize) -> Result<Vec<McpCall>, Error> {
    let arguments = tool_arguments(args)?;
    let params = args
        .tool
        .clone()
        .map(|tool| CallToolRequestParams::new(tool).with_arguments(arguments));
    // rmcp's transport keeps at most this many POSTs in flight per session and queues the
    // rest: a shared session must allow every worker's request at once, or the run would
    // measure the queue instead of the server.
    let in_flight = ConnectOptions::default()
        .max_concurrent_requests
        .max(concurrency);
    let options = ConnectOptions::default()
        .with_client_name("switchboard-loadgen")
        .with_max_concurrent_requests(in_flight);
    let clients = sessions(args.shared_session, concurrency, |worker| {
        open(args, &options, worker)
    })
    .await?;
    Ok(clients
        .into_iter()
        .map(|client| McpCall {
            client,
            params: params.clone(),
            expect: args.load.expect.clone(),
        })
        .collect())
}

/// One client session on `args.protocol`; `worker` names it in errors.
async fn open(args: &McpArgs, options: &ConnectOptions, worker: usize) -> Result<McpClient, Error> {
    // A client of its own per session, as `connect` builds without one, so that a run with a
    // credential differs from one without by the header only.
    let options = match &args.bearer {
        None => options.clone(),
        Some(token) => options
            .clone()
            .with_http_client(bearer_client(token, options)?),
    };
    let opened = match args.protocol {
        Protocol::V2025_11_25 => {
            // Named explicitly: rmcp's default is its newest revision, which a server answers
            // with a session of the newest revision that still has `initialize` — this one
            // today, but not necessarily after an rmcp upgrade.
            let config = client_config(&options.client_name)
                .with_protocol_version(ProtocolVersion::V_2025_11_25);
            connect_with(&args.url, &options, config).await
        }
        // No fallback to `initialize`: a server that only speaks the session revisions fails
        // the run instead of being measured on them.
        Protocol::V2026_07_28 => {
            discover_with(&args.url, &options, client_config(&options.client_name)).await
        }
    };
    opened.map_err(|source| Error::Connect { worker, source })
}

fn bearer_client(token: &str, options: &ConnectOptions) -> Result<reqwest::Client, Error> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::usage("--bearer: not a valid header value".to_owned()))?;
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .default_headers(headers)
        .build()
        .map_err(|e| Error::usage(format!("cannot build the HTTP client: {e}")))
}

impl Operation for McpCall {
    async fn call(&mut self) -> Result<(), String> {
        let Some(params) = &self.params else {
            let list = self
                .client
                .list_tools(None)
                .await
                .map_err(|e| format!("tools/list failed: {e}"))?;
            if self.expect.is_some() {
                let answer = serde_json::to_string(&list).unwrap_or_default();
                check_expected(self.expect.as_deref(), &answer)?;
            }
            return Ok(());
        };
        let result = self
            .client
            .call_tool(params.clone())
            .await
            .map_err(|e| format!("tools/call failed: {e}"))?;
        if result.is_error == Some(true) || self.expect.is_some() {
            let answer = serde_json::to_string(&result).unwrap_or_default();
            if result.is_error == Some(true) {
                return Err(format!("tool error: {}", shorten(&answer)));
            }
            check_expected(self.expect.as_deref(), &answer)?;
        }
        Ok(())
    }
}
