//! `switchboard chat "..."`: ask the middleware and print the tool calls and the answer.
//!
//! The answer streams (`POST /chat` with `stream: true`): each tool call is printed when it
//! finishes, with its arguments and result, and the answer text as it arrives.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use futures::StreamExt;
use serde_json::{Value, json};

/// Longest tool result printed; the rest is elided (`--json` prints everything).
const MAX_SHOWN: usize = 2000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The message, e.g. "Execute: print('Hello') and tell me the time".
    #[arg(required = true, value_name = "MESSAGE")]
    pub message: Vec<String>,
    /// Base URL of the middleware.
    #[arg(
        long,
        env = "SWITCHBOARD_MIDDLEWARE_URL",
        default_value = "http://127.0.0.1:8002",
        value_name = "URL"
    )]
    pub url: String,
    #[command(flatten)]
    pub token: super::tools::TokenArgs,
    /// Model to ask instead of the middleware's configured one.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Print the whole JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the whole answer.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub timeout: f64,
}

pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!(
            "{}… ({} characters in all)",
            &text[..cut],
            text.chars().count()
        ),
        None => text.to_owned(),
    }
}

fn print_tool_call(record: &Value) {
    let mark = if record["is_error"] == true {
        "failed"
    } else {
        "ok"
    };
    outln!(
        "[tool] {} {} -> {mark} in {:.1} ms",
        record["name"].as_str().unwrap_or("?"),
        record["arguments"],
        record["duration_ms"].as_f64().unwrap_or(0.0)
    );
    let result = record["result"].as_str().unwrap_or_default();
    for line in shorten(result, MAX_SHOWN).lines() {
        outln!("       {line}");
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let timeout = switchboard_runtime::config::seconds("--timeout", args.timeout)?;
    let client = args.token.client(Some(timeout))?;
    let url = format!("{}/chat", args.url.trim_end_matches('/'));
    let body = json!({
        "message": args.message.join(" "),
        "model": args.model,
        "stream": !args.json,
    });
    let response = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| {
            format!("cannot reach the middleware at {url}; is `switchboard up` running?")
        })?;
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or_default();
        bail!(
            "the middleware answered {status}: {}",
            body["error"]["message"].as_str().unwrap_or("(no message)")
        );
    }
    if args.json {
        let answer: Value = response.json().await.context("the answer is not JSON")?;
        outln!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    // sse-stream decodes the event stream (UTF-8 across chunk boundaries, CRLF, multi-line
    // data), as the services' own clients do.
    let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    let mut printed_text = false;
    let mut stdout = std::io::stdout();
    while let Some(event) = events.next().await {
        let event = event.context("the answer stream broke")?;
        let Some(data) = event.data else {
            continue;
        };
        let event = event.event.unwrap_or_else(|| "message".to_owned());
        let data: Value = serde_json::from_str(&data).context("an event is not JSON")?;
        match event.as_str() {
            "tool_call_finished" => print_tool_call(&data),
            "text" => {
                if !printed_text {
                    outln!();
                    printed_text = true;
                }
                out!("{}", data["delta"].as_str().unwrap_or_default());
                stdout.flush().ok();
            }
            "done" => {
                outln!();
                if let Some(warnings) = data["warnings"].as_array() {
                    for warning in warnings {
                        eprintln!("warning: {}", warning.as_str().unwrap_or_default());
                    }
                }
                return Ok(());
            }
            "error" => {
                if printed_text {
                    outln!();
                }
                bail!("{}", data["message"].as_str().unwrap_or("the chat failed"));
            }
            _ => {}
        }
    }
    bail!("the answer stream ended without a final event")
}
