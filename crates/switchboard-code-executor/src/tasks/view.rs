//! Reading tasks: `tasks/get`, `tasks/list`, `tasks/result`, expiry, the retry estimate.

use std::time::Duration;

use rmcp::ErrorData;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    Caller, Entry, FIRST_GUESS, State, Tasks, now_ms,
    store::Stored,
    wire::{self, Status, Task},
};

/// When an ended task is deleted: `ttl` after its creation, or, if it was still running
/// then, `ttl` after it ended. A live task never is.
pub(super) fn expired(stored: &Stored, now: u64) -> bool {
    let (Some(ttl), Some(finished)) = (stored.task.ttl, stored.finished_ms) else {
        return false;
    };
    let by_creation = stored.created_ms.saturating_add(ttl);
    let deadline = if finished <= by_creation {
        by_creation
    } else {
        finished.saturating_add(ttl)
    };
    stored.task.status.is_terminal() && now >= deadline
}

/// The caller's task `id`, if it has not expired; anything else is "not found".
pub(super) fn owned<'a>(
    state: &'a State,
    caller: &Caller,
    id: &str,
) -> Result<&'a Entry, ErrorData> {
    state
        .tasks
        .get(id)
        .filter(|e| e.stored.owner == caller.0 && !expired(&e.stored, now_ms()))
        .ok_or_else(|| wire::not_found(id))
}

/// Whole seconds until a place in the queue is likely to free up: the soonest expected end of
/// a running task, by the mean duration of recent tasks (at least 1 s).
pub(super) fn retry_after(state: &State) -> u64 {
    let mean = if state.recent.is_empty() {
        FIRST_GUESS
    } else {
        state.recent.iter().sum::<Duration>() / state.recent.len() as u32
    };
    let soonest = state
        .tasks
        .values()
        .filter_map(|e| e.live.as_ref()?.running_since)
        .map(|since| mean.saturating_sub(since.elapsed()))
        .min()
        .unwrap_or(mean);
    (soonest.as_secs_f64().ceil() as u64).clamp(1, 3600)
}

impl Tasks {
    /// `tasks/get`.
    pub fn get(&self, caller: &Caller, id: &str) -> Result<Task, ErrorData> {
        let state = self.state();
        Ok(owned(&state, caller, id)?.stored.task.clone())
    }

    /// `tasks/list`: the caller's tasks, oldest first, a page at a time.
    pub fn list(&self, caller: &Caller, cursor: Option<&str>) -> Result<Value, ErrorData> {
        let after = cursor.map(wire::parse_cursor).transpose()?;
        let now = now_ms();
        let state = self.state();
        let mut mine: Vec<&Stored> = state
            .tasks
            .values()
            .map(|e| &e.stored)
            .filter(|s| s.owner == caller.0 && !expired(s, now))
            .filter(|s| {
                after.as_ref().is_none_or(|(ms, id)| {
                    (s.created_ms, s.task.task_id.as_str()) > (*ms, id.as_str())
                })
            })
            .collect();
        mine.sort_by(|a, b| (a.created_ms, &a.task.task_id).cmp(&(b.created_ms, &b.task.task_id)));
        let page = self.inner.settings.page_size.max(1);
        let next = (mine.len() > page).then(|| {
            let last = mine[page - 1];
            wire::cursor(last.created_ms, &last.task.task_id)
        });
        let tasks: Vec<Task> = mine.iter().take(page).map(|s| s.task.clone()).collect();
        Ok(wire::list_result(&tasks, next))
    }

    /// `tasks/result`: waits for the end (or `cancelled`: the request was withdrawn), then
    /// gives exactly what the call would have: its `CallToolResult` with the `related-task`
    /// metadata, or, for a cancelled task, a JSON-RPC error.
    pub async fn result(
        &self,
        caller: &Caller,
        id: &str,
        cancelled: &CancellationToken,
    ) -> Result<Value, ErrorData> {
        let mut done = {
            let state = self.state();
            owned(&state, caller, id)?.done.subscribe()
        };
        tokio::select! {
            _ = done.wait_for(|ended| *ended) => {}
            () = cancelled.cancelled() => {
                return Err(ErrorData::internal_error("tasks/result was cancelled", None));
            }
            () = self.inner.shutdown.cancelled() => {
                return Err(ErrorData::internal_error(
                    "the code-executor is stopping; ask again after it restarts",
                    None,
                ));
            }
        }
        let (task, unsaved) = {
            let state = self.state();
            let entry = owned(&state, caller, id)?;
            (entry.stored.task.clone(), entry.unsaved.clone())
        };
        if task.status == Status::Cancelled {
            return Err(wire::cancelled(&task));
        }
        let result = match unsaved {
            Some(result) => Some(result),
            None => {
                let store = self.inner.store.clone();
                let key = id.to_owned();
                tokio::task::spawn_blocking(move || store.read(&key))
                    .await
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
                    .map_err(|e| {
                        ErrorData::internal_error(format!("reading the task's result: {e}"), None)
                    })?
                    .and_then(|stored| stored.result)
            }
        };
        let result = result.ok_or_else(|| wire::not_found(id))?;
        Ok(wire::with_related_task(result, id))
    }

    /// Delete the tasks whose time is up, from memory and disk.
    pub(super) async fn sweep(&self) {
        let now = now_ms();
        let expired: Vec<String> = {
            let mut state = self.state();
            let ids: Vec<String> = state
                .tasks
                .iter()
                .filter(|(_, e)| e.live.is_none() && expired(&e.stored, now))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                state.tasks.remove(id);
            }
            ids
        };
        if expired.is_empty() {
            return;
        }
        let store = self.inner.store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in &expired {
                match store.remove(id) {
                    Ok(()) => tracing::debug!(task = %id, "expired task deleted"),
                    Err(error) => {
                        tracing::warn!(task = %id, %error, "cannot delete an expired task's file")
                    }
                }
            }
        })
        .await;
    }
}
