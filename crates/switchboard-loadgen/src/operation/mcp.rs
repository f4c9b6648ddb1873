//! MCP `tools/call` over Streamable HTTP, one rmcp client session per worker.

use futures::future::try_join_all;
use rmcp::model::{CallToolRequestParams, JsonObject};
use switchboard_protocol::mcp_client::{ConnectOptions, McpClient, connect};

use super::{Operation, check_expected, shorten};
use crate::{Error, args::McpArgs};

/// One worker's session and the call it repeats.
pub struct McpCall {
    client: McpClient,
    params: CallToolRequestParams,
    expect: Option<String>,
}

/// Open `concurrency` sessions (concurrently) and check the arguments once.
pub async fn connect_all(args: &McpArgs, concurrency: usize) -> Result<Vec<McpCall>, Error> {
    let arguments: JsonObject = serde_json::from_str(&args.arguments).map_err(|e| {
        Error::usage(format!(
            "--arguments {}: expected a JSON object: {e}",
            args.arguments
        ))
    })?;
    let params = CallToolRequestParams::new(args.tool.clone()).with_arguments(arguments);
    let options = ConnectOptions::default().with_client_name("switchboard-loadgen");
    let sessions = (0..concurrency).map(|worker| {
        let options = &options;
        async move {
            // A client of its own per session, as `connect` builds without one, so that a run
            // with a credential differs from one without by the header only.
            let options = match &args.bearer {
                None => options.clone(),
                Some(token) => options
                    .clone()
                    .with_http_client(bearer_client(token, options)?),
            };
            connect(&args.url, &options)
                .await
                .map_err(|source| Error::Connect { worker, source })
        }
    });
    let clients = try_join_all(sessions).await?;
    Ok(clients
        .into_iter()
        .map(|client| McpCall {
            client,
            params: params.clone(),
            expect: args.load.expect.clone(),
        })
        .collect())
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
        let result = self
            .client
            .call_tool(self.params.clone())
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
