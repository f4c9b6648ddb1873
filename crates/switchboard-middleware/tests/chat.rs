//! `POST /chat` with a scripted OpenAI-compatible LLM and a real MCP server as the gateway.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::Duration;

use common::{Setup, events, stack, tool_messages};
use serde_json::json;
use switchboard_testkit::Reply;

fn two_zones() -> Reply {
    Reply::tools([
        ("get_current_time", json!({"timezone": "UTC"})),
        ("get_current_time", json!({"timezone": "Asia/Tokyo"})),
    ])
}

/// The LLM asks for two tools in one turn: both run, at the same time, and their results go
/// back to the LLM in the order asked, each under its call id; the answer quotes them.
#[tokio::test]
async fn tools_of_one_turn_run_concurrently_and_results_return_in_order() {
    let s = stack(Setup::openai(vec![two_zones(), Reply::echo("Times: ")])).await;
    let (status, answer) = s
        .post(
            "/chat",
            json!({"messages": [{"role": "user", "content": "time in UTC and Tokyo?"}]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source"], "llm");
    assert_eq!(answer["model"], "scripted-model");
    assert_eq!(answer["llm_requests"], 2);
    let calls = answer["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["arguments"]["timezone"], "UTC");
    assert_eq!(calls[1]["arguments"]["timezone"], "Asia/Tokyo");
    for call in calls {
        assert_eq!(call["name"], "get_current_time");
        assert_eq!(call["is_error"], false);
        assert!(call["duration_ms"].as_f64().unwrap() > 0.0);
    }
    // Concurrency: the second call started before the first one finished.
    let first_end =
        calls[0]["started_ms"].as_f64().unwrap() + calls[0]["duration_ms"].as_f64().unwrap();
    assert!(
        calls[1]["started_ms"].as_f64().unwrap() < first_end,
        "{calls:?}"
    );

    let response = answer["response"].as_str().unwrap();
    assert!(response.starts_with("Times: "), "{response}");
    assert!(
        response.contains("+00:00") && response.contains("+09:00"),
        "{response}"
    );
    assert!(answer["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let requests = s.llm().requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer test-key")
    );
    let first = &requests[0].body;
    assert_eq!(
        first["messages"][0]["role"], "system",
        "system prompt first"
    );
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"get_current_time") && tools.contains(&"convert_time"),
        "{tools:?}"
    );
    let results = tool_messages(&requests[1].body);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].0, calls[0]["id"].as_str().unwrap());
    assert!(
        results[0].1.contains("+00:00") && results[1].1.contains("+09:00"),
        "{results:?}"
    );
}

/// With `stream: true` the same chat arrives as typed events: tool calls started and
/// finished, text deltas that add up to the answer, usage, and a final `done`.
#[tokio::test]
async fn streaming_chat_sends_typed_events() {
    let s = stack(Setup::openai(vec![two_zones(), Reply::echo("Times: ")])).await;
    let sse = s
        .post_sse(
            "/chat",
            json!({"message": "time in UTC and Tokyo?", "stream": true}),
        )
        .await;
    let events = events(&sse);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "tool_call_started").count(),
        2
    );
    assert_eq!(
        names.iter().filter(|n| **n == "tool_call_finished").count(),
        2
    );
    assert!(names.contains(&"usage"));
    let first_text = names.iter().position(|n| *n == "text").unwrap();
    let last_finish = names
        .iter()
        .rposition(|n| *n == "tool_call_finished")
        .unwrap();
    assert!(
        last_finish < first_text,
        "the answer comes after the tools: {names:?}"
    );
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "text")
        .map(|(_, e)| e["delta"].as_str().unwrap())
        .collect();
    assert!(
        events.iter().filter(|(n, _)| n == "text").count() > 3,
        "text is streamed in pieces"
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["type"], "done");
    assert_eq!(done["response"].as_str().unwrap(), text);
    assert!(text.contains("+09:00"));
    assert_eq!(done["tool_calls"].as_array().unwrap().len(), 2);
    // The LLM was asked to stream, with usage.
    let requests = s.llm().requests();
    assert_eq!(requests[0].body["stream"], true);
    assert_eq!(requests[0].body["stream_options"]["include_usage"], true);
}

/// A tool that fails, a tool that does not exist and arguments that are not an object all
/// go back to the LLM as error results, and the chat still answers.
#[tokio::test]
async fn tool_failures_are_fed_back_to_the_llm() {
    let s = stack(Setup::openai(vec![
        Reply::tools([
            ("get_current_time", json!({"timezone": "Moon/Base"})),
            ("no_such_tool", json!({})),
            ("get_current_time", json!("UTC")),
        ]),
        Reply::echo("The tools said: "),
    ]))
    .await;
    let (status, answer) = s
        .post("/chat", json!({"message": "time on the moon?"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let calls = answer["tool_calls"].as_array().unwrap();
    assert!(calls.iter().all(|c| c["is_error"] == true), "{calls:?}");
    assert!(
        calls[0]["result"].as_str().unwrap().contains("IANA"),
        "{}",
        calls[0]["result"]
    );
    assert!(
        calls[1]["result"]
            .as_str()
            .unwrap()
            .contains("there is no tool named 'no_such_tool'")
    );
    assert!(calls[2]["result"].as_str().unwrap().contains("JSON object"));
    let results = tool_messages(&s.llm().requests()[1].body);
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|(_, content)| content.starts_with("Error: ")),
        "{results:?}"
    );
    let response = answer["response"].as_str().unwrap();
    assert!(
        response.contains("Moon/Base"),
        "the answer explains the failure: {response}"
    );
}

/// The LLM answering with an error is a clear 502 naming the status, the API's message and
/// what to check.
#[tokio::test]
async fn llm_error_status_is_a_clear_error() {
    let s = stack(Setup::openai(vec![Reply::fail(
        401,
        "Incorrect API key provided",
    )]))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "llm_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("401") && message.contains("Incorrect API key provided"),
        "{message}"
    );
    assert!(message.contains("LLM_API_KEY"), "{message}");
}

/// An LLM nobody listens for is a clear error at once; one that never answers is a clear
/// error after the configured timeout — in a stream too — never a hang.
#[tokio::test]
async fn unreachable_or_silent_llm_is_an_error_not_a_hang() {
    let dead = common::dead_address().await;
    let s = stack(Setup::openai(vec![]).tweak(move |c| {
        let llm = c.llm.clone().unwrap();
        c.with_llm(Some(switchboard_middleware::LlmSettings {
            base_url: format!("http://{dead}/v1"),
            ..llm
        }))
    }))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "llm_unreachable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot reach the LLM") && message.contains("LLM_BASE_URL"),
        "{message}"
    );

    let s = stack(Setup::openai(vec![Reply::Hang, Reply::Hang]).tweak(|c| {
        let llm = c
            .llm
            .clone()
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        c.with_llm(Some(llm))
    }))
    .await;
    let (status, body) = s.post("/chat", json!({"message": "hi"})).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "llm_timeout");
    let sse = s
        .post_sse("/chat", json!({"message": "hi", "stream": true}))
        .await;
    let events = events(&sse);
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(last["code"], "llm_timeout");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within")
    );
}

/// A model that keeps calling tools gets `max_tool_rounds` rounds, then one turn without
/// tools in which it is told to answer.
#[tokio::test]
async fn tool_rounds_are_bounded_with_a_final_wrap_up() {
    let time = || Reply::tools([("get_current_time", json!({}))]);
    let s = stack(
        Setup::openai(vec![time(), time(), Reply::text("Final answer.")]).tweak(|c| {
            switchboard_middleware::Config {
                max_tool_rounds: 2,
                ..c
            }
        }),
    )
    .await;
    let (status, answer) = s.post("/chat", json!({"message": "loop"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"], "Final answer.");
    assert_eq!(answer["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(answer["llm_requests"], 3);
    let requests = s.llm().requests();
    let wrap_up = &requests[2].body;
    assert_eq!(wrap_up["tool_choice"], "none");
    let last = wrap_up["messages"].as_array().unwrap().last().unwrap();
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .contains("limit of 2 tool rounds"),
        "{last}"
    );
    assert!(requests[0].body.get("tool_choice").is_none());
}

/// A large tool result is cut to the configured size, with a note the LLM can read.
#[tokio::test]
async fn large_tool_results_are_truncated_with_a_note() {
    let s = stack(
        Setup::openai(vec![
            Reply::tools([("get_current_time", json!({}))]),
            Reply::text("ok"),
        ])
        .tweak(|c| switchboard_middleware::Config {
            max_tool_result_chars: 20,
            ..c
        }),
    )
    .await;
    let (_, answer) = s.post("/chat", json!({"message": "time"})).await;
    let call = &answer["tool_calls"][0];
    assert_eq!(call["truncated"], true);
    let sent = &tool_messages(&s.llm().requests()[1].body)[0].1;
    assert!(
        sent.contains("[truncated: showing the first 20 of"),
        "{sent}"
    );
}

/// With the gateway down, the chat still answers (without tools) and says why.
#[tokio::test]
async fn gateway_down_degrades_to_no_tools_with_a_warning() {
    let s = stack(Setup::openai(vec![Reply::text("I cannot run tools now.")]).gateway_down()).await;
    let (status, answer) = s
        .post("/chat", json!({"message": "Execute: print(1)"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let warning = answer["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("cannot reach the MCP gateway"),
        "{warning}"
    );
    let request = &s.llm().requests()[0].body;
    assert!(request.get("tools").is_none());
    assert!(
        request["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("no tools are available")
    );
}

/// Bad requests get a 400 that says what is wrong, before any LLM call.
#[tokio::test]
async fn bad_chat_requests_are_rejected_clearly() {
    let s = stack(Setup::openai(vec![])).await;
    let (status, body) = s.post("/chat", json!({"messages": []})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no user message")
    );
    let (status, body) = s
        .post(
            "/chat",
            json!({"messages": [{"role": "robot", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[0].role")
    );
    let (status, body) = s.post("/chat", json!({"mesages": []})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mesages")
    );
    assert!(s.llm().requests().is_empty());
}
