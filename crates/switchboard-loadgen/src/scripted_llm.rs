//! A scripted OpenAI-compatible LLM that answers at once, so a middleware benchmark measures
//! the middleware and not a model.
//!
//! `POST /v1/chat/completions` (also `/chat/completions`) follows one fixed script:
//!
//! 1. the last message is a tool result (`role: "tool"`): answer with text, ending the turn;
//! 2. tools are offered (and `tool_choice` is not `"none"`) and the last user message contains
//!    the word `tool`: call the configured tool (default `get_current_time {"timezone":"UTC"}`);
//! 3. anything else: answer `hello` with text.
//!
//! Both the plain JSON answer and the streamed one (`"stream": true`, SSE chunks ending in
//! `data: [DONE]`) are served; `GET /v1/models` lists the one model. This is a test double for
//! the external LLM API only; everything else in a benchmark is real.

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{Error, args::ScriptedLlmArgs};

/// The model name it reports.
pub const MODEL: &str = "scripted";

/// What the script answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Text(String),
    ToolCall { name: String, arguments: String },
}

/// The configured tool call.
#[derive(Debug, Clone)]
struct Script {
    tool: String,
    /// The arguments as a JSON string, as OpenAI puts them on the wire.
    tool_arguments: String,
}

/// Listen on `args.listen`, print `listening on IP:PORT` on stdout, serve until Ctrl-C/SIGTERM.
pub async fn serve(args: &ScriptedLlmArgs) -> Result<(), Error> {
    let arguments: Value = serde_json::from_str(&args.tool_arguments)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Error::usage(format!(
                "--tool-arguments {}: expected a JSON object",
                args.tool_arguments
            ))
        })?;
    let script = Script {
        tool: args.tool.clone(),
        tool_arguments: arguments.to_string(),
    };
    let addr = args.listen.to_string();
    let io = |source| Error::Serve {
        addr: addr.clone(),
        source,
    };
    let listener = TcpListener::bind(args.listen).await.map_err(io)?;
    println!("listening on {}", listener.local_addr().map_err(io)?);
    axum::serve(listener, router(script))
        .with_graceful_shutdown(stopped())
        .await
        .map_err(io)
}

async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn router(script: Script) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/chat/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .with_state(script)
}

async fn models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "switchboard-loadgen"}]}),
    )
}

async fn completions(
    State(script): State<Script>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            let error = json!({"error": {"message": rejection.body_text(), "type": "invalid_request_error"}});
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    };
    let answer = decide(&request, &script);
    let model = request["model"].as_str().unwrap_or(MODEL).to_owned();
    if request["stream"].as_bool() == Some(true) {
        let body = stream(&model, &answer);
        ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
    } else {
        Json(completion(&model, &answer)).into_response()
    }
}

/// Apply the script to a chat-completions request.
fn decide(request: &Value, script: &Script) -> Answer {
    let messages = request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let last = messages.last();
    if last.is_some_and(|m| m["role"] == "tool") {
        return Answer::Text("The tool answered.".to_owned());
    }
    let has_tools = request["tools"].as_array().is_some_and(|t| !t.is_empty())
        && request["tool_choice"] != "none";
    let asks_for_tool = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .is_some_and(|text| text.to_lowercase().contains("tool"));
    if has_tools && asks_for_tool {
        Answer::ToolCall {
            name: script.tool.clone(),
            arguments: script.tool_arguments.clone(),
        }
    } else {
        Answer::Text("hello".to_owned())
    }
}

const USAGE: fn() -> Value =
    || json!({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2});

fn completion(model: &str, answer: &Answer) -> Value {
    let (message, finish) = match answer {
        Answer::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Answer::ToolCall { name, arguments } => (
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
            ]}),
            "tool_calls",
        ),
    };
    json!({
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": USAGE(),
    })
}

/// The whole SSE stream at once: a delta chunk, a finish chunk with usage, `[DONE]`.
fn stream(model: &str, answer: &Answer) -> String {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        json!({
            "id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": usage,
        })
    };
    let (delta, finish) = match answer {
        Answer::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Answer::ToolCall { name, arguments } => (
            json!({"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
            ]}),
            "tool_calls",
        ),
    };
    format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk(delta, Value::Null, Value::Null),
        chunk(json!({}), json!(finish), USAGE()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> Script {
        Script {
            tool: "get_current_time".into(),
            tool_arguments: r#"{"timezone":"UTC"}"#.into(),
        }
    }

    #[test]
    fn the_script() {
        let tools = json!([{"type": "function", "function": {"name": "get_current_time"}}]);
        let ask =
            json!({"messages": [{"role": "user", "content": "use a Tool please"}], "tools": tools});
        assert!(
            matches!(decide(&ask, &script()), Answer::ToolCall { name, .. } if name == "get_current_time")
        );
        let no_tools = json!({"messages": [{"role": "user", "content": "use a tool"}]});
        assert_eq!(decide(&no_tools, &script()), Answer::Text("hello".into()));
        let mut forbidden = ask.clone();
        forbidden["tool_choice"] = json!("none");
        assert_eq!(decide(&forbidden, &script()), Answer::Text("hello".into()));
        let plain = json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools});
        assert_eq!(decide(&plain, &script()), Answer::Text("hello".into()));
        let after_tool = json!({"messages": [
            {"role": "user", "content": "use a tool"},
            {"role": "assistant", "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_1", "content": "{}"}
        ], "tools": tools});
        assert_eq!(
            decide(&after_tool, &script()),
            Answer::Text("The tool answered.".into())
        );
    }

    #[test]
    fn streamed_answer_ends_with_done_and_carries_the_call() {
        let answer = Answer::ToolCall {
            name: "get_current_time".into(),
            arguments: "{}".into(),
        };
        let body = stream("m", &answer);
        assert!(body.ends_with("data: [DONE]\n\n"));
        let first: Value = serde_json::from_str(
            body.lines()
                .next()
                .and_then(|l| l.strip_prefix("data: "))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            first["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "get_current_time"
        );
    }
}
