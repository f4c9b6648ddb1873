//! What Switchboard services say to each other.
//!
//! # Layout
//!
//! - [`mcp_server`]: serving an rmcp `ServerHandler` over Streamable HTTP with Host/Origin
//!   validation, body limit and shutdown wired the same way in every service. (rmcp already
//!   reports arguments that do not fit a tool's schema as tool errors with `isError`, as the
//!   2025-11-25 specification asks, so the model can read and correct them.)
//! - [`mcp_client`]: connecting to an MCP server over Streamable HTTP as an rmcp client.
//! - [`mcp_trace`]: W3C trace context in MCP requests' `params._meta` — writing the current
//!   span's context into outgoing requests, and the `mcp_tool_call` span of incoming calls.
//! - [`sandbox`]: the wire types of the sandbox REST API, which the code-executor forwards and
//!   whose fields are also the structured content of `execute_code` and `install_package`.
//!
//! No service imports another; they share these types and talk over HTTP.

pub mod mcp_client;
pub mod mcp_server;
pub mod mcp_trace;
pub mod sandbox;
