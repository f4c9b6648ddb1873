//! Why a routed request failed, and how each failure is shown to MCP and REST callers.
//!
//! Failures of an upstream (down, circuit open, timeout, transport) are tool results with
//! `isError: true` on MCP, so the model reads which upstream failed and why; on REST they are
//! 502/503/504. An unknown name is a protocol error (MCP `-32602`, REST 404). An error the
//! upstream itself answered with is passed on unchanged.

use std::time::Duration;

use axum::http::StatusCode;
use rmcp::{ErrorData as McpError, model::ErrorCode};
use switchboard_runtime::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown {kind} '{name}'; list them with {list}")]
    Unknown {
        kind: &'static str,
        name: String,
        list: &'static str,
    },
    #[error("upstream '{upstream}' is unavailable: {reason}")]
    Down { upstream: String, reason: String },
    #[error(
        "upstream '{upstream}' is failing and its circuit breaker is open; calls resume after a probe in {}s",
        retry_in.as_secs_f64().ceil()
    )]
    CircuitOpen {
        upstream: String,
        retry_in: Duration,
    },
    #[error(
        "upstream '{upstream}' keeps a session per client and already has {limit}, its limit (max_sessions / --max-upstream-sessions); try again when other clients have left"
    )]
    SessionLimit { upstream: String, limit: usize },
    #[error("upstream '{upstream}' did not answer within {}s", timeout.as_secs_f64())]
    Timeout { upstream: String, timeout: Duration },
    #[error("upstream '{upstream}' could not be reached: {message}")]
    Transport { upstream: String, message: String },
    #[error("upstream '{upstream}' returned an unexpected kind of result")]
    Unexpected { upstream: String },
    /// The upstream answered with a JSON-RPC error; passed on as it is.
    #[error("upstream '{upstream}' answered with an error: {}", error.message)]
    Upstream { upstream: String, error: McpError },
    /// The caller cancelled the request; nobody reads the answer.
    #[error("cancelled by the caller")]
    Cancelled,
}

impl CallError {
    /// The `outcome` label of `mcp_tool_calls_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::Unknown { .. } => "unknown",
            CallError::Down { .. }
            | CallError::CircuitOpen { .. }
            | CallError::SessionLimit { .. } => "unavailable",
            CallError::Timeout { .. } => "timeout",
            CallError::Transport { .. } | CallError::Unexpected { .. } => "transport_error",
            CallError::Upstream { .. } => "upstream_error",
            CallError::Cancelled => "cancelled",
        }
    }

    /// Whether this is the upstream's own answer or the caller's doing rather than a failure of
    /// the upstream to answer (only the latter count for the circuit breaker).
    pub fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            CallError::Timeout { .. } | CallError::Transport { .. }
        )
    }

    /// As a JSON-RPC error, for requests that have no tool-error form (resources, prompts) and
    /// for unknown tools.
    pub fn to_mcp(&self) -> McpError {
        match self {
            CallError::Unknown { kind, .. } if *kind == "resource" => {
                McpError::resource_not_found(self.to_string(), None)
            }
            CallError::Unknown { .. } => McpError::invalid_params(self.to_string(), None),
            CallError::Upstream { error, .. } => error.clone(),
            CallError::Cancelled => {
                McpError::new(ErrorCode::INTERNAL_ERROR, self.to_string(), None)
            }
            _ => McpError::new(ErrorCode::INTERNAL_ERROR, self.to_string(), None),
        }
    }

    /// As a REST error.
    pub fn to_api(&self) -> ApiError {
        let message = self.to_string();
        match self {
            CallError::Unknown { .. } => ApiError::not_found(message),
            CallError::Down { .. }
            | CallError::CircuitOpen { .. }
            | CallError::SessionLimit { .. } => ApiError::unavailable(message),
            CallError::Timeout { .. } => ApiError::timeout(message),
            CallError::Transport { .. } | CallError::Unexpected { .. } => {
                ApiError::bad_gateway(message)
            }
            CallError::Upstream { error, .. } if error.code == ErrorCode::INVALID_PARAMS => {
                ApiError::bad_request(message)
            }
            CallError::Upstream { .. } => ApiError::bad_gateway(message),
            CallError::Cancelled => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "cancelled", message)
            }
        }
    }
}

/// The innermost cause of an error: the part that says what actually went wrong (rmcp's outer
/// layers name transport types, not causes).
pub fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    cause
}
