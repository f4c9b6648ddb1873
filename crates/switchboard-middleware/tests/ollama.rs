//! The same chat over Ollama's native wire format: NDJSON streaming, argument objects, no
//! call ids, tool results named by tool.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Setup, events, stack, tool_messages};
use serde_json::json;
use switchboard_testkit::Reply;

fn script() -> Vec<Reply> {
    vec![
        Reply::tools([
            ("get_current_time", json!({"timezone": "UTC"})),
            ("get_current_time", json!({"timezone": "Asia/Kolkata"})),
        ]),
        Reply::echo("Times: "),
    ]
}

/// A whole (non-streamed) exchange: tools are offered in Ollama's shape, calls come back
/// with made-up ids, results go back with `tool_name`, and the answer quotes them.
#[tokio::test]
async fn native_api_drives_tools() {
    let s = stack(Setup::ollama(script())).await;
    let (status, answer) = s
        .post("/chat", json!({"message": "time in UTC and India?"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let calls = answer["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_0");
    assert_eq!(calls[1]["arguments"]["timezone"], "Asia/Kolkata");
    let response = answer["response"].as_str().unwrap();
    assert!(
        response.contains("+00:00") && response.contains("+05:30"),
        "{response}"
    );
    assert!(answer["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let requests = s.llm().requests();
    assert!(requests.iter().all(|r| r.path == "/api/chat"));
    assert_eq!(requests[0].body["stream"], false);
    assert_eq!(requests[0].body["tools"][0]["type"], "function");
    let second = &requests[1].body;
    let assistant = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap();
    assert_eq!(
        assistant["tool_calls"][1]["function"]["arguments"]["timezone"],
        "Asia/Kolkata"
    );
    let results = tool_messages(second);
    assert_eq!(results[0].0, "get_current_time");
    assert!(results[1].1.contains("+05:30"));
}

/// Streaming over NDJSON: text arrives in pieces, tool events and `done` as with OpenAI.
#[tokio::test]
async fn native_api_streams_ndjson() {
    let s = stack(Setup::ollama(script())).await;
    let sse = s
        .post_sse("/chat", json!({"message": "time?", "stream": true}))
        .await;
    let events = events(&sse);
    assert!(events.iter().filter(|(n, _)| n == "text").count() > 3);
    assert_eq!(
        events
            .iter()
            .filter(|(n, _)| n == "tool_call_finished")
            .count(),
        2
    );
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "done");
    assert!(done["response"].as_str().unwrap().contains("+05:30"));
    assert_eq!(s.llm().requests()[0].body["stream"], true);
}

/// Ollama's error body (`{"error": "..."}`) reaches the user.
#[tokio::test]
async fn native_api_errors_are_quoted() {
    let s = stack(Setup::ollama(vec![Reply::fail(
        404,
        "model 'scripted-model' not found, try pulling it first",
    )]))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 502);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not found, try pulling it first") && message.contains("LLM_MODEL_NAME"),
        "{message}"
    );
}
