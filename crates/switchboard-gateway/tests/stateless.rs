//! Requests of the 2026-07-28 revision (no session, the lifecycle in each request's `_meta`)
//! over raw HTTP: those the endpoint answers itself come back as plain JSON (or as an SSE
//! stream when notifications precede the answer), with exactly what rmcp answers for the same
//! bytes. rmcp's own answer is had by adding a header the endpoint leaves to rmcp (an
//! `Mcp-Param-*` header, which rmcp ignores for a tool without header annotations); rmcp
//! answers a 2026-07-28 request with an SSE stream (but for an error with an HTTP status of
//! its own), so the content type tells who answered.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::*;
use serde_json::{Value, json};

/// What the endpoint leaves to rmcp, and rmcp ignores here.
const TO_RMCP: (&str, &str) = ("mcp-param-unused", "1");

/// A 2026-07-28 client speaking Streamable HTTP by hand.
struct Modern {
    http: reqwest::Client,
    url: String,
}

/// One answer: its HTTP status, content type, and the JSON-RPC messages it carried in order.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    messages: Vec<Value>,
}

impl Answer {
    fn last(&self) -> &Value {
        self.messages.last().unwrap()
    }
}

/// A request of `method` with the 2026-07-28 `_meta` every such request carries.
fn request(id: u64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// The standard headers a 2026-07-28 client sends with `body`.
fn standard_headers(body: &Value) -> Vec<(&'static str, String)> {
    let method = body["method"].as_str().unwrap();
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28".to_owned()),
        ("mcp-method", method.to_owned()),
    ];
    let name = match method {
        "tools/call" | "prompts/get" => body["params"]["name"].as_str(),
        "resources/read" => body["params"]["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = name {
        headers.push(("mcp-name", name.to_owned()));
    }
    headers
}

impl Modern {
    fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
        }
    }

    async fn post(&self, body: &Value, headers: &[(&str, String)]) -> Answer {
        let mut post = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        for (name, value) in headers {
            post = post.header(*name, value);
        }
        let answer = post.send().await.unwrap();
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = answer.text().await.unwrap();
        let messages = if content_type.starts_with("text/event-stream") {
            text.lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter(|data| !data.trim().is_empty())
                .map(|data| serde_json::from_str(data.trim()).unwrap())
                .collect()
        } else {
            serde_json::from_str(&text).into_iter().collect()
        };
        Answer {
            status,
            content_type,
            messages,
        }
    }

    /// `body` answered by the endpoint and by rmcp.
    async fn both(&self, body: &Value) -> (Answer, Answer) {
        let headers = standard_headers(body);
        let here = self.post(body, &headers).await;
        let mut to_rmcp = headers.clone();
        to_rmcp.push((TO_RMCP.0, TO_RMCP.1.to_owned()));
        let rmcp = self.post(body, &to_rmcp).await;
        // rmcp answers a 2026-07-28 request with SSE unless it answers another HTTP status.
        assert!(
            rmcp.status != 200 || rmcp.content_type.starts_with("text/event-stream"),
            "rmcp answered: {rmcp:?}"
        );
        (here, rmcp)
    }
}

/// The gateway in front of the everything server (stdio).
async fn everything_gateway() -> GatewayUnderTest {
    let gateway = gateway(config(vec![everything_stdio()])).await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools
                .iter()
                .any(|t| t.name == "trigger-long-running-operation")
        })
        .await;
    gateway
}

/// Lists, `ping`, a tool call, a prompt, a resource, and the errors of an unknown tool, prompt
/// and resource: answered here as JSON, with rmcp's status and body for the same request.
#[tokio::test]
async fn stateless_requests_are_answered_here_as_rmcp_answers_them() {
    let gateway = everything_gateway().await;
    let client = Modern::new(&gateway.mcp_url());
    let requests = [
        request(1, "tools/list", json!({})),
        request(2, "resources/list", json!({})),
        request(3, "resources/templates/list", json!({})),
        request(4, "prompts/list", json!({})),
        request(5, "ping", json!({})),
        request(
            6,
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "hi"}}),
        ),
        request(
            7,
            "tools/call",
            json!({"name": "no_such_tool", "arguments": {}}),
        ),
        request(8, "prompts/get", json!({"name": "simple-prompt"})),
        request(9, "prompts/get", json!({"name": "no-such-prompt"})),
        request(
            10,
            "resources/read",
            json!({"uri": "demo://resource/static/document/architecture.md"}),
        ),
        request(11, "resources/read", json!({"uri": "demo://no/such/thing"})),
    ];
    for body in &requests {
        let (here, rmcp) = client.both(body).await;
        let what = &body["method"];
        assert_eq!(here.content_type, "application/json", "{what}: {here:?}");
        assert_eq!(here.status, rmcp.status, "{what}: {here:?} / {rmcp:?}");
        assert_eq!(here.messages, rmcp.messages, "{what}");
    }
    // Results of this revision carry their type; the call reached the upstream.
    let (here, _) = client.both(&requests[5]).await;
    assert_eq!(here.last()["result"]["resultType"], "complete", "{here:?}");
    assert_eq!(here.last()["result"]["content"][0]["text"], "Echo: hi");
}

/// Progress sent before the answer: the endpoint answers with an SSE stream of the progress
/// notifications under the client's token, in order, then the answer, as rmcp does.
#[tokio::test]
async fn progress_before_a_stateless_answer_comes_on_its_stream() {
    let gateway = everything_gateway().await;
    let client = Modern::new(&gateway.mcp_url());
    let mut body = request(
        1,
        "tools/call",
        json!({"name": "trigger-long-running-operation",
               "arguments": {"duration": 0.3, "steps": 3}}),
    );
    body["params"]["_meta"]["progressToken"] = json!("p-1");
    let (here, rmcp) = client.both(&body).await;
    assert!(
        here.content_type.starts_with("text/event-stream"),
        "{here:?}"
    );
    let progress = |answer: &Answer| -> Vec<Value> {
        answer
            .messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            // rmcp writes 1, the endpoint 1.0: the same JSON number.
            .map(|m| {
                json!([
                    m["params"]["progressToken"],
                    m["params"]["progress"].as_f64()
                ])
            })
            .collect()
    };
    assert_eq!(
        progress(&here),
        vec![
            json!(["p-1", 1.0]),
            json!(["p-1", 2.0]),
            json!(["p-1", 3.0])
        ]
    );
    assert_eq!(here.last()["id"], 1, "the answer comes last: {here:?}");
    assert_eq!(here.last()["result"]["resultType"], "complete");
    // rmcp's answer is the same. Its path sends each progress notification from a task of its
    // own, so one may arrive after the answer has closed the stream: only a subset is sure.
    let answer = |a: &Answer| a.messages.iter().find(|m| m["id"] == 1).cloned();
    assert_eq!(answer(&here), answer(&rmcp), "{rmcp:?}");
    assert!(progress(&rmcp).iter().all(|p| progress(&here).contains(p)));
}

/// What rmcp refuses is refused as before: a `_meta` without the client's capabilities, an
/// `Mcp-Name` or `Mcp-Method` that disagrees with the body, a missing `Mcp-Method`.
#[tokio::test]
async fn malformed_stateless_requests_are_refused_by_rmcp() {
    let gateway = everything_gateway().await;
    let client = Modern::new(&gateway.mcp_url());
    let call = request(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "x"}}),
    );

    let mut no_capabilities = call.clone();
    no_capabilities["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let refused = client
        .post(&no_capabilities, &standard_headers(&no_capabilities))
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.last()["error"]["code"], -32602, "{refused:?}");

    let standard = standard_headers(&call);
    let with = |name: &'static str, value: &str| {
        let mut headers: Vec<_> = standard
            .iter()
            .filter(|(n, _)| *n != name)
            .cloned()
            .collect();
        headers.push((name, value.to_owned()));
        headers
    };
    for (headers, what) in [
        (with("mcp-name", "get-sum"), "an Mcp-Name of another tool"),
        (
            with("mcp-method", "tools/list"),
            "an Mcp-Method of another method",
        ),
        (
            standard
                .iter()
                .filter(|(n, _)| *n != "mcp-method")
                .cloned()
                .collect(),
            "no Mcp-Method",
        ),
    ] {
        let refused = client.post(&call, &headers).await;
        assert_eq!(refused.status, 400, "{what}: {refused:?}");
        assert_eq!(
            refused.last()["error"]["code"],
            -32020,
            "{what}: {refused:?}"
        );
    }

    // A Base64-wrapped Mcp-Name is rmcp's to decode; it accepts this one.
    let wrapped = with("mcp-name", "=?base64?ZWNobw==?=");
    let answer = client.post(&call, &wrapped).await;
    assert!(
        answer.content_type.starts_with("text/event-stream"),
        "{answer:?}"
    );
    assert_eq!(answer.last()["result"]["content"][0]["text"], "Echo: x");
}
