//! Long executions in a streamed chat run as MCP tasks (issue 15): the middleware asks the
//! gateway for a task, the code-executor runs it, and its status reaches the chat as
//! `tool_call_progress` events until the result arrives; past the middleware's tool timeout
//! the task is cancelled, not left running.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::time::{Duration, Instant};

use common::{client, done_of, post_sse};
use serde_json::{Value, json};
use switchboard_e2e::{Llm, System};

fn data(sse: &[(String, String)], name: &str) -> Vec<Value> {
    sse.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect()
}

/// A three-second program in a conversation (its sandbox session): progress events name its
/// task and say it is working, before the finished event, which carries the program's output.
#[tokio::test]
async fn a_long_execution_streams_its_progress() {
    let system = System::start(Llm::Offline).await;
    let program = "import time\nfor i in range(3):\n    time.sleep(1)\nprint('slept', i + 1)";
    let sse = post_sse(
        &system.middleware,
        "/chat",
        json!({"message": format!("Execute: {program}"), "stream": true, "conversation_id": "long"}),
    )
    .await;
    let started = data(&sse, "tool_call_started");
    assert_eq!(started.len(), 1, "{sse:?}");
    let id = started[0]["id"].as_str().unwrap();

    let progress = data(&sse, "tool_call_progress");
    assert!(
        progress.len() >= 2,
        "the task's creation and at least one poll during 3 s: {progress:?}"
    );
    let task = progress[0]["task_id"].as_str().unwrap();
    assert!(!task.is_empty());
    for event in &progress {
        assert_eq!(event["id"], id, "{event}");
        assert_eq!(event["task_id"], task, "one task: {event}");
    }
    assert!(
        progress.iter().any(|e| e["status"] == "working"),
        "{progress:?}"
    );
    let elapsed: Vec<f64> = progress
        .iter()
        .map(|e| e["elapsed_ms"].as_f64().unwrap())
        .collect();
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]), "{elapsed:?}");

    let names: Vec<&str> = sse.iter().map(|(n, _)| n.as_str()).collect();
    let finished = names
        .iter()
        .position(|n| *n == "tool_call_finished")
        .unwrap();
    let last_progress = names
        .iter()
        .rposition(|n| *n == "tool_call_progress")
        .unwrap();
    assert!(last_progress < finished, "{names:?}");
    let answer = done_of(&sse);
    let exec = &answer["tool_calls"][0];
    assert_eq!(exec["is_error"], false, "{exec}");
    assert_eq!(exec["structured_content"]["stdout"], "slept 3\n", "{exec}");
    assert!(exec["arguments"]["session_id"].is_string(), "{exec}");

    // The session kept the program's state, as a plain call would have.
    let sse = post_sse(
        &system.middleware,
        "/chat",
        json!({"message": "Execute: print(i * 7)", "stream": true, "conversation_id": "long"}),
    )
    .await;
    let exec = &done_of(&sse)["tool_calls"][0];
    assert_eq!(exec["structured_content"]["stdout"], "14\n", "{exec}");
}

/// A chat nobody streams calls the tool plainly: no task is made.
#[tokio::test]
async fn a_chat_nobody_watches_runs_code_without_a_task() {
    let system = System::start(Llm::Offline).await;
    let (status, answer) = common::post(
        &system.middleware,
        "/chat",
        json!({"message": "Execute: print(6 * 7)"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        common::call(&answer, "execute_code")["structured_content"]["stdout"],
        "42\n"
    );
    assert_eq!(task_outcomes(&system, "completed").await, 0.0);
}

/// Past the middleware's tool timeout the call fails with a clear message and the task is
/// cancelled at the code-executor (its metrics count it), not left to run its 30 s.
#[tokio::test]
async fn a_task_past_the_tool_timeout_is_cancelled() {
    let system = System::start_with(Llm::Offline, |mut c| {
        c.tool_timeout = Duration::from_secs(2);
        c
    })
    .await;
    let sse = post_sse(
        &system.middleware,
        "/chat",
        json!({"message": "Execute: import time\ntime.sleep(30)", "stream": true}),
    )
    .await;
    assert!(!data(&sse, "tool_call_progress").is_empty(), "{sse:?}");
    let answer = done_of(&sse);
    let exec = &answer["tool_calls"][0];
    assert_eq!(exec["is_error"], true, "{exec}");
    assert!(
        exec["result"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{exec}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while task_outcomes(&system, "cancelled").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the code-executor never counted the task cancelled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A task that outlives the gateway's call timeout: `tasks/result` is cut short by the
/// gateway, and the middleware asks again until the task has ended; the chat gets the result.
#[tokio::test]
async fn a_task_outlives_the_gateways_call_timeout() {
    let system = System::start_tuned(Llm::Offline, Duration::from_secs(2), |mut c| {
        c.tool_timeout = Duration::from_secs(30);
        c
    })
    .await;
    let sse = post_sse(
        &system.middleware,
        "/chat",
        json!({"message": "Execute: import time\ntime.sleep(5)\nprint('outlived')", "stream": true}),
    )
    .await;
    let exec = &done_of(&sse)["tool_calls"][0];
    assert_eq!(exec["is_error"], false, "{exec}");
    assert_eq!(exec["structured_content"]["stdout"], "outlived\n", "{exec}");
    assert!(exec["duration_ms"].as_f64().unwrap() >= 5000.0, "{exec}");
}

/// The code-executor's count of tasks that ended as `outcome`.
async fn task_outcomes(system: &System, outcome: &str) -> f64 {
    let text = client()
        .get(format!("{}/metrics", system.code_executor))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            !l.starts_with('#')
                && l.contains("mcp_task_outcomes")
                && l.contains(&format!("\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
