//! `/tools`, `/execute`, `/health`, `/ready`, `/metrics`, CORS and the chat page.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Setup, stack};
use serde_json::json;
use switchboard_testkit::Reply;

/// The gateway's tools, as MCP describes them and as OpenAI functions.
#[tokio::test]
async fn tools_are_listed_in_both_formats() {
    let s = stack(Setup::offline()).await;
    let (status, body) = s.get("/tools").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2);
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"get_current_time") && names.contains(&"convert_time"));
    let tool = &body["tools"][0];
    assert!(tool["input_schema"].is_object() && tool["output_schema"].is_object());
    let openai = &body["openai_tools"][0];
    assert_eq!(openai["type"], "function");
    assert_eq!(openai["function"]["parameters"]["type"], "object");
    assert!(openai["function"]["description"].as_str().unwrap().len() > 20);
}

/// A direct tool call works without any LLM; a tool's own failure is a 200 with
/// `is_error`, an unknown tool 404, bad parameters 400, an unreachable gateway 502.
#[tokio::test]
async fn execute_calls_one_tool_without_an_llm() {
    let s = stack(Setup::offline()).await;
    let (status, body) = s
        .post(
            "/execute",
            json!({"name": "get_current_time", "parameters": {"timezone": "Asia/Kolkata"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_error"], false);
    assert!(
        body["structured_content"]["datetime"]
            .as_str()
            .unwrap()
            .ends_with("+05:30")
    );
    assert!(body["result"].as_str().unwrap().contains("Asia/Kolkata"));

    let (status, body) = s
        .post(
            "/execute",
            json!({"name": "get_current_time", "arguments": {"timezone": "Paris"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["is_error"], true);
    assert!(
        body["result"].as_str().unwrap().contains("Europe/Paris"),
        "{body}"
    );

    let (status, body) = s.post("/execute", json!({"name": "nope"})).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("get_current_time")
    );
    let (status, _) = s
        .post(
            "/execute",
            json!({"name": "get_current_time", "parameters": [1]}),
        )
        .await;
    assert_eq!(status, 400);

    let down = stack(Setup::offline().gateway_down()).await;
    let (status, body) = down
        .post("/execute", json!({"name": "get_current_time"}))
        .await;
    assert_eq!(status, 502);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach the MCP gateway")
    );
}

/// `/health` shows both dependencies; `/ready` follows the gateway.
#[tokio::test]
async fn health_reports_gateway_and_llm() {
    let s = stack(Setup::openai(vec![Reply::text("unused")])).await;
    let (status, health) = s.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["dependencies"]["gateway"]["ready"], true);
    assert!(
        health["dependencies"]["gateway"]["detail"]["tools"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );
    let llm = &health["dependencies"]["llm"];
    assert_eq!(llm["ready"], true, "{llm}");
    assert_eq!(llm["detail"]["provider"], "openai");
    assert_eq!(llm["detail"]["model"], "scripted-model");
    assert_eq!(s.get("/ready").await.0, 200);

    let offline = stack(Setup::offline().gateway_down()).await;
    let (status, health) = offline.get("/health").await;
    assert_eq!(status, 200, "liveness stays 200");
    assert_eq!(health["ready"], false);
    assert_eq!(
        health["dependencies"]["llm"]["detail"]["mode"],
        "offline_planner"
    );
    let gateway = &health["dependencies"]["gateway"];
    assert!(
        gateway["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach")
    );
    let (status, ready) = offline.get("/ready").await;
    assert_eq!(status, 503);
    assert_eq!(ready["status"], "not_ready");
}

/// Chat, LLM and tool metrics appear on `/metrics`.
#[tokio::test]
async fn metrics_count_chats_llm_requests_and_tool_calls() {
    let s = stack(Setup::openai(vec![
        Reply::tools([("get_current_time", json!({}))]),
        Reply::text("ok"),
    ]))
    .await;
    s.post("/chat", json!({"message": "time"})).await;
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "chat_requests_total{",
        "endpoint=\"chat\"",
        "llm_requests_total{",
        "provider=\"openai\"",
        "tool_calls_total{",
        "tool=\"get_current_time\"",
        "tool_call_duration_seconds_bucket",
        "service=\"middleware\"",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
}

/// CORS answers preflights for configured origins only, and those origins may POST.
#[tokio::test]
async fn cors_follows_configuration() {
    let s = stack(Setup::offline().tweak(|c| switchboard_middleware::Config {
        cors_origins: vec!["https://chat.example".into()],
        ..c
    }))
    .await;
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/chat", s.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://chat.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://chat.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let post = s
        .http
        .post(format!("{}/chat", s.base))
        .header("origin", "https://chat.example")
        .json(&json!({"message": "time?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(
        post.headers()["access-control-allow-origin"],
        "https://chat.example"
    );
}

/// The chat page and its script are served with a strict content security policy.
#[tokio::test]
async fn chat_page_is_served() {
    let s = stack(Setup::offline()).await;
    let page = s.http.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/chat.js\">"));
    let script = s
        .http
        .get(format!("{}/chat.js", s.base))
        .send()
        .await
        .unwrap();
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().await.unwrap().contains("tool_call_finished"));
    assert!(html.contains("<script src=\"/markdown.js\">"));
    let markdown = s
        .http
        .get(format!("{}/markdown.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(markdown.status(), 200);
    assert!(
        markdown
            .text()
            .await
            .unwrap()
            .contains("function renderMarkdown")
    );
}
