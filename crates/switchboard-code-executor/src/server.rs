//! The MCP face: `execute_code` and `install_package`, forwarded to the sandbox; the session
//! and file tools are in [`crate::session_tools`].

use std::time::Instant;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
        CustomResult, Implementation, ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use switchboard_protocol::{
    mcp_server::endpoint::SessionPeers,
    mcp_trace,
    sandbox::{
        EXECUTE_CODE_DESCRIPTION, ExecuteRequest, ExecutionResult, INSTALL_PACKAGE_DESCRIPTION,
        InstallOutcome, InstallRequest, execution_tool_result, install_tool_result,
        validate_file_name,
    },
};
use switchboard_runtime::{Metrics, metrics::latency_histogram};

use crate::{
    client::{ClientError, Owner},
    sandboxes::Sandboxes,
    task_methods,
    tasks::Tasks,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: &'static str,
}

/// Tool-call metrics: calls by tool and outcome (ok, tool_error, or why the sandbox failed),
/// and their duration.
#[derive(Clone)]
pub(crate) struct ToolMetrics {
    calls: Family<CallLabels, Counter>,
    duration: Family<ToolLabel, Histogram, fn() -> Histogram>,
}

impl ToolMetrics {
    fn register(metrics: &Metrics) -> Self {
        let this = Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
        };
        metrics.register(
            "mcp_tool_calls",
            "MCP tool calls, by tool and outcome: ok, tool_error (the program or install failed), or unreachable/timeout/refused/failed/bad_response (the sandbox did not deliver)",
            this.calls.clone(),
        );
        metrics.register(
            "mcp_tool_call_duration_seconds",
            "Time spent in MCP tool handlers, sandbox round trip included, by tool",
            this.duration.clone(),
        );
        this
    }

    pub(crate) fn record(&self, tool: &'static str, outcome: &'static str, start: Instant) {
        self.calls
            .get_or_create(&CallLabels { tool, outcome })
            .inc();
        self.duration
            .get_or_create(&ToolLabel { tool })
            .observe(start.elapsed().as_secs_f64());
    }
}

pub(crate) fn unavailable(what: &str, error: &ClientError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("{what}: {error}"))])
}

/// The rmcp handler. One clone serves each MCP session.
#[derive(Clone)]
pub struct CodeExecutorServer {
    pub(crate) sandbox: Sandboxes,
    tasks: Tasks,
    pub(crate) metrics: ToolMetrics,
    tool_router: ToolRouter<Self>,
    peers: SessionPeers,
}

#[tool_router]
impl CodeExecutorServer {
    pub fn new(sandbox: Sandboxes, tasks: Tasks, metrics: &Metrics) -> Self {
        Self {
            sandbox,
            tasks,
            metrics: ToolMetrics::register(metrics),
            tool_router: Self::tool_router() + Self::session_tool_router(),
            peers: SessionPeers::default(),
        }
    }

    /// The sessions' peers, which the MCP endpoint looks requests' sessions up in.
    pub fn session_peers(&self) -> SessionPeers {
        self.peers.clone()
    }

    /// The tasks of task-augmented calls (see [`crate::tasks`]).
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    #[tool(
        description = EXECUTE_CODE_DESCRIPTION,
        output_schema = schema_for_output::<ExecutionResult>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    pub async fn execute_code(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(args): Parameters<ExecuteRequest>,
    ) -> CallToolResult {
        let owner = task_methods::owner(&context);
        self.run_execute(args, owner).await
    }

    /// An execution, as a plain call and a task run it: in its session (on the sandbox that
    /// holds it, as `owner`) when it names one, else on any sandbox.
    #[tracing::instrument(skip_all, fields(code_bytes = args.code.len(), session_id = args.session_id.as_deref()))]
    pub(crate) async fn run_execute(
        &self,
        args: ExecuteRequest,
        owner: Result<Owner, String>,
    ) -> CallToolResult {
        let start = Instant::now();
        // Bad input files are answered here rather than after a round trip.
        let checked = args.files.iter().try_for_each(|file| {
            validate_file_name(&file.name)?;
            file.bytes().map(drop)
        });
        let result = match (checked, &args.session_id, owner) {
            (Err(why), ..) | (Ok(()), Some(_), Err(why)) => {
                self.metrics.record("execute_code", "refused", start);
                let text = format!("The program was not run: {why}");
                return CallToolResult::error(vec![ContentBlock::text(text)]);
            }
            (Ok(()), Some(id), Ok(owner)) => {
                self.sandbox.execute_in_session(&owner, id, &args).await
            }
            (Ok(()), None, owner) => self.sandbox.execute(&args, owner.as_ref().ok()).await,
        };
        match result {
            Ok(result) => {
                let outcome = if result.success { "ok" } else { "tool_error" };
                self.metrics.record("execute_code", outcome, start);
                execution_tool_result(&result)
            }
            Err(error) => {
                tracing::warn!(%error, "execute_code: the sandbox did not deliver");
                self.metrics.record("execute_code", error.kind(), start);
                let what = if error.not_run() || matches!(error, ClientError::Refused { .. }) {
                    "The program was not run"
                } else {
                    "No result"
                };
                unavailable(what, &error)
            }
        }
    }

    #[tool(
        description = INSTALL_PACKAGE_DESCRIPTION,
        output_schema = schema_for_output::<InstallOutcome>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = true)
    )]
    #[tracing::instrument(skip(self), fields(package = %args.package))]
    pub async fn install_package(
        &self,
        Parameters(args): Parameters<InstallRequest>,
    ) -> CallToolResult {
        let start = Instant::now();
        match self.sandbox.install(&args).await {
            Ok(outcome) => {
                let label = if outcome.is_error() {
                    "tool_error"
                } else {
                    "ok"
                };
                self.metrics.record("install_package", label, start);
                install_tool_result(&outcome)
            }
            Err(error) => {
                tracing::warn!(%error, "install_package: the sandbox did not deliver");
                self.metrics.record("install_package", error.kind(), start);
                unavailable("Nothing was installed", &error)
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodeExecutorServer {
    /// The session's peer, for requests the endpoint answers on its own path
    /// (`switchboard_protocol::mcp_server::endpoint`).
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        self.peers.register(&context);
    }

    /// Every call runs in an `mcp_tool_call{service, tool, trace_id}` span that continues the
    /// caller's trace (`traceparent` in `params._meta`, else the HTTP request's); the sandbox
    /// request made inside it carries that trace on (see [`crate::client`]).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        mcp_trace::call_tool(crate::SERVICE, &self.tool_router, self, request, context).await
    }

    /// MCP 2025-11-25 tasks: `tasks/result`, `tasks/list`, and what [`crate::front`] renamed
    /// (a task-augmented `tools/call`, `tasks/get`, `tasks/cancel`).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.task_request(request, context).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "switchboard-code-executor",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Code execution: execute_code runs a Python 3 program in an isolated sandbox without network and returns its output; install_package makes a package importable (subject to policy and operator approval). For work in several steps, create_session starts an interpreter that keeps its variables and files across execute_code calls that name its session_id; upload_file, list_files and download_file move files in and out of its /work; close_session ends it.",
            )
    }
}
