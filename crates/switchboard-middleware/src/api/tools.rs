//! `GET /tools` and `POST /execute`: the gateway's tools without an LLM.

use std::time::Instant;

use axum::{Extension, Json, extract::State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use switchboard_runtime::ApiError;
use switchboard_runtime::auth::Identity;

use crate::conversation::user_of;

use crate::{
    catalog::{self, Catalog},
    gateway::GatewayError,
    state::AppState,
};

fn gateway_error(error: GatewayError) -> ApiError {
    match error {
        GatewayError::Timeout { .. } => ApiError::timeout(error.to_string()),
        GatewayError::Unreachable { .. } => ApiError::bad_gateway(error.to_string()),
        GatewayError::Refused(_) => ApiError::bad_gateway(error.to_string()),
    }
}

/// `GET /tools`: `{tools: [{name, llm_name, description, input_schema, output_schema}],
/// openai_tools: [{type: "function", function: {name, description, parameters}}]}`.
pub async fn list(
    State(state): State<AppState>,
    caller: Option<Extension<Identity>>,
) -> Result<Json<Value>, ApiError> {
    let user = user_of(caller.map(|c| c.0));
    let tools = state
        .gateway
        .tools(user.as_ref())
        .await
        .map_err(gateway_error)?;
    let catalog = Catalog::new(&tools);
    let described: Vec<Value> = catalog
        .entries()
        .iter()
        .map(|e| {
            json!({
                "name": e.tool.name,
                "llm_name": e.llm_name,
                "title": e.tool.title,
                "description": e.tool.description,
                "input_schema": e.tool.input_schema,
                "output_schema": e.tool.output_schema,
            })
        })
        .collect();
    Ok(Json(json!({
        "count": described.len(),
        "tools": described,
        "openai_tools": catalog.openai_functions(),
    })))
}

/// The `/execute` request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    /// The tool's name as `GET /tools` lists it (`name` or `llm_name`).
    pub name: String,
    /// The tool's arguments (`arguments` is accepted as well).
    #[serde(default, alias = "arguments")]
    pub parameters: Option<Value>,
}

/// The `/execute` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecuteAnswer {
    pub name: String,
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    pub is_error: bool,
    pub duration_ms: f64,
}

/// `POST /execute`: call one tool directly. A tool that fails is still 200 with `is_error`
/// (the call worked; the tool said no); an unknown tool is 404, bad parameters 400, a
/// gateway that cannot be reached 502.
pub async fn execute(
    State(state): State<AppState>,
    caller: Option<Extension<Identity>>,
    Json(body): Json<ExecuteBody>,
) -> Result<Json<ExecuteAnswer>, ApiError> {
    let user = user_of(caller.map(|c| c.0));
    let arguments: Map<String, Value> = match body.parameters {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "parameters: expected a JSON object with the tool's arguments, got {other}"
            )));
        }
    };
    let tools = state
        .gateway
        .tools(user.as_ref())
        .await
        .map_err(gateway_error)?;
    let mut catalog = Catalog::new(&tools);
    if catalog.resolve(&body.name).is_none() {
        // Not in the cached list: ask the gateway, whose list may have just changed.
        let tools = state
            .gateway
            .list_tools(user.as_ref())
            .await
            .map_err(gateway_error)?;
        catalog = Catalog::new(&tools);
    }
    let Some(entry) = catalog.resolve(&body.name) else {
        let names: Vec<&str> = catalog
            .entries()
            .iter()
            .map(|e| e.tool.name.as_ref())
            .collect();
        return Err(ApiError::not_found(format!(
            "no tool named '{}'; the gateway offers: {}",
            body.name,
            if names.is_empty() {
                "(no tools)".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    let start = Instant::now();
    let result = state
        .gateway
        .call_tool(
            &entry.tool.name,
            arguments,
            state.config.tool_timeout,
            user.as_ref(),
        )
        .await;
    let took = start.elapsed();
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            state
                .metrics
                .tool_call(Some(&entry.tool.name), "call_failed", took);
            return Err(gateway_error(error));
        }
    };
    let is_error = result.is_error == Some(true);
    state.metrics.tool_call(
        Some(&entry.tool.name),
        if is_error { "tool_error" } else { "ok" },
        took,
    );
    Ok(Json(ExecuteAnswer {
        name: entry.tool.name.to_string(),
        result: catalog::render(&result),
        structured_content: result.structured_content,
        is_error,
        duration_ms: took.as_secs_f64() * 1000.0,
    }))
}
