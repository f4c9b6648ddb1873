//! `POST /v1/chat/completions` and `GET /v1/models`: the OpenAI-compatible API.
//!
//! Any OpenAI client or chat UI can point its base URL at `http://host:8002/v1`. The tools
//! are the gateway's and run here, server-side: the client sees only the assistant's text —
//! no `tool_calls`, no tool turns — as a normal completion (or stream of
//! `chat.completion.chunk`s ending with `finish_reason: "stop"` and `data: [DONE]`). What
//! the tools did is in the non-standard `switchboard` field of a non-streamed answer.
//!
//! Client-side `tools` cannot be honoured (this endpoint does not hand tool calls back) and
//! are refused with a clear 400 rather than silently ignored.

use std::{
    convert::Infallible,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Extension, Json,
    extract::State,
    response::{IntoResponse, Response, sse::Event},
};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_runtime::ApiError;

use super::chat::{run_streaming, sse_response};
use switchboard_runtime::auth::Identity;

use crate::conversation::user_of;

use crate::{
    conversation::ChatRequest,
    events::{ChatEvent, EventSink},
    llm::{Message, Role, Sampling, ToolCall},
    planner,
    state::AppState,
};

/// A message as OpenAI clients send it. `content` may be a string or an array of parts.
#[derive(Debug, Deserialize)]
pub struct OaMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default)]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// The request body. Fields clients commonly send and that do not apply (`user`, `seed`,
/// penalties, ...) are accepted and ignored, as other OpenAI-compatible servers do.
#[derive(Debug, Deserialize)]
pub struct CompletionBody {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<OaMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
}

/// Text of a `content` that is a string or an array of `{type: "text", text}` parts.
fn content_text(index: usize, content: Option<Value>) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (kind, _) => {
                        return Err(ApiError::bad_request(format!(
                            "messages[{index}].content: parts of type {} are not supported; only text",
                            kind.unwrap_or("(none)")
                        )));
                    }
                }
            }
            Ok(text)
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "messages[{index}].content: expected a string or an array of text parts, got {other}"
        ))),
    }
}

impl CompletionBody {
    fn into_request(self) -> Result<ChatRequest, ApiError> {
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(ApiError::bad_request(
                "tools: client-side tools are not supported here; this endpoint runs the gateway's tools server-side (GET /tools lists them). Send the request without `tools`.",
            ));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::bad_request(
                "n: only one choice (n = 1) is supported",
            ));
        }
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.into_iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "tool" => Role::Tool,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "messages[{i}].role: '{other}' is not a role; expected system, developer, user, assistant or tool"
                    )));
                }
            };
            let mut message = Message::new(role, content_text(i, m.content)?);
            message.tool_call_id = m.tool_call_id;
            message.tool_name = m.name;
            message.tool_calls = m
                .tool_calls
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(j, c)| ToolCall {
                    id: c["id"]
                        .as_str()
                        .map_or_else(|| format!("call_{i}_{j}"), str::to_owned),
                    name: c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: c
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_owned(),
                })
                .collect();
            messages.push(message);
        }
        if !messages.iter().any(|m| m.role == Role::User) {
            return Err(ApiError::bad_request(
                "messages: at least one user message is needed",
            ));
        }
        Ok(ChatRequest {
            messages,
            model: self.model,
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_completion_tokens.or(self.max_tokens),
            },
            user: None,
            conversation_id: None,
        })
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The model name reported to clients.
fn model_name(state: &AppState, asked: Option<&str>) -> String {
    match &state.llm {
        None => planner::MODEL.to_owned(),
        Some(llm) => asked
            .filter(|m| !m.trim().is_empty())
            .unwrap_or(llm.default_model())
            .to_owned(),
    }
}

pub async fn completions(
    State(state): State<AppState>,
    caller: Option<Extension<Identity>>,
    Json(body): Json<CompletionBody>,
) -> Response {
    let stream = body.stream;
    let include_usage = body
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let mut request = match body.into_request() {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    request.user = user_of(caller.map(|c| c.0));
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now_seconds();
    let model = model_name(&state, request.model.as_deref());
    if !stream {
        return match super::answer(&state, request, &EventSink::none(), "openai").await {
            Ok(answer) => Json(json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": answer.response },
                    "finish_reason": "stop",
                }],
                "usage": answer.usage,
                "switchboard": {
                    "source": answer.source,
                    "tool_calls": answer.tool_calls,
                    "warnings": answer.warnings,
                },
            }))
            .into_response(),
            Err(error) => ApiError::from(error).into_response(),
        };
    }
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    };
    let first = chunk(json!({ "role": "assistant", "content": "" }), None);
    let events = run_streaming(state, request, "openai");
    let body = events.flat_map(move |event| {
        let items: Vec<Value> = match event {
            ChatEvent::Text { delta } => vec![chunk(json!({ "content": delta }), None)],
            // Tool turns stay on the server.
            ChatEvent::ToolCallStarted { .. }
            | ChatEvent::ToolCallProgress { .. }
            | ChatEvent::ToolCallFinished(_)
            | ChatEvent::Usage(_) => Vec::new(),
            ChatEvent::Done(answer) => {
                let mut last = vec![chunk(json!({}), Some("stop"))];
                if include_usage {
                    let mut usage = chunk(json!({}), None);
                    usage["choices"] = json!([]);
                    usage["usage"] = json!(answer.usage);
                    last.push(usage);
                }
                last
            }
            ChatEvent::Error { code, message } => vec![json!({
                "error": { "message": message, "type": "server_error", "code": code },
            })],
        };
        futures::stream::iter(items)
    });
    let stream = futures::stream::once(async move { first })
        .chain(body)
        .map(|value| Ok::<_, Infallible>(Event::default().data(value.to_string())))
        .chain(futures::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }));
    sse_response(stream)
}

/// `GET /v1/models`: the one model this endpoint answers with.
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": model_name(&state, None),
            "object": "model",
            "created": 0,
            "owned_by": "switchboard",
        }],
    }))
}
