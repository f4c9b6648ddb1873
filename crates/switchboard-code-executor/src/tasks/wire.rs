//! What tasks look like on the wire (MCP 2025-11-25, `schema.ts`: `Task`, `CreateTaskResult`,
//! `ListTasksResult`, the `related-task` metadata) and the errors the spec names.

use rmcp::{ErrorData, model::ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `tools/call` with a `task` param, as the HTTP front renames it so that rmcp (which models
/// the later tasks extension, not these) hands it to the handler whole.
pub const CALL_METHOD: &str = "io.switchboard/tasks/call";
/// `tasks/get`, renamed by the front (rmcp would parse it as the extension's `tasks/get`).
pub const GET_METHOD: &str = "io.switchboard/tasks/get";
/// `tasks/cancel`, renamed by the front (likewise).
pub const CANCEL_METHOD: &str = "io.switchboard/tasks/cancel";
/// Reach the handler under their own names.
pub const RESULT_METHOD: &str = "tasks/result";
pub const LIST_METHOD: &str = "tasks/list";
/// Sent to the session that created a task when it ends.
pub const STATUS_NOTIFICATION: &str = "notifications/tasks/status";
/// `_meta` key tying a `tasks/result` answer to its task.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// `TaskStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// `Task`: what `tasks/get`, `tasks/cancel`, `tasks/list` and the status notification carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub created_at: String,
    pub last_updated_at: String,
    /// Milliseconds from creation it is kept; always present (`null` would be unlimited,
    /// which is never granted here).
    pub ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<u64>,
}

/// `CreateTaskResult`: the answer to a task-augmented `tools/call`.
pub fn create_result(task: &Task) -> Value {
    json!({ "task": task })
}

/// `ListTasksResult`.
pub fn list_result(tasks: &[Task], next_cursor: Option<String>) -> Value {
    let mut result = json!({ "tasks": tasks });
    if let Some(cursor) = next_cursor {
        result["nextCursor"] = Value::String(cursor);
    }
    result
}

/// The stored `CallToolResult` with the `related-task` metadata `tasks/result` must carry.
pub fn with_related_task(mut result: Value, task_id: &str) -> Value {
    if let Value::Object(map) = &mut result {
        let meta = map
            .entry("_meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(meta) = meta {
            meta.insert(RELATED_TASK.to_owned(), json!({ "taskId": task_id }));
        }
    }
    result
}

/// A `tasks/list` cursor: the position after the last task listed, by creation time then id.
/// Opaque to clients; one that does not parse is invalid params.
pub fn cursor(created_ms: u64, task_id: &str) -> String {
    format!("{created_ms}:{task_id}")
}

pub fn parse_cursor(cursor: &str) -> Result<(u64, String), ErrorData> {
    let invalid = || ErrorData::invalid_params(format!("Invalid cursor '{cursor}'"), None);
    let (ms, id) = cursor.split_once(':').ok_or_else(invalid)?;
    let ms = ms.parse().map_err(|_| invalid())?;
    uuid::Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((ms, id.to_owned()))
}

/// Unknown, expired and other callers' tasks all look the same: -32602.
pub fn not_found(task_id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "Failed to retrieve task: task '{task_id}' not found (unknown, expired, or not yours)"
        ),
        None,
    )
}

pub fn already_terminal(status: Status) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "Cannot cancel task: already in terminal status '{}'",
            status.as_str()
        ),
        None,
    )
}

/// A `tasks/result` for a cancelled task: the request has no result to give.
pub fn cancelled(task: &Task) -> ErrorData {
    ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        format!(
            "Task {} was cancelled: {}",
            task.task_id,
            task.status_message.as_deref().unwrap_or("no result")
        ),
        Some(json!({
            "taskId": task.task_id,
            "status": task.status,
            RELATED_TASK: { "taskId": task.task_id },
        })),
    )
}

/// A server-defined JSON-RPC error (-32000): the queue is full.
pub fn queue_full(live: usize, max: usize, retry_after_seconds: u64) -> ErrorData {
    ErrorData::new(
        ErrorCode(-32000),
        format!(
            "queue full: {live} tasks running or waiting (at most {max}); retry after {retry_after_seconds} s"
        ),
        Some(json!({
            "reason": "queue_full",
            "retryAfterSeconds": retry_after_seconds,
            "maxTasks": max,
        })),
    )
}

/// The param `params.task` of a task-augmented request: `{ "ttl"?: number | null }`.
#[derive(Debug, Default, Deserialize)]
pub struct TaskParams {
    /// Absent: the default; `null`: unlimited asked (the maximum is granted).
    #[serde(default, deserialize_with = "present")]
    pub ttl: Option<Option<f64>>,
}

/// Tells `"ttl": null` (Some(None)) from no `ttl` (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_shape_matches_the_schema() {
        let task = Task {
            task_id: "t".into(),
            status: Status::InputRequired,
            status_message: None,
            created_at: "2025-11-25T10:30:00Z".into(),
            last_updated_at: "2025-11-25T10:30:00Z".into(),
            ttl: Some(60_000),
            poll_interval: Some(1000),
        };
        let value = serde_json::to_value(&task).expect("serializes");
        assert_eq!(value["status"], "input_required");
        assert_eq!(value["ttl"], 60_000);
        assert_eq!(value["pollInterval"], 1000);
        assert!(value.get("statusMessage").is_none());
        assert_eq!(create_result(&task)["task"]["taskId"], "t");
        let related = with_related_task(json!({"content": []}), "t");
        assert_eq!(related["_meta"][RELATED_TASK]["taskId"], "t");
    }

    #[test]
    fn ttl_absent_null_or_a_number() {
        let absent: TaskParams = serde_json::from_value(json!({})).expect("absent");
        assert_eq!(absent.ttl, None);
        let null: TaskParams = serde_json::from_value(json!({"ttl": null})).expect("null");
        assert_eq!(null.ttl, Some(None));
        let n: TaskParams = serde_json::from_value(json!({"ttl": 5000})).expect("number");
        assert_eq!(n.ttl, Some(Some(5000.0)));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_invalid() {
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(parse_cursor(&cursor(42, &id)).expect("ours"), (42, id));
        for bad in ["", "x", "1:not-a-uuid", ":"] {
            let error = parse_cursor(bad).expect_err(bad);
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
        }
    }
}
