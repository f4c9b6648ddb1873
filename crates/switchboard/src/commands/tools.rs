//! `switchboard tools`: list the gateway's tools over MCP.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use switchboard_protocol::mcp_client::{ConnectOptions, McpClient, connect};
use switchboard_runtime::{auth::Secret, client::ClientOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Print the tools as JSON (name, description, input and output schema).
    #[arg(long)]
    pub json: bool,
}

/// Where the gateway is.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// MCP endpoint of the gateway.
    #[arg(
        long = "gateway-url",
        env = "SWITCHBOARD_GATEWAY_URL",
        default_value = "http://127.0.0.1:8000/mcp",
        value_name = "URL"
    )]
    pub url: String,
    #[command(flatten)]
    pub token: TokenArgs,
}

/// The caller's credential, for services that authenticate.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Bearer credential (an API key or a JWT): `env:NAME`, `file:PATH` or the value itself.
    #[arg(long = "token", env = "SWITCHBOARD_TOKEN", value_name = "SECRET")]
    pub source: Option<String>,
}

impl TokenArgs {
    /// A client on the workspace's stack that sends the credential, if one was given.
    pub fn client(&self, timeout: Option<Duration>) -> anyhow::Result<reqwest::Client> {
        let bearer = self
            .source
            .as_deref()
            .map(|source| Secret::resolve("--token / SWITCHBOARD_TOKEN", source))
            .transpose()?;
        let mut builder = ClientOptions::default()
            .with_connect_timeout(Duration::from_secs(5))
            .with_bearer(bearer)
            .builder()?;
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        Ok(builder.build()?)
    }
}

/// An MCP session with the gateway, with an error that says what to check.
pub async fn session(gateway: &GatewayArgs) -> anyhow::Result<McpClient> {
    connect(
        &gateway.url,
        &ConnectOptions::default()
            .with_client_name("switchboard-cli")
            .with_http_client(gateway.token.client(None)?),
    )
    .await
    .with_context(|| {
        format!(
            "cannot open an MCP session with the gateway at {}; is `switchboard up` running?",
            gateway.url
        )
    })
}

/// `name(a, b?)` from an input schema: required parameters plain, optional ones with `?`.
fn signature(name: &str, schema: &serde_json::Map<String, Value>) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let params: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.keys()
                .map(|k| {
                    if required.contains(&k.as_str()) {
                        k.clone()
                    } else {
                        format!("{k}?")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{name}({})", params.join(", "))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = session(&args.gateway).await?;
    let tools = client
        .list_all_tools()
        .await
        .context("the gateway did not list its tools")?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&tools)?);
    } else if tools.is_empty() {
        outln!(
            "the gateway at {} offers no tools right now",
            args.gateway.url
        );
    } else {
        for tool in &tools {
            outln!("{}", signature(&tool.name, &tool.input_schema));
            let description = tool.description.as_deref().unwrap_or_default();
            if let Some(first) = description.split_terminator(". ").next() {
                outln!("    {}", first.trim_end_matches('.'));
            }
        }
    }
    client.cancel().await.ok();
    Ok(())
}
