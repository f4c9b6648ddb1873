//! A scripted LLM server: the only test double of the suite, standing in for the external
//! LLM API.
//!
//! It speaks both wire formats the middleware supports, on one port:
//! - OpenAI-compatible `POST /v1/chat/completions` (JSON, or SSE chunks with tool calls split
//!   into fragments the way OpenAI sends them: the first fragment of a call carries index, id
//!   and name, the arguments follow in pieces), plus `GET /v1/models`;
//! - Ollama's native `POST /api/chat` (JSON, or NDJSON lines; tool arguments as objects, no
//!   call ids), plus `GET /api/tags`.
//!
//! Each chat request takes the next [`Reply`] of the script, in arrival order, and every
//! request body is recorded for the test to inspect.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Characters per streamed text fragment: small, so streaming is really exercised.
const TEXT_PIECE: usize = 4;

/// What the scripted LLM answers to one chat request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A plain answer.
    Text(String),
    /// Ask for tools (all in this one turn), with optional text before them.
    ToolCalls {
        text: String,
        calls: Vec<(String, Value)>,
    },
    /// An answer that quotes every tool result in the request, after `prefix` — what a
    /// model does when it "formats the results", and how tests see real tool output arrive.
    EchoToolResults { prefix: String },
    /// An HTTP error with an API-style error body.
    Fail { status: u16, message: String },
    /// A 200 whose body is `body` as is (for malformed answers).
    Raw { content_type: String, body: String },
    /// Never answer (until the server stops): for timeouts.
    Hang,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text(text.into())
    }
    /// Tool calls given as `(name, arguments)`.
    pub fn tools<N: Into<String>>(calls: impl IntoIterator<Item = (N, Value)>) -> Self {
        Reply::ToolCalls {
            text: String::new(),
            calls: calls.into_iter().map(|(n, a)| (n.into(), a)).collect(),
        }
    }
    pub fn echo(prefix: impl Into<String>) -> Self {
        Reply::EchoToolResults {
            prefix: prefix.into(),
        }
    }
    pub fn fail(status: u16, message: impl Into<String>) -> Self {
        Reply::Fail {
            status,
            message: message.into(),
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    /// The W3C trace context the caller sent, if any.
    pub traceparent: Option<String>,
    pub body: Value,
}

struct Script {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    stop: CancellationToken,
}

/// A running scripted LLM; stops when dropped.
pub struct ScriptedLlm {
    addr: SocketAddr,
    script: Arc<Script>,
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.script.stop.cancel();
    }
}

impl ScriptedLlm {
    /// Start on `127.0.0.1:0` with `replies`, answered in order.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into_iter().collect()),
            requests: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/models", get(models))
            .route("/api/chat", post(ollama_chat))
            .route("/api/tags", get(models))
            .with_state(script.clone());
        let stop = script.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Self { addr, script }
    }

    /// Base URL for `LLM_PROVIDER=openai`: `http://127.0.0.1:PORT/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL for `LLM_PROVIDER=ollama`: `http://127.0.0.1:PORT`.
    pub fn ollama_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every chat request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.script
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Replies not used yet.
    pub fn remaining(&self) -> usize {
        self.script.replies.lock().map(|r| r.len()).unwrap_or(0)
    }
}

async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": "scripted", "object": "model", "owned_by": "testkit"}],
        "models": [{"name": "scripted", "model": "scripted"}],
    }))
}

/// Record the request and take the next reply.
fn next(script: &Script, path: &str, headers: &axum::http::HeaderMap, body: &Value) -> Reply {
    if let Ok(mut requests) = script.requests.lock() {
        requests.push(Recorded {
            path: path.to_owned(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            traceparent: headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: body.clone(),
        });
    }
    script
        .replies
        .lock()
        .ok()
        .and_then(|mut r| r.pop_front())
        .unwrap_or_else(|| Reply::fail(500, "scripted LLM: no reply left for this request"))
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

/// Replies that are not a normal answer, common to both formats.
async fn special(script: &Script, reply: &Reply, ollama: bool) -> Option<Response> {
    match reply {
        Reply::Fail { status, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = if ollama {
                json!({ "error": message })
            } else {
                json!({ "error": { "message": message, "type": "scripted_error" } })
            };
            Some((status, Json(body)).into_response())
        }
        Reply::Raw { content_type, body } => {
            Some(([(header::CONTENT_TYPE, content_type.clone())], body.clone()).into_response())
        }
        Reply::Hang => {
            script.stop.cancelled().await;
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        _ => None,
    }
}

async fn openai_chat(
    State(script): State<Arc<Script>>,
    headers: axum::http::HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let reply = next(&script, "/v1/chat/completions", &headers, &request);
    if let Some(response) = special(&script, &reply, false).await {
        return response;
    }
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
    let model = request["model"].clone();
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

async fn ollama_chat(
    State(script): State<Arc<Script>>,
    headers: axum::http::HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let reply = next(&script, "/api/chat", &headers, &request);
    if let Some(response) = special(&script, &reply, true).await {
        return response;
    }
    let text = reply_text(&reply, &request);
    let calls: Vec<Value> = match &reply {
        Reply::ToolCalls { calls, .. } => calls
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect(),
        _ => Vec::new(),
    };
    let (prompt, completion) = usage(&request, &text);
    let model = request["model"].clone();
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
