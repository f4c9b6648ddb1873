//! MCP 2025-11-25 tasks of a stdio upstream: the reference everything server, started by the
//! gateway as a program, offers `simulate-research-query` as a task-only tool (about 4 s in
//! four stages). Through the gateway a client of a 2025-11-25 session sees the tasks
//! capability and the tool's `execution`, starts the task, polls it to completion (and hears
//! its status notifications), lists it and fetches its result; another run is cancelled;
//! another client sees none of them (the program keeps every client's tasks in one place).
//! rmcp's child-process transport would have read the upstream's `CreateTaskResult` as an
//! empty result.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::*;
use serde_json::json;
use switchboard_testkit::raw_mcp::{RawSession, terminal};

const TOOL: &str = "simulate-research-query";

#[tokio::test]
async fn tasks_of_a_stdio_upstream_are_started_polled_fetched_and_cancelled() {
    let gateway = gateway(config(vec![everything_stdio()])).await;
    gateway
        .wait_for("the research tool listed as a task tool", |c| {
            c.tasks.is_some() && c.tool_routes.contains_key(TOOL)
        })
        .await;
    let client = RawSession::open(&gateway.mcp_url(), None).await;
    let tasks = &client.initialize["capabilities"]["tasks"];
    assert_eq!(
        tasks["requests"]["tools"]["call"],
        json!({}),
        "the gateway declares the upstream's tasks: {}",
        client.initialize
    );
    let tools = client.ok("tools/list", json!({})).await;
    let research = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == TOOL)
        .unwrap();
    assert_eq!(research["execution"], json!({"taskSupport": "required"}));

    // Started at once as a task under the gateway's id; polled until it completes; its
    // status notifications reach this client's session under the same id.
    let mut listener = client.listen().await;
    let task = client
        .start(
            TOOL,
            json!({"topic": "stdio tasks"}),
            json!({"ttl": 60_000}),
        )
        .await;
    let id = task["taskId"].clone();
    assert!(id.as_str().unwrap().contains('.'), "the gateway's id: {id}");
    let done = client.until(&id, PATIENCE, terminal).await;
    assert_eq!(done["status"], "completed", "{done}");
    let notice = listener
        .next("notifications/tasks/status", PATIENCE, |p| {
            p["taskId"] == id && p["status"] == "completed"
        })
        .await;
    assert_eq!(notice["taskId"], id);
    let listed = client.ok("tasks/list", json!({})).await;
    assert!(
        listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["taskId"] == id),
        "{listed}"
    );
    let result = client.ok("tasks/result", json!({"taskId": id})).await;
    let report = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(report.contains("Research Report: stdio tasks"), "{result}");

    // Another client of the gateway: the program is one session for all of them, yet the
    // first client's task is unknown to it and not in its list.
    let other = RawSession::open(&gateway.mcp_url(), None).await;
    let error = other.error("tasks/get", json!({"taskId": id})).await;
    assert_eq!(error["code"], -32602, "{error}");
    let error = other.error("tasks/result", json!({"taskId": id})).await;
    assert_eq!(error["code"], -32602, "{error}");
    let theirs = other.ok("tasks/list", json!({})).await;
    assert_eq!(theirs["tasks"], json!([]), "{theirs}");

    // Another, cancelled while it works.
    let task = client
        .start(TOOL, json!({"topic": "cancelled"}), json!({"ttl": 60_000}))
        .await;
    let cancelled = client
        .ok("tasks/cancel", json!({"taskId": task["taskId"]}))
        .await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let after = client
        .ok("tasks/get", json!({"taskId": task["taskId"]}))
        .await;
    assert_eq!(after["status"], "cancelled", "{after}");

    // A call without a task is the upstream's to refuse (the tool runs only as a task).
    let plain = client
        .send(
            "tools/call",
            json!({"name": TOOL, "arguments": {"topic": "x"}}),
        )
        .await;
    assert!(
        plain.get("error").is_some() || plain["result"]["isError"] == true,
        "{plain}"
    );
}
