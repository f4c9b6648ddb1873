//! A tool call run as an MCP task (2025-11-25 tasks, which the gateway federates): the call
//! answers at once with a task, the task's status is polled while it runs, and its result is
//! fetched when it ends.
//!
//! Used for the code tools while someone watches the chat (a streaming request), so that a
//! long execution shows its progress instead of a bare spinner. The sequence:
//!
//! 1. `tools/call` with `task: {ttl}`. The answer is `{task: {taskId, pollInterval, ...}}`;
//!    a plain `CallToolResult` (the tool ran as an ordinary call) is taken as it is.
//! 2. At once `tasks/result`, which the server answers when the task has ended; meanwhile
//!    `tasks/get` every `pollInterval` (clamped to [`MIN_POLL`]..[`MAX_POLL`]) reports the
//!    status to `progress`. A short execution therefore costs one round trip more than a
//!    plain call, and no poll. When `tasks/result` fails while the task still runs (the
//!    gateway bounds each request by its call timeout), it is asked again.
//! 3. Past `timeout`, or when the chat is dropped (the client went away), `tasks/cancel`.
//!
//! rmcp 3.11 models the later tasks extension (2026-07-28), not these: the requests go as
//! custom requests with the 2025-11-25 wire shape, and answers are read back as JSON.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rmcp::{
    RoleClient,
    model::{CallToolResult, ClientRequest, CustomRequest, JsonObject, ServerResult},
    service::{Peer, ServiceError},
};
use serde_json::{Value, json};

use super::{Gateway, GatewayError, User};

/// Fastest status polling, whatever the server suggests.
const MIN_POLL: Duration = Duration::from_millis(500);
/// Slowest status polling: the chat shows a sign of life at least this often.
const MAX_POLL: Duration = Duration::from_secs(5);
/// How long a task is kept after the call's own timeout, for `tasks/result` to find it.
const TTL_MARGIN: Duration = Duration::from_secs(60);
/// Longest wait for a `tasks/get` or `tasks/cancel` answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// A task's state as `tasks/get` reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskProgress {
    pub task_id: String,
    /// `working`, `input_required`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub message: Option<String>,
    /// Since the call was made.
    pub elapsed: Duration,
}

impl TaskProgress {
    /// What a `Task` (as `tools/call` or `tasks/get` answered it) says, `started` ago.
    fn of(task_id: &str, task: &Value, started: Instant) -> Self {
        Self {
            task_id: task_id.to_owned(),
            status: task
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("working")
                .to_owned(),
            message: task
                .get("statusMessage")
                .and_then(Value::as_str)
                .map(str::to_owned),
            elapsed: started.elapsed(),
        }
    }
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// The JSON of an answer, whatever variant rmcp's untagged `ServerResult` chose for it.
fn answer_json(result: ServerResult) -> Value {
    match result {
        ServerResult::CustomResult(custom) => custom.0,
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

/// A `CallToolResult` out of an answer, or why it is none.
fn call_result(result: ServerResult) -> Result<CallToolResult, GatewayError> {
    match result {
        ServerResult::CallToolResult(result) => Ok(result),
        other => {
            let value = answer_json(other);
            serde_json::from_value(value.clone()).map_err(|e| {
                GatewayError::Refused(format!(
                    "the gateway's answer is no tool result ({e}): {value}"
                ))
            })
        }
    }
}

/// Cancels the task when dropped before [`Cancel::disarm`]: the chat ended (timeout, client
/// gone) while it ran. The cancellation is sent from a task of its own, as drop cannot wait.
struct Cancel {
    peer: Option<Peer<RoleClient>>,
    task_id: String,
    meta: Value,
}

impl Cancel {
    fn disarm(mut self) {
        self.peer = None;
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        let Some(peer) = self.peer.take() else {
            return;
        };
        let task_id = std::mem::take(&mut self.task_id);
        let meta = self.meta.take();
        // Outside a runtime (the process is going away) there is nobody to send it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let request = task_request("tasks/cancel", &task_id, &meta);
            match tokio::time::timeout(STATUS_TIMEOUT, peer.send_request(request)).await {
                Ok(Ok(_)) => tracing::info!(task = %task_id, "task cancelled"),
                Ok(Err(error)) => {
                    tracing::warn!(task = %task_id, %error, "the task could not be cancelled")
                }
                Err(_) => tracing::warn!(task = %task_id, "no answer to the task's cancellation"),
            }
        });
    }
}

fn custom(method: &str, params: Value) -> ClientRequest {
    ClientRequest::CustomRequest(CustomRequest::new(method, Some(params)))
}

/// `tasks/get`, `tasks/result` or `tasks/cancel` of `task_id`, with the call's `_meta`: the
/// task belongs to the user the call named, so its requests name that user too (and join the
/// same trace).
fn task_request(method: &str, task_id: &str, meta: &Value) -> ClientRequest {
    let mut params = json!({ "taskId": task_id });
    if !meta.is_null() {
        params["_meta"] = meta.clone();
    }
    custom(method, params)
}

impl Gateway {
    /// Call `name` as a task (see the module's notes), reporting its status to `progress`
    /// while it runs; at most `timeout` in all, then the task is cancelled. Errors as
    /// [`Gateway::call_tool`]'s.
    pub async fn call_tool_as_task(
        &self,
        name: &str,
        arguments: JsonObject,
        timeout: Duration,
        user: User<'_>,
        progress: impl Fn(TaskProgress) + Send,
    ) -> Result<CallToolResult, GatewayError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let client = self.session().await?;
        let peer = client.peer().clone();
        // The params of a plain call (trace context and user in `_meta`), plus the task.
        let mut params = serde_json::to_value(super::call_params(name, arguments, user))
            .map_err(|e| GatewayError::Refused(format!("cannot encode the call: {e}")))?;
        params["task"] = json!({ "ttl": (timeout + TTL_MARGIN).as_millis() as u64 });
        let meta = params.get("_meta").cloned().unwrap_or(Value::Null);
        let created = match tokio::time::timeout_at(
            deadline,
            peer.send_request(custom("tools/call", params)),
        )
        .await
        {
            Ok(Ok(answer)) => answer_json(answer),
            Ok(Err(error)) => return Err(self.failed(&client, error).await),
            Err(_) => return Err(self.timed_out(timeout)),
        };
        let Some(task) = created.get("task") else {
            // Run as a plain call (a server may decline the task).
            return serde_json::from_value(created.clone()).map_err(|e| {
                GatewayError::Refused(format!(
                    "the gateway's answer is neither a task nor a tool result ({e}): {created}"
                ))
            });
        };
        let task_id = task
            .get("taskId")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                GatewayError::Refused(format!("the gateway's task has no taskId: {created}"))
            })?
            .to_owned();
        let mut poll = poll_interval(task);
        let cancel = Cancel {
            peer: Some(peer.clone()),
            task_id: task_id.clone(),
            meta: meta.clone(),
        };
        progress(TaskProgress::of(&task_id, task, started));

        let result_request = || -> BoxFuture<'_, Result<ServerResult, ServiceError>> {
            Box::pin(peer.send_request(task_request("tasks/result", &task_id, &meta)))
        };
        let mut result = result_request();
        let mut next_poll = tokio::time::Instant::now() + poll;
        let mut ended = false;
        loop {
            tokio::select! {
                answer = &mut result => match answer {
                    Ok(answer) => {
                        cancel.disarm();
                        return call_result(answer);
                    }
                    Err(ServiceError::McpError(error)) if !ended => {
                        // E.g. the gateway's own call timeout cut a long wait: ask again once
                        // the status says it ended (or at the next poll).
                        tracing::debug!(task = %task_id, %error.message, "tasks/result failed while the task runs");
                        let again = result_request();
                        let at = next_poll;
                        result = Box::pin(async move {
                            tokio::time::sleep_until(at).await;
                            again.await
                        });
                    }
                    Err(error) => return Err(self.failed(&client, error).await),
                },
                () = tokio::time::sleep_until(next_poll) => {
                    let get = peer.send_request(task_request("tasks/get", &task_id, &meta));
                    match tokio::time::timeout(STATUS_TIMEOUT, get).await {
                        Ok(Ok(answer)) => {
                            let task = answer_json(answer);
                            let now = TaskProgress::of(&task_id, &task, started);
                            ended = is_terminal(&now.status);
                            poll = poll_interval(&task);
                            progress(now);
                        }
                        // The gateway or the code-executor refuses the task (unknown, not this
                        // user's): asking again would not change that.
                        Ok(Err(error @ ServiceError::McpError(_))) => {
                            return Err(self.failed(&client, error).await);
                        }
                        Ok(Err(error)) => tracing::debug!(task = %task_id, %error, "tasks/get failed"),
                        Err(_) => tracing::debug!(task = %task_id, "no answer to tasks/get"),
                    }
                    next_poll = tokio::time::Instant::now() + poll;
                }
                () = tokio::time::sleep_until(deadline) => {
                    // `cancel` is dropped on return: the task is cancelled.
                    return Err(self.timed_out(timeout));
                }
            }
        }
    }
}

/// The server's suggested polling interval, clamped.
fn poll_interval(task: &Value) -> Duration {
    task.get("pollInterval")
        .and_then(Value::as_u64)
        .map_or(Duration::from_secs(1), Duration::from_millis)
        .clamp(MIN_POLL, MAX_POLL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_follows_the_server_within_bounds() {
        assert_eq!(
            poll_interval(&json!({"pollInterval": 2000})),
            Duration::from_secs(2)
        );
        assert_eq!(poll_interval(&json!({"pollInterval": 1})), MIN_POLL);
        assert_eq!(poll_interval(&json!({"pollInterval": 600_000})), MAX_POLL);
        assert_eq!(poll_interval(&json!({})), Duration::from_secs(1));
    }

    #[test]
    fn a_result_is_read_from_any_answer_variant() {
        let custom = ServerResult::CustomResult(rmcp::model::CustomResult(json!({
            "content": [{"type": "text", "text": "42"}],
            "isError": false,
        })));
        let result = call_result(custom).expect("a tool result");
        assert_eq!(result.is_error, Some(false));
        let bad = ServerResult::CustomResult(rmcp::model::CustomResult(json!({"tasks": []})));
        assert!(call_result(bad).is_err());
    }
}
