//! `switchboard chat "..."`: ask the middleware and print the tool calls and the answer.
//!
//! The answer streams (`POST /chat` with `stream: true`): each tool call is printed when it
//! finishes, with its arguments and result, and the answer text as it arrives. Pictures a tool
//! returned (a plot from `execute_code`) are written to `--save-dir` as `<n>-<name>` and
//! their paths printed.

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
    /// Directory the pictures tools return are written to (created when needed).
    #[arg(long, default_value = "chat-images", value_name = "DIR")]
    pub save_dir: std::path::PathBuf,
}

/// Writes the pictures of tool calls to files: `<dir>/<n>-<name>`, numbered from 1 in the
/// order they arrive, never overwriting a file already there.
struct ImageSaver {
    dir: std::path::PathBuf,
    saved: usize,
}

impl ImageSaver {
    /// Save the pictures of one tool-call record and return their paths.
    fn save(&mut self, record: &Value) -> anyhow::Result<Vec<std::path::PathBuf>> {
        let mut paths = Vec::new();
        for image in record["images"].as_array().into_iter().flatten() {
            let data = image["data"].as_str().unwrap_or_default();
            let bytes = decode_base64(data).context("a picture's data is not base64")?;
            let name = safe_file_name(image["name"].as_str().unwrap_or("image"));
            std::fs::create_dir_all(&self.dir)
                .with_context(|| format!("cannot create {}", self.dir.display()))?;
            let path = loop {
                self.saved += 1;
                let path = self.dir.join(format!("{}-{name}", self.saved));
                if !path.exists() {
                    break path;
                }
            };
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            paths.push(path);
        }
        Ok(paths)
    }
}

/// The last component of a tool's file name, with anything but `A-Z a-z 0-9 . _ -` as `_`:
/// a name from a tool never chooses where a file goes.
fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() {
        "image".to_owned()
    } else {
        clean.to_owned()
    }
}

/// Standard base64 (padding optional), the alphabet MCP image content uses.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
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
    let mut saver = ImageSaver {
        dir: args.save_dir.clone(),
        saved: 0,
    };
    if args.json {
        let answer: Value = response.json().await.context("the answer is not JSON")?;
        outln!("{}", serde_json::to_string_pretty(&answer)?);
        // Paths on stderr: stdout stays one JSON document.
        for record in answer["tool_calls"].as_array().into_iter().flatten() {
            for path in saver.save(record)? {
                eprintln!("[image] saved {}", path.display());
            }
        }
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
            "tool_call_finished" => {
                print_tool_call(&data);
                for path in saver.save(&data)? {
                    outln!("[image] saved {}", path.display());
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(decode_base64("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("a b"), None);
    }

    #[test]
    fn tool_file_names_cannot_choose_the_directory() {
        assert_eq!(safe_file_name("outputs/chart.png"), "chart.png");
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name(".."), "image");
        assert_eq!(safe_file_name("a b?.png"), "a_b_.png");
    }
}
