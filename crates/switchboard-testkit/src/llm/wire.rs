//! The two wire formats: OpenAI-compatible chat completions (JSON or SSE) and Ollama's native
//! chat (JSON or NDJSON), rendered from a [`Reply`].

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{State as Extract, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{Reply, State};

/// Characters per streamed text fragment: small, so streaming is really exercised.
const TEXT_PIECE: usize = 4;

/// The model named in answers when the request names none.
const MODEL: &str = "scripted";

pub(super) async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "owned_by": "testkit"}],
        "models": [{"name": MODEL, "model": MODEL}],
    }))
}

/// The text of a reply that answers with text.
fn reply_text(reply: &Reply, request: &Value) -> String {
    match reply {
        Reply::Text(t) => t.clone(),
        Reply::ToolCalls { text, .. } => text.clone(),
        Reply::EchoToolResults { prefix } => {
            let results: Vec<String> = request["messages"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter(|m| m["role"] == "tool")
                        .filter_map(|m| m["content"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            format!("{prefix}{}", results.join("\n"))
        }
        _ => String::new(),
    }
}

fn usage(request: &Value, text: &str) -> (u64, u64) {
    let prompt = request["messages"].as_array().map_or(0, Vec::len) as u64 * 10;
    (prompt, (text.len() as u64).div_ceil(4).max(1))
}

fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// An API-style error body in the format's shape.
fn error(status: StatusCode, message: &str, kind: &str, ollama: bool) -> Response {
    let body = if ollama {
        json!({ "error": message })
    } else {
        json!({ "error": { "message": message, "type": kind } })
    };
    (status, Json(body)).into_response()
}

/// The model an answer names: the requested one, as a real API does.
fn model(request: &Value) -> Value {
    match &request["model"] {
        Value::Null => json!(MODEL),
        named => named.clone(),
    }
}

/// Replies that are not a normal answer, common to both formats.
async fn special(state: &State, reply: &Reply, ollama: bool) -> Option<Response> {
    match reply {
        Reply::Fail { status, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(error(status, message, "scripted_error", ollama))
        }
        Reply::Raw { content_type, body } => {
            Some(([(header::CONTENT_TYPE, content_type.clone())], body.clone()).into_response())
        }
        Reply::Hang => {
            state.stop.cancelled().await;
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        _ => None,
    }
}

/// What both chat endpoints do first: the request (a body that is not JSON is answered 400
/// in the API's own error shape, as a real API does) and the script's next reply; a reply
/// answered without a chat turn (an error status, a hang) is the response itself.
async fn take_turn(
    state: &State,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
    ollama: bool,
) -> Result<(Value, Reply), Response> {
    let Json(request) = body.map_err(|rejection| {
        error(
            StatusCode::BAD_REQUEST,
            &rejection.body_text(),
            "invalid_request_error",
            ollama,
        )
    })?;
    let reply = state.next(uri.path(), headers, &request);
    match special(state, &reply, ollama).await {
        Some(response) => Err(response),
        None => Ok((request, reply)),
    }
}

pub(super) async fn openai_chat(
    Extract(state): Extract<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let (request, reply) = match take_turn(&state, &uri, &headers, body, false).await {
        Ok(turn) => turn,
        Err(response) => return response,
    };
    let text = reply_text(&reply, &request);
    let calls = match &reply {
        Reply::ToolCalls { calls, .. } => calls.clone(),
        _ => Vec::new(),
    };
    let round = request["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count());
    let id = |i: usize| format!("call_{round}_{i}");
    let (prompt, completion) = usage(&request, &text);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let model = model(&request);
    if request["stream"] != true {
        let tool_calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| json!({"id": id(i), "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
            .collect();
        let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
        if !tool_calls.is_empty() {
            message["tool_calls"] = json!(tool_calls);
        }
        return Json(json!({
            "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in pieces(&text, TEXT_PIECE) {
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    for (i, (name, args)) in calls.iter().enumerate() {
        events.push(chunk(
            json!({"tool_calls": [{"index": i, "id": id(i), "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        let args = args.to_string();
        let third = args.chars().count().div_ceil(3).max(1);
        for piece in pieces(&args, third) {
            events.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!(finish)));
    if request.pointer("/stream_options/include_usage") == Some(&Value::Bool(true)) {
        events.push(
            json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0,
                           "model": model, "choices": [], "usage": usage}),
        );
    }
    let mut body = String::new();
    for event in events {
        body.push_str(&format!("data: {event}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    stream_response("text/event-stream", body)
}

pub(super) async fn ollama_chat(
    Extract(state): Extract<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let (request, reply) = match take_turn(&state, &uri, &headers, body, true).await {
        Ok(turn) => turn,
        Err(response) => return response,
    };
    let text = reply_text(&reply, &request);
    let calls: Vec<Value> = match &reply {
        Reply::ToolCalls { calls, .. } => calls
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect(),
        _ => Vec::new(),
    };
    let (prompt, completion) = usage(&request, &text);
    let model = model(&request);
    let last = |content: &str, calls: &[Value]| {
        let mut message = json!({"role": "assistant", "content": content});
        if !calls.is_empty() {
            message["tool_calls"] = json!(calls);
        }
        json!({"model": model, "created_at": "2026-01-01T00:00:00Z", "message": message, "done": true,
               "done_reason": "stop", "prompt_eval_count": prompt, "eval_count": completion})
    };
    // Ollama streams unless told not to.
    if request["stream"] == false {
        return Json(last(&text, &calls)).into_response();
    }
    let mut lines = Vec::new();
    for piece in pieces(&text, TEXT_PIECE) {
        lines.push(json!({"model": model, "message": {"role": "assistant", "content": piece}, "done": false}));
    }
    if !calls.is_empty() {
        lines.push(json!({"model": model, "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": false}));
    }
    lines.push(last("", &[]));
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    stream_response("application/x-ndjson", body)
}

/// A body sent in many small frames, as a real streaming server does.
fn stream_response(content_type: &'static str, body: String) -> Response {
    let frames: Vec<Result<bytes::Bytes, std::convert::Infallible>> = body
        .split_inclusive('\n')
        .map(|line| Ok(bytes::Bytes::from(line.to_owned())))
        .collect();
    let mut response = Response::new(Body::from_stream(futures::stream::iter(frames)));
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
