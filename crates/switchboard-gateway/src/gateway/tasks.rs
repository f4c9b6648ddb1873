//! MCP 2025-11-25 tasks through the gateway: a task-augmented `tools/call` goes to the tool's
//! upstream with its `task`; `tasks/get`, `tasks/result` and `tasks/cancel` go to the upstream
//! the task id names ([`crate::task_ids`]); `tasks/list` merges the lists of the upstreams that
//! list tasks. Every request goes on the caller's own upstream session, as its tool calls do,
//! naming the caller in `_meta` (see `calls::name_the_caller`): an upstream that keeps tasks per
//! caller (the code-executor) shows each caller only its own. On an upstream that does not
//! keep clients apart (stdio, stateless, `shared_session`) the gateway does it
//! (`crate::upstream::task_owners`).
//!
//! The policy: a task-augmented call is admitted like any call (`Gateway::admit_call`, by the
//! caller of `crate::server`); the other requests reach an upstream only for a caller allowed
//! to call one of its tools that may run as a task.

use std::sync::Arc;

use futures::future::join_all;
use rmcp::{
    ErrorData as McpError,
    model::{CallToolRequestParams, JsonObject, RequestMetaObject},
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::Gateway;
use crate::{
    error::CallError,
    policy::Permissions,
    task_ids,
    upstream::{Owner, Upstream, handler::Caller},
};

/// Who asks a `tasks/*` request, and on whose upstream sessions it goes.
pub struct Asker<'a> {
    /// The request's `_meta`, the caller named in it (`super::name_in`).
    pub meta: RequestMetaObject,
    /// What the caller may use (`None`: no policy).
    pub permissions: Option<&'a Permissions>,
    pub owner: &'a Owner,
    /// The client session asking (an upstream session may have to be opened for it).
    pub caller: Caller,
    pub ct: &'a CancellationToken,
}

/// The `tasks` capability of the gateway: the union of its upstreams' (known ones, down or
/// not, so the ids of their tasks stay routable), limited to what the gateway routes.
pub(crate) fn capability(upstreams: &[Arc<Upstream>]) -> Option<Value> {
    let mut declared = Map::new();
    for upstream in upstreams {
        let tasks = upstream.tasks();
        if tasks.declares(&["requests", "tools", "call"]) {
            declared.insert("requests".into(), json!({"tools": {"call": {}}}));
        }
        for what in ["list", "cancel"] {
            if tasks.declares(&[what]) {
                declared.insert(what.into(), json!({}));
            }
        }
    }
    (!declared.is_empty()).then_some(Value::Object(declared))
}

/// Whether a tool's `execution` lets it run as a task.
pub fn runs_as_task(execution: Option<&Value>) -> bool {
    matches!(
        execution.and_then(|e| e["taskSupport"].as_str()),
        Some("optional" | "required")
    )
}

/// The `_meta` that goes upstream: the client's, without its progress token (task requests
/// report no progress through the gateway).
fn upstream_meta(mut meta: RequestMetaObject) -> RequestMetaObject {
    meta.0.0.remove("progressToken");
    meta
}

impl Gateway {
    /// Whether `permissions` let the caller manage tasks on upstream number `upstream`: it
    /// may call one of that upstream's tools that may run as a task.
    fn may_use_tasks(
        &self,
        permissions: Option<&Permissions>,
        owner: &Owner,
        upstream: usize,
    ) -> bool {
        let Some(permissions) = permissions else {
            return true;
        };
        let name = &self.inner.upstreams[upstream].config.name;
        self.catalog_for(owner)
            .tool_routes
            .iter()
            .any(|(tool, route)| {
                route.upstream == upstream
                    && runs_as_task(route.execution.as_ref())
                    && permissions.allows(tool, name)
            })
    }

    /// The upstream of gateway task id `id` and its id there; -32602 for an id this gateway
    /// did not hand out.
    fn task_upstream<'a>(&self, id: &'a str) -> Result<(usize, &'a str), McpError> {
        task_ids::split(id)
            .and_then(|(tag, upstream_id)| {
                let index = self.upstream_tagged(tag)?;
                Some((index, upstream_id))
            })
            .ok_or_else(|| {
                McpError::invalid_params(
                    format!("unknown task '{id}': not a task id this gateway handed out"),
                    None,
                )
            })
    }

    fn upstream_tagged(&self, tag: &str) -> Option<usize> {
        self.inner.upstreams.iter().position(|u| u.task_tag == tag)
    }

    /// Start `call` — admitted, its caller named in its `_meta` — as a task (`task`: the
    /// client's `params.task`) on the tool's upstream; the upstream's `CreateTaskResult`
    /// under the gateway's task id.
    pub async fn call_as_task(
        &self,
        mut call: CallToolRequestParams,
        task: Value,
        owner: &Owner,
        caller: Caller,
        ct: &CancellationToken,
    ) -> Result<Value, CallError> {
        let start = std::time::Instant::now();
        let catalog = self.catalog_for(owner);
        let Some(route) = catalog.tool_routes.get(call.name.as_ref()) else {
            return Err(CallError::Unknown {
                kind: "tool",
                name: call.name.into_owned(),
                list: "tools/list",
            });
        };
        let upstream = &self.inner.upstreams[route.upstream];
        call.name = route.original.clone();
        let meta = upstream_meta(call.meta.take().unwrap_or_default());
        let Ok(Value::Object(mut params)) = serde_json::to_value(&call) else {
            return Err(CallError::Unexpected {
                upstream: upstream.config.name.clone(),
            });
        };
        params.insert("task".into(), task);
        let answer = upstream
            .request_raw("tools/call", params, meta, owner, Some(caller), ct)
            .await
            .map(|mut answer| {
                upstream.started_task(&answer, owner);
                task_ids::outward(&mut answer, &upstream.task_tag);
                answer
            });
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        route.metrics.record(outcome, start.elapsed().as_secs_f64());
        answer
    }

    /// `tasks/get`, `tasks/result` or `tasks/cancel` (`method`) of the task `params.taskId`,
    /// on its upstream, for `asker`.
    pub async fn task_request(
        &self,
        method: &str,
        mut params: JsonObject,
        asker: Asker<'_>,
    ) -> Result<Value, McpError> {
        let Asker {
            meta,
            permissions,
            owner,
            caller,
            ct,
        } = asker;
        let Some(Value::String(id)) = params.get("taskId") else {
            return Err(McpError::invalid_params(
                format!("{method} needs params.taskId, a task id this gateway handed out"),
                None,
            ));
        };
        let (index, upstream_id) = self.task_upstream(id)?;
        if !self.may_use_tasks(permissions, owner, index) {
            return Err(McpError::invalid_params(
                format!("permission denied: this caller may not use task '{id}'"),
                None,
            ));
        }
        let upstream = &self.inner.upstreams[index];
        if !upstream.shows_task(upstream_id, owner) {
            // Another client's task on an upstream that does not keep clients apart.
            return Err(McpError::invalid_params(
                format!("unknown task '{id}'"),
                None,
            ));
        }
        let upstream_id = upstream_id.to_owned();
        params.insert("taskId".into(), Value::String(upstream_id));
        let tag = &upstream.task_tag;
        let mut answer = upstream
            .request_raw(method, params, upstream_meta(meta), owner, Some(caller), ct)
            .await
            .map_err(|error| outward_error(error, tag))?;
        task_ids::outward(&mut answer, tag);
        Ok(answer)
    }

    /// `tasks/list`: one page of every upstream that lists tasks (and that the caller may
    /// use), in upstream order; the cursor carries, per upstream with more, its own cursor.
    /// An upstream that cannot answer now is left out of the page, with a warning logged.
    pub async fn list_tasks(
        &self,
        cursor: Option<&str>,
        asker: Asker<'_>,
    ) -> Result<Value, McpError> {
        let Asker {
            meta,
            permissions,
            owner,
            caller,
            ct,
        } = asker;
        let cursors = match cursor {
            None => None,
            Some(cursor) => Some(task_ids::parse_cursor(cursor).ok_or_else(|| {
                McpError::invalid_params(format!("invalid cursor '{cursor}'"), None)
            })?),
        };
        let mut asked: Vec<(usize, Option<String>)> = Vec::new();
        match &cursors {
            None => {
                for (index, upstream) in self.inner.upstreams.iter().enumerate() {
                    if upstream.tasks().declares(&["list"]) {
                        asked.push((index, None));
                    }
                }
            }
            Some(cursors) => {
                for (tag, next) in cursors {
                    let index = self.upstream_tagged(tag).ok_or_else(|| {
                        McpError::invalid_params(
                            format!("invalid cursor: unknown upstream tag '{tag}'"),
                            None,
                        )
                    })?;
                    asked.push((index, next.as_str().map(str::to_owned)));
                }
                asked.sort_by_key(|(index, _)| *index);
            }
        }
        asked.retain(|(index, _)| self.may_use_tasks(permissions, owner, *index));
        let meta = upstream_meta(meta);
        let pages = join_all(asked.iter().map(|(index, next)| {
            let mut params = JsonObject::new();
            if let Some(next) = next {
                params.insert("cursor".into(), Value::String(next.clone()));
            }
            self.inner.upstreams[*index].request_raw(
                "tasks/list",
                params,
                meta.clone(),
                owner,
                Some(caller.clone()),
                ct,
            )
        }))
        .await;
        let (mut tasks, mut more) = (Vec::new(), Map::new());
        for ((index, _), page) in asked.iter().zip(pages) {
            let upstream = &self.inner.upstreams[*index];
            let tag = &upstream.task_tag;
            let mut page = match page {
                Ok(page) => page,
                Err(CallError::Upstream { error, .. }) => {
                    return Err(outward_error(
                        CallError::Upstream {
                            upstream: upstream.config.name.clone(),
                            error,
                        },
                        tag,
                    ));
                }
                Err(error) => {
                    tracing::warn!(upstream = %upstream.name, %error, "tasks/list: an upstream's tasks left out");
                    continue;
                }
            };
            if let Some(Value::Array(listed)) = page.get_mut("tasks") {
                listed.retain(|task| {
                    task["taskId"]
                        .as_str()
                        .is_some_and(|id| upstream.shows_task(id, owner))
                });
            }
            task_ids::outward(&mut page, tag);
            if let Some(Value::Array(listed)) = page.get_mut("tasks").map(Value::take) {
                tasks.extend(listed);
            }
            if let Some(next) = page.get("nextCursor").and_then(Value::as_str) {
                more.insert(tag.clone(), Value::String(next.to_owned()));
            }
        }
        let mut result = json!({ "tasks": tasks });
        if !more.is_empty() {
            result["nextCursor"] = Value::String(task_ids::cursor(&more));
        }
        Ok(result)
    }
}

/// An upstream's error as the client sees it: the task ids in its data under the gateway's.
fn outward_error(error: CallError, tag: &str) -> McpError {
    match error {
        CallError::Upstream { mut error, .. } => {
            if let Some(data) = error.data.as_mut() {
                task_ids::outward(data, tag);
            }
            error
        }
        other => other.to_mcp(),
    }
}
