//! MCP 2025-11-25 tasks at the endpoint, where rmcp 3.11 (which models the later tasks
//! extension) cannot carry them (`switchboard_protocol::mcp_server::tasks_2025` says what is
//! missing and holds what this front shares with the code-executor's): while an upstream offers
//! tasks, each POST of a session on a 2025-era protocol is looked at before rmcp or the direct
//! path reads it.
//!
//! - A `tools/call` with a `task` object, of a tool that may run as a task, and `tasks/get`
//!   and `tasks/cancel` are renamed to the custom methods of `crate::server::tasks` (same id,
//!   same params); `tasks/result` and `tasks/list` are custom requests already. A `task` on a
//!   tool that may not run as one stays a plain call, which the specification asks for.
//! - The answer to `initialize` gains `capabilities.tasks`, and the answer to `tools/list`
//!   each tool's `execution`: the message answering the request is rewritten (in an SSE
//!   stream, that event alone), everything else passes as it came.
//!
//! Requests that name protocol 2026-07-28 or later, and everything while no upstream offers
//! tasks, pass untouched and cost nothing more.

use std::sync::Arc;

use axum::{body::Bytes, response::Response};
use http::{HeaderMap, HeaderValue, Method, header};
use serde_json::Value;
use switchboard_protocol::mcp_server::tasks_2025::{self, Probe};

use crate::{
    catalog::Catalog,
    gateway::{Gateway, tasks::runs_as_task},
    server::tasks::{CALL, CANCEL, GET},
    upstream::Owner,
};

/// Whether `request` may concern tasks (see the module documentation).
pub(super) fn applies(gateway: &Gateway, method: &Method, headers: &HeaderMap) -> bool {
    tasks_2025::applies(method, headers) && gateway.catalog().tasks.is_some()
}

/// An answer to complete: the request's id and what to add.
pub(super) struct Patch {
    id: Value,
    kind: Kind,
}

enum Kind {
    /// `capabilities.tasks` of an `initialize` answer.
    Initialize(Value),
    /// The `execution` of the tools of a `tools/list` answer, from this catalog.
    ToolList(Arc<Catalog>),
}

/// The message to pass on (renamed if need be) and the answer to complete, if any.
pub(super) fn prepare(
    gateway: &Gateway,
    headers: &mut HeaderMap,
    bytes: Bytes,
) -> (Bytes, Option<Patch>) {
    let Some(probe) = Probe::read(&bytes) else {
        return (bytes, None);
    };
    let (Some(method), Some(id)) = (probe.method.as_deref(), probe.id.clone()) else {
        return (bytes, None);
    };
    let session = crate::sessions::header_session_id(headers);
    let catalog = || match &session {
        Some(session) => gateway.catalog_for(&Owner::Session(session.clone())),
        None => gateway.catalog(),
    };
    let renamed = match method {
        "initialize" => {
            let capability = gateway.catalog().tasks.clone();
            let patch = capability.map(|c| Patch {
                id,
                kind: Kind::Initialize(c),
            });
            return (bytes, patch);
        }
        "tools/list" if session.is_some() => {
            let patch = Patch {
                id,
                kind: Kind::ToolList(catalog()),
            };
            return (bytes, Some(patch));
        }
        _ if session.is_none() => None,
        "tasks/get" => Some(GET),
        "tasks/cancel" => Some(CANCEL),
        "tools/call" => {
            let may = probe.tool().is_some_and(|name| {
                catalog()
                    .tool_routes
                    .get(name)
                    .is_some_and(|route| runs_as_task(route.execution.as_ref()))
            });
            (probe.has_task() && may).then_some(CALL)
        }
        _ => None,
    };
    match renamed.and_then(|method| tasks_2025::rename(&bytes, method)) {
        Some(renamed) => {
            // The direct path wants the length of what it reads.
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(renamed.len()));
            (renamed, None)
        }
        None => (bytes, None),
    }
}

impl Patch {
    /// `response` with the answer completed: a JSON body whole, an SSE stream event by event
    /// until the answer, then as it comes.
    pub(super) async fn apply(self, response: Response) -> Response {
        let Patch { id, kind } = self;
        match kind {
            Kind::Initialize(capability) => {
                tasks_2025::complete_initialize(response, id, capability).await
            }
            Kind::ToolList(catalog) => {
                tasks_2025::complete_tool_list(response, id, catalog, |catalog, name| {
                    catalog.tool_routes.get(name)?.execution.as_ref()
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use serde_json::json;

    use super::*;

    fn initialize(id: Value) -> Patch {
        Patch {
            id,
            kind: Kind::Initialize(json!({"list": {}})),
        }
    }

    #[tokio::test]
    async fn only_the_answer_event_is_completed_even_split_across_chunks() {
        let before =
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n";
        let answer = "id: 0\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}\n\n";
        let after = "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}\n\n";
        let whole = format!("{before}{answer}{after}");
        let (a, b) = whole.split_at(before.len() + 10);
        let chunks: Vec<Result<Bytes, Infallible>> =
            vec![Ok(Bytes::from(a.to_owned())), Ok(Bytes::from(b.to_owned()))];
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(futures::stream::iter(chunks)))
            .unwrap();
        let response = initialize(json!(7)).apply(response).await;
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3, "{text}");
        assert_eq!(format!("{}\n\n", events[0]), before);
        let data: Value = serde_json::from_str(&events[1]["id: 0\ndata: ".len()..]).unwrap();
        assert_eq!(data["result"]["capabilities"]["tasks"], json!({"list": {}}));
        assert_eq!(format!("{}\n\n", events[2]), after);
    }
}
