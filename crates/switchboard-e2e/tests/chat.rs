//! "Execute: print('Hello') and tell me the time" through every face of the middleware, over
//! the real gateway, code-executor, sandbox and time-client, with a scripted LLM.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{assert_hello_and_time, call, done_of, post, post_sse};
use serde_json::{Value, json};
use switchboard_e2e::{Llm, System};
use switchboard_testkit::Reply;

const ASK: &str = "Execute: print('Hello') and tell me the time";

/// What a model does with that request: both tools in one turn, then an answer quoting them.
fn script() -> Vec<Reply> {
    vec![
        Reply::tools([
            ("execute_code", json!({"code": "print('Hello')"})),
            ("get_current_time", json!({})),
        ]),
        Reply::echo("Here is what the tools returned:\n"),
    ]
}

/// `POST /chat`: the LLM asks for both tools in one turn, they run concurrently, and the
/// answer carries "Hello" and the current time.
#[tokio::test]
async fn chat_runs_code_and_tells_the_time() {
    let system = System::start(Llm::OpenAi(script())).await;
    let (status, answer) = post(&system.middleware, "/chat", json!({"message": ASK})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source"], "llm");
    assert_eq!(answer["tool_calls"].as_array().unwrap().len(), 2);
    assert_hello_and_time(&answer, answer["response"].as_str().unwrap());
    // The LLM saw the user's words and then both results, in the order it asked for them.
    let requests = system.scripted().requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0].body["messages"];
    assert_eq!(first.as_array().unwrap().last().unwrap()["content"], ASK);
    let results: Vec<&Value> = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert!(results[0]["content"].as_str().unwrap().contains("Hello"));
    assert!(results[1]["content"].as_str().unwrap().contains("datetime"));
}

/// The same, streamed: tool events, then the answer text in pieces, then `done`.
#[tokio::test]
async fn streamed_chat_runs_code_and_tells_the_time() {
    let system = System::start(Llm::OpenAi(script())).await;
    let sse = post_sse(
        &system.middleware,
        "/chat",
        json!({"message": ASK, "stream": true}),
    )
    .await;
    let names: Vec<&str> = sse.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "tool_call_started").count(),
        2
    );
    assert_eq!(
        names.iter().filter(|n| **n == "tool_call_finished").count(),
        2
    );
    let text: String = sse
        .iter()
        .filter(|(n, _)| n == "text")
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["delta"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let answer = done_of(&sse);
    assert_eq!(answer["response"].as_str().unwrap(), text);
    assert_hello_and_time(&answer, &text);
}

/// The same through the OpenAI-compatible API, plain and streamed; no tool turn reaches the
/// client.
#[tokio::test]
async fn openai_compatible_api_runs_code_and_tells_the_time() {
    let mut replies = script();
    replies.extend(script());
    let system = System::start(Llm::OpenAi(replies)).await;
    let messages = json!([{"role": "user", "content": ASK}]);

    let (status, body) = post(
        &system.middleware,
        "/v1/chat/completions",
        json!({"model": "scripted-model", "messages": messages}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    assert_hello_and_time(&body["switchboard"], content);

    let sse = post_sse(
        &system.middleware,
        "/v1/chat/completions",
        json!({"messages": messages, "stream": true}),
    )
    .await;
    assert_eq!(sse.last().unwrap().1, "[DONE]");
    let raw: String = sse.iter().map(|(_, d)| d.as_str()).collect();
    assert!(
        !raw.contains("tool_calls"),
        "no tool turn leaks into the stream"
    );
    let text: String = sse[..sse.len() - 1]
        .iter()
        .filter_map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        text.contains("Hello") && text.contains("datetime"),
        "{text}"
    );
}

/// The same with Ollama's native wire format (argument objects, no call ids, NDJSON).
#[tokio::test]
async fn ollama_native_api_runs_code_and_tells_the_time() {
    let mut replies = script();
    replies.extend(script());
    let system = System::start(Llm::Ollama(replies)).await;
    let (status, answer) = post(&system.middleware, "/chat", json!({"message": ASK})).await;
    assert_eq!(status, 200, "{answer}");
    assert_hello_and_time(&answer, answer["response"].as_str().unwrap());
    let sse = post_sse(
        &system.middleware,
        "/chat",
        json!({"message": ASK, "stream": true}),
    )
    .await;
    let answer = done_of(&sse);
    assert_hello_and_time(&answer, answer["response"].as_str().unwrap());
    assert!(
        system
            .scripted()
            .requests()
            .iter()
            .all(|r| r.path == "/api/chat")
    );
}

/// A program that fails is a tool error whose traceback reaches the LLM, and the answer
/// explains it.
#[tokio::test]
async fn a_failing_program_is_explained() {
    let system = System::start(Llm::OpenAi(vec![
        Reply::tools([("execute_code", json!({"code": "raise ValueError('boom')"}))]),
        Reply::echo("The program failed:\n"),
    ]))
    .await;
    let (status, answer) = post(
        &system.middleware,
        "/chat",
        json!({"message": "Execute: raise ValueError('boom')"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let exec = call(&answer, "execute_code");
    assert_eq!(exec["is_error"], true);
    assert!(
        exec["result"]
            .as_str()
            .unwrap()
            .contains("ValueError: boom"),
        "{exec}"
    );
    let sent = system.scripted().requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        sent.starts_with("Error: ") && sent.contains("Traceback"),
        "{sent}"
    );
    assert!(
        answer["response"]
            .as_str()
            .unwrap()
            .contains("ValueError: boom")
    );
}

/// An LLM that fails or cannot be reached is a clear error; direct tool calls keep working.
#[tokio::test]
async fn llm_failures_are_clear_and_tools_still_work() {
    let system = System::start(Llm::OpenAi(vec![Reply::fail(
        503,
        "the model is overloaded",
    )]))
    .await;
    let (status, body) = post(&system.middleware, "/chat", json!({"message": ASK})).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "llm_error");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("503")
            && body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("overloaded")
    );

    let system = System::start(Llm::Unreachable).await;
    let (status, body) = post(&system.middleware, "/chat", json!({"message": ASK})).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "llm_unreachable");
    let (status, body) = post(
        &system.middleware,
        "/execute",
        json!({"name": "execute_code", "parameters": {"code": "print(6*7)"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["structured_content"]["stdout"], "42\n");
}

/// With no LLM configured the offline planner runs the code and gets the time, concurrently,
/// and says where the answer came from.
#[tokio::test]
async fn offline_planner_runs_code_and_tells_the_time() {
    let system = System::start(Llm::Offline).await;
    let (status, answer) = post(&system.middleware, "/chat", json!({"message": ASK})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["source"], "offline_planner");
    let response = answer["response"].as_str().unwrap();
    assert!(response.starts_with("Offline planner"), "{response}");
    assert!(response.contains("LLM_BASE_URL"), "{response}");
    assert_eq!(
        call(&answer, "execute_code")["arguments"]["code"],
        "print('Hello')"
    );
    assert_hello_and_time(&answer, response);
}
