//! What the two MCP 2025-11-25 tasks fronts share: the code-executor's (`front.rs`, its own
//! tasks) and the gateway's (`endpoint/tasks.rs`, its upstreams' tasks).
//!
//! rmcp 3.11 models the later tasks *extension* (SEP-2663), not the 2025-11-25 tasks utility:
//! its types have no `capabilities.tasks`, no `execution.taskSupport` on a tool and no `task`
//! param on `tools/call`, and it parses `tasks/get` and `tasks/cancel` as the extension's. So a
//! front looks at each POST of a session on a 2025-era revision ([`applies`], [`Probe`]),
//! renames task requests to custom methods of its own before rmcp reads them ([`rename`]), and
//! completes the two answers rmcp cannot write ([`complete_initialize`],
//! [`complete_tool_list`]). Which tools run as tasks, and under which method names, is each
//! front's own.

use std::borrow::Cow;

use axum::{body::Bytes, response::Response};
use http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::{Value, value::RawValue};

use super::rewrite;

/// The first revision whose tasks are the extension rmcp implements.
const EXTENSION_REVISION: &str = "2026-07-28";

/// Whether a request may concern 2025-11-25 tasks: a POST that names an earlier revision, or
/// none (`initialize` names it in its body, not yet in a header).
pub fn applies(method: &Method, headers: &HeaderMap) -> bool {
    let version = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok());
    method == Method::POST && version.is_none_or(|v| v < EXTENSION_REVISION)
}

/// What a front reads of a POSTed JSON-RPC message: borrowed, nothing else decoded.
#[derive(Deserialize)]
pub struct Probe<'a> {
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(borrow, default)]
    params: Option<ProbeParams<'a>>,
}

#[derive(Deserialize)]
struct ProbeParams<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    task: Option<&'a RawValue>,
}

impl<'a> Probe<'a> {
    /// The message's method, id and the params a front looks at; `None` when it is not a
    /// JSON object (rmcp answers it).
    pub fn read(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// Whether its params hold a `task` object (a call to run as a task).
    pub fn has_task(&self) -> bool {
        let task = self.params.as_ref().and_then(|p| p.task);
        task.is_some_and(|t| t.get().starts_with('{'))
    }

    /// `params.name`: the tool of a `tools/call`.
    pub fn tool(&self) -> Option<&str> {
        self.params.as_ref()?.name.as_deref()
    }
}

/// The same message under `method` (same id, same params); `None` when it does not parse.
pub fn rename(bytes: &[u8], method: &str) -> Option<Bytes> {
    let mut message = serde_json::from_slice::<Value>(bytes).ok()?;
    message["method"] = Value::String(method.to_owned());
    serde_json::to_vec(&message).ok().map(Bytes::from)
}

/// `response` with its answer to the `initialize` request `id` declaring `capability` as
/// `capabilities.tasks`, unless the session it opened is on 2026-07-28 or later (which has
/// rmcp's own tasks extension instead).
pub async fn complete_initialize(response: Response, id: Value, capability: Value) -> Response {
    rewrite::answer(response, move |message| {
        if message.get("id") != Some(&id) {
            return false;
        }
        let Some(result) = message.get_mut("result") else {
            return false;
        };
        let version = result.get("protocolVersion").and_then(Value::as_str);
        if version.is_none_or(|v| v >= EXTENSION_REVISION) {
            return false;
        }
        let Some(capabilities) = result
            .get_mut("capabilities")
            .and_then(Value::as_object_mut)
        else {
            return false;
        };
        capabilities.insert("tasks".into(), capability.clone());
        true
    })
    .await
}

/// `response` with its answer to the `tools/list` request `id` giving each tool the
/// `execution` that `execution(&tools, name)` says (spliced in, see
/// [`rewrite::tool_executions`]).
pub async fn complete_tool_list<T>(
    response: Response,
    id: Value,
    tools: T,
    execution: for<'t> fn(&'t T, &str) -> Option<&'t Value>,
) -> Response
where
    T: Send + 'static,
{
    rewrite::answer_bytes(response, move |message| {
        rewrite::tool_executions(message, &id, |name| execution(&tools, name))
    })
    .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::{HeaderValue, header};
    use serde_json::json;

    use super::*;

    async fn completed(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn json_response(message: &Value) -> Response {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(message.to_string()))
            .expect("a response")
    }

    #[test]
    fn only_posts_of_earlier_revisions_apply() {
        let mut headers = HeaderMap::new();
        assert!(applies(&Method::POST, &headers));
        headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-11-25"),
        );
        assert!(applies(&Method::POST, &headers));
        assert!(!applies(&Method::GET, &headers));
        headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2026-07-28"),
        );
        assert!(!applies(&Method::POST, &headers));
    }

    #[test]
    fn a_probe_reads_the_method_the_tool_and_whether_a_task_is_asked() {
        let call = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"run","arguments":{},"task":{"ttl":60000}}}"#;
        let probe = Probe::read(call).expect("a message");
        assert_eq!(
            (probe.method.as_deref(), probe.id.clone(), probe.tool()),
            (Some("tools/call"), Some(json!(4)), Some("run"))
        );
        assert!(Probe::read(call).is_some_and(|p| p.has_task()));
        let plain = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"run","task":null}}"#;
        assert!(!Probe::read(plain).expect("a message").has_task());
        assert!(Probe::read(b"[1,2]").is_none());

        let renamed = rename(call, "x/call").expect("renamed");
        let renamed: Value = serde_json::from_slice(&renamed).expect("JSON");
        assert_eq!(renamed["method"], "x/call");
        assert_eq!(renamed["params"]["task"]["ttl"], 60000);
        assert_eq!(renamed["id"], 4);
    }

    #[tokio::test]
    async fn initialize_gains_the_capability_on_earlier_revisions_only() {
        let capability = json!({"list": {}, "cancel": {}});
        let answer = |version: &str| {
            json!({"jsonrpc": "2.0", "id": "a", "result": {
                "protocolVersion": version, "capabilities": {"tools": {}},
            }})
        };
        let older = complete_initialize(
            json_response(&answer("2025-11-25")),
            json!("a"),
            capability.clone(),
        )
        .await;
        assert_eq!(
            completed(older).await["result"]["capabilities"]["tasks"],
            capability
        );
        let newer = complete_initialize(
            json_response(&answer("2026-07-28")),
            json!("a"),
            capability.clone(),
        )
        .await;
        assert!(
            completed(newer).await["result"]["capabilities"]
                .get("tasks")
                .is_none()
        );
        let other =
            complete_initialize(json_response(&answer("2025-11-25")), json!("b"), capability).await;
        assert!(
            completed(other).await["result"]["capabilities"]
                .get("tasks")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_tool_list_gains_the_executions_its_front_names() {
        let tasks = json!({"run": {"taskSupport": "optional"}});
        let list = json!({"jsonrpc": "2.0", "id": 9, "result": {"tools": [
            {"name": "run", "inputSchema": {"type": "object"}},
            {"name": "other", "inputSchema": {"type": "object"}},
        ]}});
        let response = complete_tool_list(json_response(&list), json!(9), tasks, |tasks, name| {
            tasks.get(name)
        })
        .await;
        let tools = completed(response).await["result"]["tools"].clone();
        assert_eq!(tools[0]["execution"]["taskSupport"], "optional");
        assert!(tools[1].get("execution").is_none());
    }
}
