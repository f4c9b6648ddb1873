//! The MCP face of the sandbox: `execute_code` and `install_package` at `/mcp`.

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ServerCapabilities, ServerConfig,
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
    },
};

use crate::Sandbox;

/// What the sandbox tells a model about itself.
pub const INSTRUCTIONS: &str = "Python sandbox: execute_code runs a Python 3 program in an isolated, network-less sandbox and returns its output (pictures as images); create_session keeps one interpreter with its variables and files across execute_code calls, with upload_file, list_files and download_file for its /work; install_package adds a package (subject to an allow/deny policy and operator approval).";

/// The rmcp handler. One clone serves each MCP session.
#[derive(Clone)]
pub struct SandboxServer {
    sandbox: Sandbox,
    tool_router: ToolRouter<Self>,
    peers: SessionPeers,
}

#[tool_router]
impl SandboxServer {
    pub fn new(sandbox: Sandbox) -> Self {
        Self {
            sandbox,
            tool_router: Self::tool_router() + Self::session_tool_router(),
            peers: SessionPeers::default(),
        }
    }

    /// The sessions' peers, which the MCP endpoint looks requests' sessions up in.
    pub fn session_peers(&self) -> SessionPeers {
        self.peers.clone()
    }

    pub(crate) fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    #[tool(
        description = EXECUTE_CODE_DESCRIPTION,
        output_schema = schema_for_output::<ExecutionResult>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    #[tracing::instrument(skip_all, fields(code_bytes = args.code.len()))]
    pub async fn execute_code(
        &self,
        Parameters(args): Parameters<ExecuteRequest>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let owner = crate::session_tools::owner_of(&context);
        match self.sandbox.execute(args, &owner).await {
            Ok(result) => execution_tool_result(&result),
            Err(error) => CallToolResult::error(vec![ContentBlock::text(format!(
                "The program was not run: {error}"
            ))]),
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
        install_tool_result(&self.sandbox.install(&args).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SandboxServer {
    /// The session's peer, for requests the endpoint answers on its own path
    /// (`switchboard_protocol::mcp_server::endpoint`).
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        self.peers.register(&context);
    }

    /// Every call runs in an `mcp_tool_call{service, tool, trace_id}` span that continues the
    /// caller's trace (`traceparent` in `params._meta`, else the HTTP request's).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        mcp_trace::call_tool(crate::SERVICE, &self.tool_router, self, request, context).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "switchboard-sandbox",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}
