//! `POST /v1/chat/completions`: an OpenAI-compatible endpoint whose tools run server-side.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Setup, stack};
use serde_json::{Value, json};
use switchboard_testkit::Reply;

fn script() -> Vec<Reply> {
    vec![
        Reply::ToolCalls {
            text: "Checking. ".into(),
            calls: vec![("get_current_time".into(), json!({"timezone": "Asia/Tokyo"}))],
        },
        Reply::echo("Tokyo: "),
    ]
}

/// A plain completion: the assistant's text, usage, and what the tools did under
/// `switchboard`; no `tool_calls` for the client to act on.
#[tokio::test]
async fn completion_runs_tools_server_side() {
    let s = stack(Setup::openai(script())).await;
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            json!({"model": "scripted-model", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "time in Tokyo?"}]},
            ], "user": "ignored", "seed": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["message"].get("tool_calls").is_none());
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("Checking.") && content.contains("+09:00"),
        "{content}"
    );
    assert_eq!(
        body["switchboard"]["tool_calls"][0]["name"],
        "get_current_time"
    );
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // The client's system prompt is used instead of the built-in one.
    let first = &s.llm().requests()[0].body;
    assert_eq!(first["messages"][0]["content"], "Be brief.");
}

/// Streaming: standard chunks, text only — the intermediate tool turn does not leak — then
/// `finish_reason: "stop"`, the usage chunk when asked for, and `[DONE]`.
#[tokio::test]
async fn streamed_completion_hides_tool_turns() {
    let s = stack(Setup::openai(script())).await;
    let sse = s
        .post_sse(
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "time in Tokyo?"}], "stream": true,
                   "stream_options": {"include_usage": true}}),
        )
        .await;
    assert_eq!(sse.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = sse[..sse.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let raw: String = sse.iter().map(|(_, d)| d.as_str()).collect();
    assert!(
        !raw.contains("tool_calls") && !raw.contains("\"tool\""),
        "no tool turn leaks: {raw}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        text.starts_with("Checking. ") && text.contains("+09:00"),
        "{text}"
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

/// Errors in a stream arrive as an `error` object before `[DONE]`; client-side tools are
/// refused with a 400 that explains why; `/v1/models` lists the model.
#[tokio::test]
async fn errors_refusals_and_models() {
    let s = stack(Setup::openai(vec![Reply::fail(500, "upstream exploded")])).await;
    let sse = s
        .post_sse(
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}),
        )
        .await;
    let error: Value = serde_json::from_str(&sse[sse.len() - 2].1).unwrap();
    assert_eq!(error["error"]["code"], "llm_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream exploded")
    );
    assert_eq!(sse.last().unwrap().1, "[DONE]");

    let (status, body) = s
        .post(
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}],
                   "tools": [{"type": "function", "function": {"name": "mine", "parameters": {}}}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server-side")
    );

    let (status, models) = s.get("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(models["data"][0]["id"], "scripted-model");
}
