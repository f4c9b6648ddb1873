//! With no LLM configured the offline planner answers what it can, and says so.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Setup, events, stack};
use serde_json::json;

/// Time questions call the time tool — several zones at once, concurrently — and the answer
/// is labelled and tells how to configure a real LLM.
#[tokio::test]
async fn planner_answers_time_questions_concurrently() {
    let s = stack(Setup::offline()).await;
    let (status, answer) = s
        .post(
            "/chat",
            json!({"message": "What time is it in Europe/Berlin and Asia/Tokyo?"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source"], "offline_planner");
    assert_eq!(answer["model"], "offline-planner");
    let calls = answer["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["arguments"]["timezone"], "Europe/Berlin");
    assert_eq!(calls[1]["arguments"]["timezone"], "Asia/Tokyo");
    let first_end =
        calls[0]["started_ms"].as_f64().unwrap() + calls[0]["duration_ms"].as_f64().unwrap();
    assert!(
        calls[1]["started_ms"].as_f64().unwrap() < first_end,
        "ran concurrently: {calls:?}"
    );
    let response = answer["response"].as_str().unwrap();
    assert!(response.starts_with("Offline planner"), "{response}");
    assert!(
        response.contains("The current time in Asia/Tokyo is") && response.contains("+09:00"),
        "{response}"
    );
    assert!(response.contains("LLM_BASE_URL"), "{response}");
}

/// Code it cannot run (this gateway has no execute_code) is reported plainly, next to the
/// time it could get; a message with nothing it understands gets an explanation.
#[tokio::test]
async fn planner_reports_what_it_cannot_do() {
    let s = stack(Setup::offline()).await;
    let (_, answer) = s
        .post(
            "/chat",
            json!({"message": "Execute: print('Hello') and tell me the time"}),
        )
        .await;
    let response = answer["response"].as_str().unwrap();
    assert!(
        response.contains("I could not use execute_code"),
        "{response}"
    );
    assert!(
        response.contains("The current time in UTC is"),
        "{response}"
    );
    assert_eq!(answer["tool_calls"].as_array().unwrap().len(), 1);

    let (_, answer) = s.post("/chat", json!({"message": "Tell me a joke"})).await;
    let response = answer["response"].as_str().unwrap();
    assert!(
        response.starts_with("Offline planner") && response.contains("\"Execute:\""),
        "{response}"
    );
    assert!(response.contains("LLM_MODEL_NAME"));
    assert!(answer["tool_calls"].as_array().unwrap().is_empty());
}

/// The planner streams like the LLM path: tool events, text, done.
#[tokio::test]
async fn planner_streams_events() {
    let s = stack(Setup::offline()).await;
    let sse = s
        .post_sse(
            "/chat",
            json!({"message": "what's the time?", "stream": true}),
        )
        .await;
    let names: Vec<String> = events(&sse).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["tool_call_started", "tool_call_finished", "text", "done"]
    );

    let (status, body) = s
        .post(
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "time?"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["model"], "offline-planner");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Offline planner")
    );
}
