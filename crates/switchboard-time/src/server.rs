//! The MCP face of the time-client: `get_current_time` and `convert_time`.

use std::time::Instant;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
};
use rmcp::{
    ErrorData, Json, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, Implementation, ServerCapabilities, ServerConfig,
    },
    schemars,
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use serde::Deserialize;
use switchboard_protocol::{mcp_server::endpoint::SessionPeers, mcp_trace};
use switchboard_runtime::{Metrics, metrics::latency_histogram};

use crate::clock::{self, Conversion, ZonedTime};

/// Arguments of `get_current_time`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrentTimeArgs {
    /// IANA time zone name, e.g. `Europe/Berlin`, `America/New_York`, `Asia/Kolkata` or `UTC`.
    /// Omit it for the server's default zone (UTC unless configured otherwise).
    ///
    /// (Schema: a plain optional string. Without `with`, schemars writes
    /// `"type": ["string", "null"]`, which the MCP Inspector's strict mode flags.)
    #[serde(default)]
    #[schemars(with = "String")]
    pub timezone: Option<String>,
}

/// Arguments of `convert_time`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertTimeArgs {
    /// Time of day to convert, `HH:MM` in 24-hour form (e.g. `14:30`), taken as today's date in
    /// the source zone.
    pub time: String,
    /// IANA time zone the given time is in, e.g. `Europe/London`.
    pub source_timezone: String,
    /// IANA time zone to convert to, e.g. `Asia/Tokyo`.
    pub target_timezone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolNameLabel {
    tool: &'static str,
}

/// Tool-call metrics of this service.
#[derive(Clone)]
struct ToolMetrics {
    calls: Family<ToolLabels, Counter>,
    duration: Family<ToolNameLabel, Histogram, fn() -> Histogram>,
}

impl ToolMetrics {
    fn register(metrics: &Metrics) -> Self {
        let calls = Family::<ToolLabels, Counter>::default();
        let duration: Family<ToolNameLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        metrics.register(
            "mcp_tool_calls",
            "MCP tool calls served, by tool and outcome (ok, tool_error)",
            calls.clone(),
        );
        metrics.register(
            "mcp_tool_call_duration_seconds",
            "Time spent in MCP tool handlers, by tool",
            duration.clone(),
        );
        Self { calls, duration }
    }

    fn record<T>(&self, tool: &'static str, start: Instant, result: &Result<T, String>) {
        let outcome = if result.is_ok() { "ok" } else { "tool_error" };
        tracing::debug!(outcome, "tool call answered");
        self.calls
            .get_or_create(&ToolLabels { tool, outcome })
            .inc();
        self.duration
            .get_or_create(&ToolNameLabel { tool })
            .observe(start.elapsed().as_secs_f64());
    }
}

/// The rmcp server handler. One clone serves each MCP session.
#[derive(Clone)]
pub struct TimeServer {
    default_timezone: String,
    metrics: ToolMetrics,
    tool_router: ToolRouter<Self>,
    peers: SessionPeers,
}

#[tool_router]
impl TimeServer {
    pub fn new(default_timezone: String, metrics: &Metrics) -> Self {
        Self {
            default_timezone,
            metrics: ToolMetrics::register(metrics),
            tool_router: Self::tool_router(),
            peers: SessionPeers::default(),
        }
    }

    /// The sessions' peers, which the MCP endpoint looks requests' sessions up in.
    pub fn session_peers(&self) -> SessionPeers {
        self.peers.clone()
    }

    /// Current time in a time zone.
    #[tool(
        description = "Get the current date and time in an IANA time zone (default UTC). Returns an ISO 8601 timestamp with UTC offset, the offset, the day of the week and whether daylight saving time is in effect.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    #[tracing::instrument(skip(self), fields(timezone = ?args.timezone))]
    pub async fn get_current_time(
        &self,
        Parameters(args): Parameters<CurrentTimeArgs>,
    ) -> Result<Json<ZonedTime>, String> {
        let start = Instant::now();
        let zone = args.timezone.as_deref().unwrap_or(&self.default_timezone);
        let result = clock::at(jiff::Timestamp::now(), zone);
        self.metrics.record("get_current_time", start, &result);
        result.map(Json)
    }

    /// Convert a time of day between zones.
    #[tool(
        description = "Convert a time of day (HH:MM, 24-hour, today's date) from one IANA time zone to another. Returns both local times as ISO 8601 timestamps with offsets and the difference between the zones.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    #[tracing::instrument(skip(self))]
    pub async fn convert_time(
        &self,
        Parameters(args): Parameters<ConvertTimeArgs>,
    ) -> Result<Json<Conversion>, String> {
        let start = Instant::now();
        let result = clock::convert(
            jiff::Timestamp::now(),
            &args.time,
            &args.source_timezone,
            &args.target_timezone,
        );
        self.metrics.record("convert_time", start, &result);
        result.map(Json)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TimeServer {
    /// The session's peer, for requests the endpoint answers on its own path
    /// (`switchboard_protocol::mcp_server::endpoint`).
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        self.peers.register(&context);
    }

    /// Every call runs in an `mcp_tool_call{service, tool, trace_id}` span that continues the
    /// caller's trace (`traceparent` in `params._meta`, else the HTTP request's), so the call's
    /// log lines and exported spans carry the caller's trace id.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        mcp_trace::call_tool(crate::SERVICE, &self.tool_router, self, request, context).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("switchboard-time", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Time tools: get_current_time for the current time in any IANA time zone, convert_time to convert a time of day between zones.",
            )
    }
}
