//! MCP 2025-11-25 tasks on an upstream: what it supports, the requests whose answers must
//! reach the gateway whole, and its task status notifications.
//!
//! rmcp 3.11 models the later tasks extension (SEP-2663), not these: its types have no
//! `capabilities.tasks`, no `execution` on a tool and no `task` param on `tools/call`, and it
//! parses any answer into a union whose catch-all (an empty result) swallows a
//! `CreateTaskResult`. So the gateway reads what it needs beside rmcp:
//!
//! - the upstream's `capabilities` from the raw SSE event of its `initialize` answer, which the
//!   session's transport shows [`capture`] (an SSE stream is rmcp's default answer, and the
//!   TypeScript and Python SDKs'; of a JSON answer only rmcp's parse is seen);
//! - the `execution` of its tools from a `tools/list` of its own on the direct path, made only
//!   when the upstream declared `tasks` or its `initialize` answer was not seen;
//! - task requests as custom requests on the direct path ([`Upstream::request_raw`]), whose
//!   answers `super::exchange` keeps as raw JSON; a stdio upstream's on its raw lane
//!   (`super::stdio_lane`), which also writes down its `initialize` answer's `capabilities`.

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwapOption;
use rmcp::model::{
    ClientRequest, CustomNotification, CustomRequest, CustomResult, GetMeta, JsonObject, RequestId,
    RequestMetaObject, ServerNotification, ServerResult,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Owner, Session, Upstream, exchange::Exchange, handler::Caller};
use crate::{error::CallError, task_ids};

/// The method of a task status notification.
pub const STATUS_NOTIFICATION: &str = "notifications/tasks/status";

/// Where a session's transport puts the `capabilities` of the upstream's `initialize` answer
/// (`None`: not seen).
pub type Declared = Arc<ArcSwapOption<Value>>;

/// What an upstream offers of tasks, as it was last listed.
#[derive(Debug, Default, PartialEq)]
pub struct TaskSupport {
    /// Its `capabilities.tasks`; inferred as `{"requests": {"tools": {"call": {}}}}` when the
    /// `initialize` answer was not seen but a tool may run as a task.
    pub capability: Option<JsonObject>,
    /// The `execution` of each tool that declares one, by the upstream's name for the tool.
    pub executions: HashMap<String, Value>,
}

impl TaskSupport {
    /// Whether it declares `tasks.<path>` (`["list"]`, `["requests", "tools", "call"]`).
    pub fn declares(&self, path: &[&str]) -> bool {
        let Some(mut at) = self.capability.as_ref() else {
            return false;
        };
        for (i, key) in path.iter().enumerate() {
            match at.get(*key) {
                Some(Value::Object(next)) => at = next,
                Some(_) if i + 1 == path.len() => return true,
                _ => return false,
            }
        }
        true
    }
}

/// Keep the `capabilities` of an `initialize` answer seen as the SSE event `data`.
pub(super) fn capture(data: &str, declared: &Declared) {
    let Ok(message) = serde_json::from_str::<Value>(data) else {
        return;
    };
    if let Some(capabilities) = message.pointer("/result/capabilities")
        && capabilities.is_object()
    {
        declared.store(Some(Arc::new(capabilities.clone())));
    }
}

/// What `session` offers of tasks: its declared capability and the `execution` of its tools
/// (listed raw, page by page, on the direct path).
pub(super) async fn support(session: &Session) -> Result<TaskSupport, String> {
    let declared = session.declared.load_full();
    let mut support = TaskSupport {
        capability: declared
            .as_deref()
            .and_then(|caps| caps.get("tasks"))
            .and_then(Value::as_object)
            .cloned(),
        executions: HashMap::new(),
    };
    let seen = declared.is_some();
    let link = session.direct.link();
    if seen && support.capability.is_none() {
        return Ok(support);
    }
    let mut cursor: Option<String> = None;
    loop {
        let mut params = JsonObject::new();
        if let Some(cursor) = cursor.take() {
            params.insert("cursor".into(), Value::String(cursor));
        }
        let request =
            ClientRequest::CustomRequest(CustomRequest::new("tools/list", Some(params.into())));
        let page = match (&link, &session.lane) {
            (Some(link), _) => {
                let id = RequestId::Number(session.direct.next_id());
                match session
                    .direct
                    .exchange(link, &id, &request, &session.routes)
                    .await
                {
                    Exchange::Answered(Ok(ServerResult::CustomResult(CustomResult(page)))) => page,
                    Exchange::Answered(Err(error)) => {
                        return Err(format!("tools/list failed: {error}"));
                    }
                    Exchange::Failed(why) => return Err(format!("tools/list failed: {why}")),
                    _ => return Ok(support), // re-listed once rmcp has renewed the session
                }
            }
            (None, Some(lane)) => match lane.exchange(request).await {
                Ok(Ok(page)) => page,
                Ok(Err(error)) => return Err(format!("tools/list failed: {error}")),
                Err(why) => return Err(format!("tools/list failed: {why}")),
            },
            (None, None) => return Ok(support), // no way to read a raw answer
        };
        for tool in page["tools"].as_array().into_iter().flatten() {
            if let (Some(name), Some(execution)) = (tool["name"].as_str(), tool.get("execution")) {
                support
                    .executions
                    .insert(name.to_owned(), execution.clone());
            }
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    let calls = support
        .executions
        .values()
        .any(|e| matches!(e["taskSupport"].as_str(), Some("optional" | "required")));
    if !seen && calls {
        let inferred = serde_json::json!({"requests": {"tools": {"call": {}}}});
        support.capability = inferred.as_object().cloned();
    }
    Ok(support)
}

/// A status notification of one of the upstream's tasks, as the client is told it: under
/// the gateway's id for the task.
pub(super) fn status_notice(upstream: &str, params: Option<&Value>) -> Option<ServerNotification> {
    let mut params = params?.clone();
    params.get("taskId")?.as_str()?;
    task_ids::outward(&mut params, &task_ids::tag(upstream));
    Some(ServerNotification::CustomNotification(
        CustomNotification::new(STATUS_NOTIFICATION, Some(params)),
    ))
}

impl Upstream {
    /// What this upstream offers of tasks, as last listed.
    pub fn tasks(&self) -> Arc<TaskSupport> {
        self.tasks.load_full()
    }

    /// Send `method` with `params` and `meta` on `owner`'s session (opened for `caller`'s
    /// client session if need be) as a custom request and return the upstream's answer as it
    /// came (see the module documentation).
    #[tracing::instrument(level = "debug", skip_all, fields(upstream = %self.name, method))]
    pub async fn request_raw(
        &self,
        method: &str,
        params: JsonObject,
        meta: RequestMetaObject,
        owner: &Owner,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<Value, CallError> {
        let mut request = CustomRequest::new(method, Some(params.into()));
        *request.get_meta_mut() = meta;
        // Task requests report no progress through the gateway.
        let caller = caller.map(|caller| Caller {
            progress_token: None,
            ..caller
        });
        match self
            .request(ClientRequest::CustomRequest(request), owner, caller, ct)
            .await?
        {
            ServerResult::CustomResult(CustomResult(answer)) => Ok(answer),
            _ => Err(CallError::Unexpected {
                upstream: self.config.name.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn declared_paths_are_found_and_only_they() {
        let support = TaskSupport {
            capability: json!({"list": {}, "requests": {"tools": {"call": {}}}})
                .as_object()
                .cloned(),
            executions: HashMap::new(),
        };
        assert!(support.declares(&["list"]));
        assert!(support.declares(&["requests", "tools", "call"]));
        assert!(!support.declares(&["cancel"]));
        assert!(!support.declares(&["requests", "sampling"]));
        assert!(!TaskSupport::default().declares(&["list"]));
    }

    #[test]
    fn status_notices_carry_the_gateway_id() {
        let notice = status_notice(
            "code",
            Some(&json!({"taskId": "t1", "status": "completed"})),
        );
        let Some(ServerNotification::CustomNotification(notice)) = notice else {
            panic!("a custom notification");
        };
        assert_eq!(notice.method, STATUS_NOTIFICATION);
        let id = notice.params.as_ref().and_then(|p| p["taskId"].as_str());
        assert_eq!(
            id,
            Some(task_ids::public(&task_ids::tag("code"), "t1").as_str())
        );
        assert!(status_notice("code", Some(&json!({"status": "x"}))).is_none());
    }
}
