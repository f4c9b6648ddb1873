//! REST for callers that do not speak MCP.
//!
//! - `GET /api/tools`: every known tool (name, title, description, input and output schema,
//!   annotations), its upstream and whether that upstream is up, plus each upstream's state.
//! - `POST /api/tools/{name}` with the arguments object as the body (empty body = `{}`):
//!   the `CallToolResult` as JSON (`content`, `structuredContent`, `isError`). A tool that
//!   fails is still 200 with `isError: true`; the gateway's own failures are errors: unknown
//!   tool 404, upstream down or circuit open 503, upstream unreachable 502, timeout 504.
//!
//! With a policy (`--policy`), both show and call only what the caller may call (403 with
//! the reason otherwise, also for arguments over a limit of the caller's roles), and a call
//! over one of the policy's per-tool rate limits is 429 with `Retry-After`.

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rmcp::model::{CallToolRequestParams, CallToolResponse};
use serde_json::{Value, json};
use switchboard_runtime::{ApiError, auth::Identity};
use tokio_util::sync::CancellationToken;

use crate::{
    gateway::{Gateway, Refused},
    upstream::{Owner, Status},
};

pub fn routes(gateway: Gateway) -> Router {
    Router::new()
        .route("/api/tools", get(list_tools))
        .route("/api/tools/{name}", post(call_tool))
        .with_state(gateway)
}

/// The state of every upstream, as JSON (also used by `/ready`).
pub fn upstream_states(gateway: &Gateway) -> Vec<Value> {
    gateway
        .upstreams()
        .iter()
        .map(|u| {
            let state = u.state();
            json!({
                "name": u.config.name,
                "url": u.config.url,
                "status": state.status,
                "error": state.error,
                "server": state.server,
                "circuit": u.breaker.state().as_str(),
                // Stateful upstreams keep a session per client (`upstream::pool`).
                "client_sessions": if u.isolates_clients() { "per_client" } else { "shared" },
                "open_client_sessions": u.client_sessions(),
                "max_client_sessions": u.config.max_sessions,
                "consecutive_failures": state.consecutive_failures,
                "since": state.since.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(),
            })
        })
        .collect()
}

async fn list_tools(
    State(gateway): State<Gateway>,
    identity: Option<Extension<Identity>>,
) -> Json<Value> {
    let catalog = gateway.catalog();
    let upstreams = gateway.upstreams();
    let permissions = gateway.permissions(identity.as_ref().map(|i| &i.0));
    let tools: Vec<Value> = catalog
        .entries
        .iter()
        .filter(|entry| gateway.may_call(permissions.as_ref(), &entry.tool.name, entry.upstream))
        .map(|entry| {
            let upstream = &upstreams[entry.upstream];
            let tool = &entry.tool;
            json!({
                "name": tool.name,
                "title": tool.title,
                "description": tool.description,
                "input_schema": tool.input_schema,
                "output_schema": tool.output_schema,
                "annotations": tool.annotations,
                // Whether a `cache` rule matches, and whether it applies (`crate::cache`).
                "cache": catalog.tool_routes.get(tool.name.as_ref()).map(|r| r.cache.describe()),
                "upstream": upstream.config.name,
                "upstream_status": upstream.state().status,
                "available": upstream.state().status == Status::Up,
            })
        })
        .collect();
    Json(json!({ "tools": tools, "upstreams": upstream_states(&gateway) }))
}

async fn call_tool(
    State(gateway): State<Gateway>,
    Path(name): Path<String>,
    identity: Option<Extension<Identity>>,
    body: Bytes,
) -> Result<Json<Value>, Response> {
    let identity = identity.map(|i| i.0);
    let arguments = parse_arguments(&body).map_err(IntoResponse::into_response)?;
    let mut params = CallToolRequestParams::new(name).with_arguments(arguments);
    let span = tracing::Span::current();
    // No session: the upstream sessions of the caller (one per identity).
    let owner = Owner::of(None, identity.as_ref());
    let audit = match gateway.admit_call(identity.as_ref(), &owner, &mut params, &span) {
        Ok(audit) => audit,
        Err(Refused::Denied(why) | Refused::Limited(why)) => {
            return Err(ApiError::forbidden(why).into_response());
        }
        Err(Refused::Overloaded(over)) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                &over.why,
            )
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(over.retry_after_seconds()),
            );
            return Err(response);
        }
        Err(Refused::AuditUnavailable(why)) => {
            return Err(ApiError::unavailable(why).into_response());
        }
    };
    // Dropping this future (the HTTP client went away) cancels the upstream request.
    let never = CancellationToken::new();
    let answer = match gateway.call_tool(params, &owner, None, &never).await {
        Ok(CallToolResponse::Complete(result)) => {
            let outcome = if result.is_error == Some(true) {
                "error"
            } else {
                "ok"
            };
            audit.finish(outcome, None);
            return serde_json::to_value(result)
                .map(Json)
                .map_err(|e| ApiError::internal(e).into_response());
        }
        Ok(_) => ApiError::bad_gateway(
            "the upstream asked for more input (input_required or task), which REST cannot provide; call this tool over MCP",
        ),
        Err(error) => error.to_api(),
    };
    audit.finish("error", Some(&answer.message));
    Err(answer.into_response())
}

/// The body as a tool's arguments: a JSON object, or nothing (`{}`).
fn parse_arguments(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::bad_request(format!(
            "the body must be a JSON object of tool arguments, e.g. {{\"timezone\": \"UTC\"}}; got {}",
            kind(&other)
        ))),
        Err(e) => Err(ApiError::bad_request(format!("the body is not JSON: {e}"))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
