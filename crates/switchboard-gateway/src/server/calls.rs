//! A tool call as its caller sees it: admitted by the policy, made, audited; a refusal or a
//! failure shaped as MCP wants it (a protocol error, or a tool error the model can act on).

use rmcp::{
    ErrorData as McpError,
    model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock},
};
use switchboard_runtime::auth::Identity;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    error::CallError,
    gateway::{Gateway, Refused},
    upstream::{Owner, handler::Caller},
};

/// A tool call as the policy admits it, made, and audited.
pub(super) async fn call_audited(
    gateway: &Gateway,
    identity: Option<Identity>,
    owner: Owner,
    caller: Caller,
    mut request: CallToolRequestParams,
    ct: &CancellationToken,
    span: tracing::Span,
) -> Result<CallToolResponse, McpError> {
    let audit = match gateway.admit_call(identity.as_ref(), &owner, &mut request, &span) {
        Ok(audit) => audit,
        Err(refused) => return refused_call(refused).map(CallToolResponse::Complete),
    };
    let call = gateway.call_tool(request, &owner, Some(caller), ct);
    let answer = match call.instrument(span).await {
        Ok(response) => Ok(response),
        Err(error) => failed_call(error).map(CallToolResponse::Complete),
    };
    match &answer {
        Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
            audit.finish("error", None)
        }
        Ok(_) => audit.finish("ok", None),
        Err(error) => audit.finish("error", Some(&error.message)),
    }
    answer
}

/// A call the gateway refused, as its caller sees it.
pub(crate) fn refused_call(refused: Refused) -> Result<CallToolResult, McpError> {
    match refused {
        Refused::Denied(why) => Err(McpError::invalid_params(why, None)),
        Refused::AuditUnavailable(why) => Err(McpError::internal_error(why, None)),
        // Over a limit: a tool error the model can act on (ask for less, retry later).
        refused @ (Refused::Limited(_) | Refused::Overloaded(_)) => Ok(CallToolResult::error(
            vec![ContentBlock::text(refused.reason())],
        )),
    }
}

/// A call that failed, as its caller sees it.
pub(crate) fn failed_call(error: CallError) -> Result<CallToolResult, McpError> {
    match error {
        error @ CallError::Unknown { .. } => Err(error.to_mcp()),
        CallError::Upstream { error, .. } => Err(error),
        // The upstream failed to answer: a tool error the model can read and act on.
        error => Ok(CallToolResult::error(vec![ContentBlock::text(
            error.to_string(),
        )])),
    }
}
