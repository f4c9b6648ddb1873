//! Errors of a chat, and how each reaches the client.
//!
//! | error | status | code |
//! |---|---|---|
//! | bad request body | 400 | `bad_request` |
//! | LLM unreachable | 502 | `llm_unreachable` |
//! | LLM too slow | 504 | `llm_timeout` |
//! | LLM answered with an error or garbage | 502 | `llm_error` |
//!
//! The message always says what failed and what to check. In a stream the same code and
//! message arrive as the final `error` event.

use axum::http::StatusCode;
use switchboard_runtime::ApiError;

use crate::llm::LlmError;

/// Why a chat could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{source}{}", after_note(*after_tool_calls))]
    Llm {
        source: LlmError,
        /// Tool calls that had already run when the LLM failed.
        after_tool_calls: usize,
    },
}

fn after_note(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" (after {n} tool call(s) had already run)")
    }
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::BadRequest(_) => "bad_request",
            ChatError::Llm { source, .. } => match source {
                LlmError::Unreachable { .. } => "llm_unreachable",
                LlmError::Timeout { .. } => "llm_timeout",
                LlmError::Status { .. } | LlmError::Protocol { .. } => "llm_error",
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ChatError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ChatError::Llm {
                source: LlmError::Timeout { .. },
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            ChatError::Llm { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        ApiError::new(error.status(), error.code(), error.to_string())
    }
}
