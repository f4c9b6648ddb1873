//! The command line.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::{
    Error,
    error::seconds,
    plan::{Plan, Stop},
};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-loadgen",
    version,
    about = "Closed-loop load generator: N workers, each with its own MCP session, HTTP connection or child process; prints throughput and latency percentiles as JSON."
)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// MCP `tools/call` over Streamable HTTP, one rmcp client session per worker (or one for
    /// all with `--shared-session`).
    Mcp(McpArgs),
    /// HTTP POST of a JSON body, one connection per worker; any 2xx answer counts.
    Http(HttpArgs),
    /// Start a program and wait for it to exit, one at a time per worker (cold-start baseline).
    Process(ProcessArgs),
    /// Serve a scripted OpenAI-compatible LLM that answers instantly (for middleware runs).
    ScriptedLlm(ScriptedLlmArgs),
    /// Serve one fixed JSON body to every request: the far end of the loopback-hop floor.
    #[command(hide = true)]
    Fixed(FixedArgs),
    /// Pass every request on to `--to` and its answer back: the floor of one extra HTTP hop.
    #[command(hide = true)]
    Forward(ForwardArgs),
}

/// Options every load mode shares.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Workers, each with its own session or connection (unless `--shared-session`): requests
    /// in flight at once.
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
    /// Measure for this many seconds (after the warm-up).
    #[arg(
        long,
        default_value_t = 5.0,
        value_name = "SECONDS",
        conflicts_with = "requests"
    )]
    pub duration: f64,
    /// Measure exactly this many requests instead of a fixed duration.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Pace the run to this many requests per second (all workers together) instead of sending
    /// each request as soon as the previous answer came; a worker that falls behind catches up
    /// by sending at once, never in a burst.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Send requests for this long first and leave them out of the report (connections warm,
    /// caches filled, the CPU clock up).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub warmup: f64,
    /// Count a response as an error unless it contains this text (the tool result as JSON, the
    /// HTTP body, or the program's stdout).
    #[arg(long, value_name = "TEXT")]
    pub expect: Option<String>,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl LoadArgs {
    /// The validated plan.
    pub fn plan(&self) -> Result<Plan, Error> {
        if self.concurrency == 0 || self.concurrency > 4096 {
            return Err(Error::usage(format!(
                "--concurrency {}: expected 1..=4096 workers",
                self.concurrency
            )));
        }
        let stop = match self.requests {
            Some(0) => return Err(Error::usage("--requests 0: expected at least 1 request")),
            Some(n) => Stop::Requests(n),
            None if self.duration > 0.0 => Stop::Duration(seconds("--duration", self.duration)?),
            None => {
                return Err(Error::usage(format!(
                    "--duration {}: expected a number of seconds > 0",
                    self.duration
                )));
            }
        };
        let rate = match self.rate {
            Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                return Err(Error::usage(format!(
                    "--rate {rate}: expected requests per second > 0, e.g. 20"
                )));
            }
            rate => rate,
        };
        Ok(Plan {
            concurrency: self.concurrency,
            warmup: seconds("--warmup", self.warmup)?,
            stop,
            rate,
        })
    }
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The MCP endpoint, e.g. http://127.0.0.1:8003/mcp.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The tool to call.
    #[arg(long, value_name = "NAME", required_unless_present = "list_tools")]
    pub tool: Option<String>,
    /// Send `tools/list` instead of calling a tool: the MCP serving path of a service whose
    /// tools do real work (the sandbox's run Python), measured without that work.
    #[arg(long, conflicts_with = "tool")]
    pub list_tools: bool,
    /// The tool's arguments as a JSON object.
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub arguments: String,
    /// A credential sent as `Authorization: Bearer` on every request (an API key or a JWT),
    /// for a service with authentication on.
    #[arg(long, value_name = "TOKEN")]
    pub bearer: Option<String>,
    /// The protocol revision: 2025-11-25 opens a session with `initialize`; 2026-07-28 asks
    /// `server/discover` once and then sends stateless requests (no session id, the lifecycle
    /// in each request's `_meta`).
    #[arg(long, value_enum, default_value_t = Protocol::V2025_11_25, value_name = "REVISION")]
    pub protocol: Protocol,
    /// One client session for all workers instead of one each: every worker sends on the same
    /// rmcp peer, which multiplexes the requests over up to `--concurrency` HTTP connections
    /// (what the gateway does towards an upstream).
    #[arg(long)]
    pub shared_session: bool,
    /// Send each request as raw JSON-RPC and read only its envelope (a result for that id, a
    /// tool's `isError`, `--expect`) instead of decoding the answer with rmcp's client: what
    /// the server spends, with less of the shared cores spent by the load generator. Either
    /// revision: a 2025-11-25 session is opened with `initialize`; 2026-07-28 requests carry
    /// their lifecycle `_meta` and standard headers after one `server/discover`.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub load: LoadArgs,
}

impl McpArgs {
    /// How the report names the target.
    pub fn target(&self) -> String {
        let sessions = if self.shared_session {
            ", one shared session"
        } else {
            ""
        };
        let raw = if self.raw { ", raw JSON-RPC" } else { "" };
        let request = match &self.tool {
            Some(tool) => format!("tools/call {tool}"),
            None => "tools/list".to_owned(),
        };
        format!(
            "{} {request} (protocol {}{sessions}{raw})",
            self.url,
            self.protocol.as_str()
        )
    }
}

/// The MCP protocol revisions the `mcp` mode speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Sessions: `initialize`, then requests carrying `Mcp-Session-Id`.
    #[value(name = "2025-11-25")]
    V2025_11_25,
    /// No session: `server/discover`, then self-contained requests.
    #[value(name = "2026-07-28")]
    V2026_07_28,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The URL to POST to.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The JSON body.
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub body: String,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The program and its arguments, after `--`.
    #[arg(required = true, last = true, value_name = "PROGRAM")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub load: LoadArgs,
}

impl ProcessArgs {
    /// How the report names the target.
    pub fn target(&self) -> String {
        self.command.join(" ")
    }
}

#[derive(Debug, Args)]
pub struct ScriptedLlmArgs {
    /// Where to listen, e.g. 127.0.0.1:9100 (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// The tool the scripted LLM calls when the user's message contains `tool`.
    #[arg(long, default_value = "get_current_time", value_name = "NAME")]
    pub tool: String,
    /// The arguments of that call as a JSON object.
    #[arg(long, default_value = r#"{"timezone":"UTC"}"#, value_name = "JSON")]
    pub tool_arguments: String,
}

#[derive(Debug, Args)]
pub struct FixedArgs {
    /// Where to listen (port 0 picks a free one; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// The body of every answer (served as `application/json`, status 200).
    #[arg(long, default_value = FIXED_BODY, value_name = "JSON")]
    pub body: String,
}

/// A JSON-RPC answer about the size of a `get_current_time` result, so the floor moves as many
/// bytes as the call it is compared with.
pub const FIXED_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"timezone\":\"UTC\",\"datetime\":\"2026-12-07T12:00:00+00:00\",\"utc_offset\":\"+00:00\",\"day_of_week\":\"Monday\",\"is_dst\":false}"}],"structuredContent":{"timezone":"UTC","datetime":"2026-12-07T12:00:00+00:00","utc_offset":"+00:00","day_of_week":"Monday","is_dst":false},"isError":false}}"#;

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Where to listen (port 0 picks a free one; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// The origin every request goes on to, e.g. http://127.0.0.1:18622 (the request's path
    /// and query are appended).
    #[arg(long, value_name = "URL")]
    pub to: String,
}
