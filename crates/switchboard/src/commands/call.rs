//! `switchboard call NAME JSON`: call one of the gateway's tools over MCP and print the result.

use anyhow::{Context as _, bail};
use rmcp::model::CallToolRequestParams;
use serde_json::Value;

use super::tools::{GatewayArgs, session};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tool's name, as `switchboard tools` lists it.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The arguments as a JSON object, e.g. '{"timezone": "Europe/Berlin"}'.
    #[arg(value_name = "JSON", default_value = "{}")]
    pub arguments: String,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Print the whole MCP result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let arguments = match serde_json::from_str::<Value>(&args.arguments) {
        Ok(Value::Object(map)) => map,
        Ok(other) => bail!(
            "JSON: the arguments must be a JSON object such as '{{\"code\": \"print(1)\"}}', got {other}"
        ),
        Err(e) => bail!(
            "JSON: '{}' is not valid JSON ({e}); expected an object such as '{{\"code\": \"print(1)\"}}'",
            args.arguments
        ),
    };
    let client = session(&args.gateway).await?;
    let result = client
        .call_tool(CallToolRequestParams::new(args.name.clone()).with_arguments(arguments))
        .await
        .with_context(|| format!("the gateway did not run {}", args.name));
    client.cancel().await.ok();
    let result = result?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let text: Vec<&str> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
            .collect();
        match (&result.structured_content, text.is_empty()) {
            (Some(structured), _) => outln!("{}", serde_json::to_string_pretty(structured)?),
            (None, false) => outln!("{}", text.join("\n")),
            (None, true) => outln!("(no output)"),
        }
    }
    if result.is_error == Some(true) {
        bail!("{} reported an error (above)", args.name);
    }
    Ok(())
}
