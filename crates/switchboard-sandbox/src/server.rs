//! The MCP face of the sandbox: `execute_code` and `install_package` at `/mcp`.

use rmcp::{
    ServerHandler,
    handler::server::{common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use switchboard_protocol::sandbox::{ExecuteRequest, ExecutionResult, InstallOutcome, InstallRequest};

use crate::Sandbox;

/// What both MCP faces (sandbox and code-executor) tell a model about the tools.
pub const EXECUTE_CODE_DESCRIPTION: &str = "Run a Python 3 program in a fresh, isolated sandbox and return its output. The program runs as its own process with no network access, an empty environment, a private temporary working directory (/work, files vanish afterwards) and limits on time, memory, processes and output. Print what you want to see. Returns stdout, stderr, the exit code (or the signal that killed it), the duration, and flags for timeout, memory limit and truncated output; a program that raises is reported as an error with its traceback. Packages installed with install_package can be imported.";
pub const INSTALL_PACKAGE_DESCRIPTION: &str = "Install a Python package (from the package index or the operator's wheel directory) so later execute_code programs can import it. Give the package name and optionally an exact version (e.g. package='requests', version='2.31.0', or package='requests==2.31.0'); ranges are not accepted. Some packages are refused (known-malicious) and some are held for a human operator's approval: the result says installed, rejected (with the reason), pending_approval (with an approval id; the package is not usable until approved) or failed (pip's error).";
pub const INSTRUCTIONS: &str = "Python sandbox: execute_code runs a Python 3 program in an isolated, network-less sandbox and returns its output; install_package adds a package (subject to an allow/deny policy and operator approval).";

/// The tool result for an execution: text for the model, every field as structured content,
/// `isError` when the program did not succeed.
pub fn execution_result(result: &ExecutionResult) -> CallToolResult {
    structured(result.to_text(), serde_json::to_value(result), !result.success)
}

/// The tool result for an install decision.
pub fn install_result(outcome: &InstallOutcome) -> CallToolResult {
    structured(outcome.to_text(), serde_json::to_value(outcome), outcome.is_error())
}

fn structured(text: String, value: serde_json::Result<serde_json::Value>, is_error: bool) -> CallToolResult {
    match value {
        Ok(value) => {
            let mut result = CallToolResult::structured(value);
            result.content = vec![ContentBlock::text(text)];
            result.is_error = Some(is_error);
            result
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(format!(
            "{text}\n(structured result unavailable: {error})"
        ))]),
    }
}

/// The rmcp handler. One clone serves each MCP session.
#[derive(Clone)]
pub struct SandboxServer {
    sandbox: Sandbox,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl SandboxServer {
    pub fn new(sandbox: Sandbox) -> Self {
        Self {
            sandbox,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = EXECUTE_CODE_DESCRIPTION,
        output_schema = schema_for_output::<ExecutionResult>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    #[tracing::instrument(skip_all, fields(code_bytes = args.code.len()))]
    pub async fn execute_code(&self, Parameters(args): Parameters<ExecuteRequest>) -> CallToolResult {
        match self.sandbox.execute(args).await {
            Ok(result) => execution_result(&result),
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
    pub async fn install_package(&self, Parameters(args): Parameters<InstallRequest>) -> CallToolResult {
        install_result(&self.sandbox.install(&args).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SandboxServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("switchboard-sandbox", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}
