//! HTTP helpers for the end-to-end tests.
#![allow(dead_code)] // Each test binary uses part of this module.

use std::time::Duration;

use serde_json::Value;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// POST and read the whole SSE stream as `(event, data)` pairs.
pub async fn post_sse(base: &str, path: &str, body: Value) -> Vec<(String, String)> {
    let response = client()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = "message".to_owned();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
                }
            }
            (!data.is_empty()).then(|| (event, data.join("\n")))
        })
        .collect()
}

/// The `done` answer of a `/chat` stream, after checking the events around it.
pub fn done_of(sse: &[(String, String)]) -> Value {
    let (name, data) = sse.last().unwrap();
    assert_eq!(name, "done", "the stream ends with done: {sse:?}");
    serde_json::from_str(data).unwrap()
}

/// The call named `name` among an answer's tool calls.
pub fn call<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no {name} call in {answer}"))
}

/// Check that `answer` carries the code output and the current time, and that both tools
/// ran at the same time (the time call started before the code call finished).
pub fn assert_hello_and_time(answer: &Value, text: &str) {
    let exec = call(answer, "execute_code");
    let time = call(answer, "get_current_time");
    assert_eq!(exec["is_error"], false, "{exec}");
    assert_eq!(time["is_error"], false, "{time}");
    assert_eq!(exec["structured_content"]["stdout"], "Hello\n");
    assert!(
        text.contains("Hello"),
        "the answer carries the code output: {text}"
    );
    let stamp = time["structured_content"]["datetime"].as_str().unwrap();
    assert!(
        text.contains(stamp),
        "the answer carries the current time {stamp}: {text}"
    );
    let when: jiff::Timestamp = stamp.parse().unwrap();
    let skew = (jiff::Timestamp::now().as_second() - when.as_second()).abs();
    assert!(skew < 60, "the time is now (skew {skew} s)");
    let exec_end = exec["started_ms"].as_f64().unwrap() + exec["duration_ms"].as_f64().unwrap();
    let time_end = time["started_ms"].as_f64().unwrap() + time["duration_ms"].as_f64().unwrap();
    assert!(
        time["started_ms"].as_f64().unwrap() < exec_end
            && exec["started_ms"].as_f64().unwrap() < time_end,
        "the two calls overlapped: {exec} {time}"
    );
}
