//! The HTTP front of `/mcp`: MCP 2025-11-25 tasks on rmcp (behind it, the endpoint every
//! service serves: `switchboard_protocol::mcp_server::endpoint`).
//!
//! rmcp 3.11 models the later tasks *extension* (SEP-2663: `tasks/get` with the result
//! inlined, `tasks/update`, neither `tasks/result` nor `tasks/list`), not the 2025-11-25 tasks
//! utility: its types have no `capabilities.tasks`, no `execution.taskSupport` on a tool and
//! no `task` param on `tools/call`, and it parses `tasks/get` and `tasks/cancel` as the
//! extension's. So, before rmcp reads a POST of a session:
//!
//! - a `tools/call` whose params hold a `task` object, `tasks/get` and `tasks/cancel` are
//!   renamed ([`wire::CALL_METHOD`], [`wire::GET_METHOD`], [`wire::CANCEL_METHOD`]; same id,
//!   same params): rmcp hands them to the handler as custom requests and returns its answers
//!   as they are. `tasks/result` and `tasks/list` reach it unrenamed (rmcp has no such
//!   methods);
//! - the answer to `initialize` gains `capabilities.tasks` (`list`, `cancel`,
//!   `requests.tools.call`) and the answer to `tools/list` gains
//!   `execution: {"taskSupport": "optional"}` on both tools: the SSE event (or JSON body) that
//!   carries the response with the request's id is rewritten, everything else streams through.
//!
//! A request that names protocol 2026-07-28 or later (`MCP-Protocol-Version`), where tasks are
//! the extension rmcp implements, passes untouched, as does every GET and DELETE.

use std::{
    convert::Infallible,
    sync::LazyLock,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    http::{Method, Request, header},
    response::Response,
};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_protocol::mcp_server::endpoint::{McpEndpoint, read_body};
use tower::Service;

use crate::{server::CodeExecutorServer, tasks::wire};

/// The tools that may be called as tasks.
const TASK_TOOLS: [&str; 2] = ["execute_code", "install_package"];

type Inner = McpEndpoint<CodeExecutorServer>;

/// `/mcp`: the rmcp service behind the renaming and rewriting above.
#[derive(Clone)]
pub struct TasksFront {
    inner: Inner,
    max_body_bytes: usize,
    /// Tasks can be kept (see `Tasks::offered`): else the capability and `taskSupport` are not
    /// declared, and clients call the tools plainly.
    offered: bool,
}

/// What the front reads of a POSTed JSON-RPC message.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    params: Option<EnvelopeParams>,
}

#[derive(Deserialize)]
struct EnvelopeParams {
    #[serde(default)]
    task: Option<Value>,
}

/// Which answer to rewrite.
#[derive(Clone, Copy)]
enum Patch {
    Initialize,
    ToolList,
}

impl TasksFront {
    pub fn new(inner: Inner, max_body_bytes: usize, offered: bool) -> Self {
        Self {
            inner,
            max_body_bytes,
            offered,
        }
    }

    async fn forward(&mut self, request: Request<Body>) -> Response {
        self.inner.handle(request).await
    }

    async fn handle(mut self, request: Request<Body>) -> Response {
        if request.method() != Method::POST || names_extension_protocol(&request) {
            return self.forward(request).await;
        }
        let (mut parts, body) = request.into_parts();
        let bytes = match read_body(body, self.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(refused) => return refused,
        };
        let in_session = parts.headers.contains_key("mcp-session-id");
        let envelope = serde_json::from_slice::<Envelope>(&bytes).ok();
        let (method, id) = envelope
            .as_ref()
            .map_or((None, None), |e| (e.method.as_deref(), e.id.clone()));
        let has_task = envelope
            .as_ref()
            .and_then(|e| e.params.as_ref()?.task.as_ref())
            .is_some_and(Value::is_object);
        let renamed = match method {
            Some("tasks/get") if in_session => Some(wire::GET_METHOD),
            Some("tasks/cancel") if in_session => Some(wire::CANCEL_METHOD),
            Some("tools/call") if in_session && has_task => Some(wire::CALL_METHOD),
            _ => None,
        };
        let patch = match method {
            _ if !self.offered => None,
            Some("initialize") => id.map(|id| (id, Patch::Initialize)),
            Some("tools/list") if in_session => id.map(|id| (id, Patch::ToolList)),
            _ => None,
        };
        let body = match renamed {
            Some(method) => {
                // The length changed; the body is whole, so none is needed.
                parts.headers.remove(header::CONTENT_LENGTH);
                rename(bytes, method)
            }
            None => bytes,
        };
        let response = self
            .forward(Request::from_parts(parts, Body::from(body)))
            .await;
        match patch {
            Some((id, patch)) => rewrite(response, id, patch).await,
            None => response,
        }
    }
}

impl Service<Request<Body>> for TasksFront {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

/// Whether the request names a protocol version with the tasks extension (2026-07-28+).
fn names_extension_protocol(request: &Request<Body>) -> bool {
    request
        .headers()
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v >= "2026-07-28")
}

/// The same message with another method (the original when it does not parse).
fn rename(bytes: Bytes, method: &str) -> Bytes {
    let Ok(mut message) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    message["method"] = Value::String(method.to_owned());
    serde_json::to_vec(&message).map_or(bytes, Bytes::from)
}

/// Add the tasks capability to the response `message`, if it answers `id`'s `initialize`.
fn patch_initialize(message: &mut Value, id: &Value) -> bool {
    if message.get("id") != Some(id) {
        return false;
    }
    let Some(result) = message.get_mut("result") else {
        return false;
    };
    // A session on 2026-07-28 or later has rmcp's own tasks extension instead.
    let version = result.get("protocolVersion").and_then(Value::as_str);
    if version.is_none_or(|v| v >= "2026-07-28") {
        return false;
    }
    let Some(capabilities) = result
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    else {
        return false;
    };
    capabilities.insert(
        "tasks".into(),
        json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}),
    );
    true
}

/// The `execution` of the tools that may run as tasks.
static OPTIONAL: LazyLock<Value> = LazyLock::new(|| json!({"taskSupport": "optional"}));

/// The response with its answer to `id` rewritten: an SSE stream event by event until that
/// one, then as it comes; a JSON body whole. A tool list is spliced, not parsed and written
/// again (see `switchboard_protocol::mcp_server::rewrite`).
async fn rewrite(response: Response, id: Value, patch: Patch) -> Response {
    use switchboard_protocol::mcp_server::rewrite;
    match patch {
        Patch::Initialize => {
            rewrite::answer(response, move |message| patch_initialize(message, &id)).await
        }
        Patch::ToolList => {
            rewrite::answer_bytes(response, move |message| {
                rewrite::tool_executions(message, &id, |name| {
                    TASK_TOOLS.contains(&name).then_some(&*OPTIONAL)
                })
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rewrites_only_the_answer_to_the_request() {
        let other =
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n";
        let answer = "id: 0\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"execute_code\"},{\"name\":\"other\"}]}}\n\n";
        let after = "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"execute_code\"}]}}\n\n";
        // Split mid-event, as a stream may.
        let whole = format!("{other}{answer}{after}");
        let (a, b) = whole.split_at(other.len() + 10);
        let chunks: Vec<Result<Bytes, Infallible>> =
            vec![Ok(Bytes::from(a.to_owned())), Ok(Bytes::from(b.to_owned()))];
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(futures::stream::iter(chunks)))
            .expect("a response");
        let out = rewrite(response, json!(7), Patch::ToolList).await;
        let text = String::from_utf8(
            axum::body::to_bytes(out.into_body(), usize::MAX)
                .await
                .expect("body")
                .to_vec(),
        )
        .expect("utf-8");
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3, "{text}");
        assert_eq!(format!("{}\n\n", events[0]), other);
        assert!(events[1].starts_with("id: 0\ndata: "), "{}", events[1]);
        let data: Value = serde_json::from_str(&events[1]["id: 0\ndata: ".len()..]).expect("json");
        assert_eq!(
            data["result"]["tools"][0]["execution"]["taskSupport"],
            "optional"
        );
        assert!(data["result"]["tools"][1].get("execution").is_none());
        // Only the first answer is rewritten; the rest streams as it was.
        assert_eq!(format!("{}\n\n", events[2]), after);
    }

    #[test]
    fn initialize_gains_the_tasks_capability() {
        let mut message = json!({"jsonrpc": "2.0", "id": "a", "result": {
            "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
        }});
        let mut modern = json!({"jsonrpc": "2.0", "id": "a", "result": {
            "protocolVersion": "2026-07-28", "capabilities": {},
        }});
        assert!(!patch_initialize(&mut modern, &json!("a")));
        assert!(!patch_initialize(&mut message.clone(), &json!("b")));
        assert!(patch_initialize(&mut message, &json!("a")));
        assert_eq!(
            message["result"]["capabilities"]["tasks"]["requests"]["tools"]["call"],
            json!({})
        );
        let renamed = rename(
            Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t"}}"#,
            ),
            wire::GET_METHOD,
        );
        let renamed: Value = serde_json::from_slice(&renamed).expect("json");
        assert_eq!(renamed["method"], wire::GET_METHOD);
        assert_eq!(renamed["params"]["taskId"], "t");
    }
}
