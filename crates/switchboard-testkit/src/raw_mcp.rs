//! A raw MCP 2025-11-25 client over Streamable HTTP, for tests of MCP tasks (rmcp's client
//! models the later tasks extension, not 2025-11-25 tasks, so the tasks tests of the
//! code-executor and of the gateway speak the wire directly) and of the MCP endpoint's two
//! paths. Panics are the failure reports.
#![allow(clippy::unwrap_used)]

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::time::Instant;

pub const PROTOCOL: &str = "2025-11-25";

/// The JSON-RPC messages of an SSE body (or the one of a JSON body).
pub fn messages(body: &str) -> Vec<Value> {
    if let Ok(message) = serde_json::from_str::<Value>(body) {
        return vec![message];
    }
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            serde_json::from_str(&data.join("\n")).ok()
        })
        .collect()
}

/// A JSON-RPC request of `method` with `params`, id `id`.
pub fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// One initialized MCP session, authenticated with `key` if given.
pub struct RawSession {
    http: reqwest::Client,
    url: String,
    id: String,
    key: Option<String>,
    next: AtomicU64,
    /// The `initialize` result.
    pub initialize: Value,
}

impl RawSession {
    pub async fn open(url: &str, key: Option<&str>) -> Self {
        let http = reqwest::Client::new();
        let mut request = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "switchboard-raw-test-client", "version": "0"},
                },
            }));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.text().await.unwrap();
        let initialize = messages(&body)
            .into_iter()
            .find(|m| m["id"] == 0)
            .unwrap_or_else(|| panic!("no initialize answer in {body}"));
        let session = Self {
            http,
            url: url.to_owned(),
            id,
            key: key.map(str::to_owned),
            next: AtomicU64::new(1),
            initialize: initialize["result"].clone(),
        };
        let initialized = session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(initialized.status(), 202);
        session
    }

    fn with_headers(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", PROTOCOL);
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.with_headers(self.http.post(&self.url))
            .header("accept", "application/json, text/event-stream")
            .json(body)
    }

    /// The whole JSON-RPC answer to `method` with `params`.
    pub async fn send(&self, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(&message).send().await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let body = response.text().await.unwrap();
        messages(&body)
            .into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {method} in {body}"))
    }

    /// The answer to request `message` (its id is the caller's), sent with `headers` added:
    /// the content type of the HTTP answer and the JSON-RPC message answering it.
    pub async fn exchange(&self, message: &Value, headers: &[(&str, &str)]) -> (String, Value) {
        let mut request = self.post(message);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{message}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.text().await.unwrap();
        let answer = messages(&body)
            .into_iter()
            .find(|m| m["id"] == message["id"])
            .unwrap_or_else(|| panic!("no answer to {message} in {body}"));
        (content_type, answer)
    }

    /// Each of `requests` answered by the endpoint's own path (plain JSON) exactly as rmcp's
    /// session loop answers the same bytes (an SSE stream; an `Mcp-*` header the endpoint
    /// leaves to rmcp, which rmcp ignores in a session, sends it there). Returns the answers.
    pub async fn assert_one_path(&self, requests: &[Value]) -> Vec<Value> {
        // rmcp accepts `notifications/initialized` (202) before the handler has seen it, and
        // the endpoint's own path serves a session from then on: until then rmcp answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        let ping = json!({"jsonrpc": "2.0", "id": "ping", "method": "ping"});
        while self.exchange(&ping, &[]).await.0 != "application/json" {
            assert!(
                Instant::now() < deadline,
                "the session never reached the endpoint's path"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut answers = Vec::new();
        for request in requests {
            let (direct_type, direct) = self.exchange(request, &[]).await;
            let (rmcp_type, rmcp) = self.exchange(request, &[("mcp-x-to-rmcp", "1")]).await;
            assert_eq!(
                direct_type, "application/json",
                "answered on the endpoint's path: {request}"
            );
            assert_eq!(
                rmcp_type, "text/event-stream",
                "answered by rmcp: {request}"
            );
            assert_eq!(direct, rmcp, "the same answer both ways to {request}");
            answers.push(direct);
        }
        answers
    }

    /// The `result` of a request that must succeed.
    pub async fn ok(&self, method: &str, params: Value) -> Value {
        let answer = self.send(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// The `error` of a request that must fail.
    pub async fn error(&self, method: &str, params: Value) -> Value {
        let answer = self.send(method, params).await;
        assert!(answer.get("result").is_none(), "{method}: {answer}");
        answer["error"].clone()
    }

    /// Start `tool` as a task; the task (`CreateTaskResult.task`), which must be `working`.
    pub async fn start(&self, tool: &str, arguments: Value, task: Value) -> Value {
        let result = self
            .ok(
                "tools/call",
                json!({"name": tool, "arguments": arguments, "task": task}),
            )
            .await;
        assert_eq!(result["task"]["status"], "working", "{result}");
        result["task"].clone()
    }

    /// `tasks/get` until `done` holds for the task, within `patience` (a deadline).
    pub async fn until(
        &self,
        id: &Value,
        patience: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let task = self.ok("tasks/get", json!({"taskId": id})).await;
            if done(&task) {
                return task;
            }
            assert!(Instant::now() < deadline, "still {task} after {patience:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The session's standalone SSE stream (`GET`), where notifications arrive.
    pub async fn listen(&self) -> Listener {
        let request = self
            .with_headers(self.http.get(&self.url))
            .header("accept", "text/event-stream");
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Listener {
            response,
            buffer: String::new(),
        }
    }
}

pub struct Listener {
    response: reqwest::Response,
    buffer: String,
}

impl Listener {
    /// The params of the next notification `method` that satisfy `wanted`, within `patience`.
    pub async fn next(
        &mut self,
        method: &str,
        patience: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                for message in messages(&event) {
                    if message["method"] == method && wanted(&message["params"]) {
                        return message["params"].clone();
                    }
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {method} within {patience:?}"))
                .unwrap()
                .unwrap_or_else(|| panic!("the stream ended without {method}"));
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Whether the task (a `tasks/get` answer) has ended: completed, failed or cancelled.
pub fn terminal(task: &Value) -> bool {
    matches!(
        task["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Whether the code-executor says the task's program is running in a sandbox (its status
/// message), not waiting in its queue.
pub fn running(task: &Value) -> bool {
    task["statusMessage"] == "Running."
}
