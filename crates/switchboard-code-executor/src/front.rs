//! The HTTP front of `/mcp`: MCP 2025-11-25 tasks on rmcp (behind it, the endpoint every
//! service serves: `switchboard_protocol::mcp_server::endpoint`).
//!
//! rmcp 3.11 models the later tasks extension, not the 2025-11-25 tasks utility
//! (`switchboard_protocol::mcp_server::tasks_2025` says what is missing and holds what this
//! front shares with the gateway's). So, before rmcp reads a POST of a session:
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
    body::Body,
    http::{Request, header},
    response::Response,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use switchboard_protocol::mcp_server::{
    endpoint::{McpEndpoint, read_body},
    tasks_2025::{self, Probe},
};
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
        if !tasks_2025::applies(request.method(), request.headers()) {
            return self.forward(request).await;
        }
        let (mut parts, body) = request.into_parts();
        let bytes = match read_body(body, self.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(refused) => return refused,
        };
        let in_session = parts.headers.contains_key("mcp-session-id");
        let (renamed, patch) = match Probe::read(&bytes) {
            Some(probe) => plan(&probe, in_session, self.offered),
            None => (None, None),
        };
        let body = match renamed.and_then(|method| tasks_2025::rename(&bytes, method)) {
            Some(renamed) => {
                // The length changed; the body is whole, so none is needed.
                parts.headers.remove(header::CONTENT_LENGTH);
                renamed
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

/// The method to rename the message to, and the answer to rewrite, if any (`offered`: see
/// [`TasksFront::offered`]).
fn plan(
    probe: &Probe,
    in_session: bool,
    offered: bool,
) -> (Option<&'static str>, Option<(Value, Patch)>) {
    let method = probe.method.as_deref();
    let renamed = match method {
        Some("tasks/get") if in_session => Some(wire::GET_METHOD),
        Some("tasks/cancel") if in_session => Some(wire::CANCEL_METHOD),
        Some("tools/call") if in_session && probe.has_task() => Some(wire::CALL_METHOD),
        _ => None,
    };
    let id = probe.id.clone();
    let patch = match method {
        _ if !offered => None,
        Some("initialize") => id.map(|id| (id, Patch::Initialize)),
        Some("tools/list") if in_session => id.map(|id| (id, Patch::ToolList)),
        _ => None,
    };
    (renamed, patch)
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

/// The `execution` of the tools that may run as tasks.
static OPTIONAL: LazyLock<Value> = LazyLock::new(|| json!({"taskSupport": "optional"}));

/// The response with its answer to `id` completed (`tasks_2025`).
async fn rewrite(response: Response, id: Value, patch: Patch) -> Response {
    match patch {
        Patch::Initialize => {
            let capability = json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
            tasks_2025::complete_initialize(response, id, capability).await
        }
        Patch::ToolList => {
            tasks_2025::complete_tool_list(response, id, (), |(), name| {
                TASK_TOOLS.contains(&name).then_some(&*OPTIONAL)
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

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

    fn planned(
        message: &str,
        in_session: bool,
        offered: bool,
    ) -> (Option<&'static str>, Option<Patch>) {
        let probe = Probe::read(message.as_bytes()).expect("a message");
        let (renamed, patch) = plan(&probe, in_session, offered);
        (renamed, patch.map(|(_, patch)| patch))
    }

    #[test]
    fn task_requests_of_a_session_are_renamed_and_two_answers_completed() {
        let with_task = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code","task":{}}}"#;
        let plain =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code"}}"#;
        let get = r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t"}}"#;
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
        assert!(matches!(
            planned(with_task, true, true),
            (Some(wire::CALL_METHOD), None)
        ));
        assert!(matches!(planned(plain, true, true), (None, None)));
        assert!(matches!(
            planned(get, true, true),
            (Some(wire::GET_METHOD), None)
        ));
        // Outside a session nothing is renamed; a list is completed only in one.
        assert!(matches!(planned(get, false, true), (None, None)));
        assert!(matches!(
            planned(list, true, true),
            (None, Some(Patch::ToolList))
        ));
        assert!(matches!(planned(list, false, true), (None, None)));
        assert!(matches!(
            planned(initialize, false, true),
            (None, Some(Patch::Initialize))
        ));
        // Tasks not offered: nothing is declared.
        assert!(matches!(planned(initialize, false, false), (None, None)));
        assert!(matches!(planned(list, true, false), (None, None)));
    }
}
