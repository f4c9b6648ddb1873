//! How a task ends: its runner's result or a cancel (whichever claims it first), written to
//! the state directory before it is visible, then told to the session that created it.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer,
    model::{CallToolResult, CustomNotification, ServerNotification},
    service::Peer,
};

use super::{
    Caller, Ending, RECENT, Tasks, iso, now_ms,
    store::Stored,
    summary, view,
    wire::{self, Status, Task},
};

impl Tasks {
    /// Claim the end of a live task (once: a cancel and the runner may race); its record.
    fn claim_end(&self, id: &str, took: Option<Duration>) -> Option<Stored> {
        let mut state = self.state();
        let entry = state.tasks.get_mut(id)?;
        let live = entry.live.as_mut().filter(|l| !l.ending)?;
        live.ending = true;
        let stored = entry.stored.clone();
        if let Some(took) = took {
            state.recent.push_back(took);
            if state.recent.len() > RECENT {
                state.recent.pop_front();
            }
        }
        Some(stored)
    }

    /// The runner's end: the tool's result, unless a cancel got there first.
    pub(super) async fn end(&self, id: &str, result: CallToolResult, took: Duration) {
        if let Some(stored) = self.claim_end(id, Some(took)) {
            self.finish(id, stored, Ending::Result(result)).await;
        }
    }

    /// Write a claimed end, then make it visible and tell the task's session.
    async fn finish(&self, id: &str, mut stored: Stored, ending: Ending) -> Task {
        let now = now_ms();
        let outcome = match &ending {
            Ending::Result(result) => {
                stored.task.status = if result.is_error == Some(true) {
                    Status::Failed
                } else {
                    Status::Completed
                };
                stored.task.status_message = summary(result);
                stored.result = serde_json::to_value(result).ok();
                stored.task.status.as_str()
            }
            Ending::Cancelled { ran } => {
                stored.task.status = Status::Cancelled;
                stored.task.status_message = Some(
                    match (*ran, stored.tool.as_str()) {
                        (false, _) => "Cancelled before it started: nothing was run.",
                        (true, "install_package") => {
                            "Cancelled while running: the request to the sandbox was dropped; the sandbox stops the install when it notices, so it may be done, partly done or not done (the sandbox's installed packages say)."
                        }
                        (true, _) => {
                            "Cancelled while running: the request to the sandbox was dropped, and the sandbox kills a program whose caller went away."
                        }
                    }
                    .into(),
                );
                "cancelled"
            }
        };
        stored.task.last_updated_at = iso(now);
        stored.finished_ms = Some(now);
        let unsaved = match self.save(stored.clone()).await {
            Ok(()) => None,
            Err(error) => {
                tracing::error!(task = %id, %error, "cannot write the task's end; its result is kept in memory only");
                stored.result.clone()
            }
        };
        stored.result = None;
        let peer = {
            let mut state = self.state();
            let peer = state.tasks.get_mut(id).and_then(|entry| {
                entry.stored = stored.clone();
                entry.unsaved = unsaved;
                entry.done.send_replace(true);
                entry.live.take().and_then(|l| l.peer)
            });
            self.inner.metrics.observe(&state);
            peer
        };
        self.inner.metrics.ended(outcome);
        tracing::info!(task = %id, status = outcome, "task ended");
        notify(peer, &stored.task);
        stored.task
    }

    /// `tasks/cancel`: the task is `cancelled` when this returns.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<Task, ErrorData> {
        let claimed = {
            let mut state = self.state();
            view::owned(&state, caller, id)?;
            let entry = state.tasks.get_mut(id).ok_or_else(|| wire::not_found(id))?;
            match entry.live.as_mut() {
                None => return Err(wire::already_terminal(entry.stored.task.status)),
                Some(live) if !live.ending => {
                    live.ending = true;
                    live.cancel.cancel();
                    Ok((entry.stored.clone(), live.running_since.is_some()))
                }
                // The runner is writing its end: answer with what it ends as.
                Some(_) => Err(entry.done.subscribe()),
            }
        };
        match claimed {
            Ok((stored, ran)) => Ok(self.finish(id, stored, Ending::Cancelled { ran }).await),
            Err(mut done) => {
                let _ = done.wait_for(|ended| *ended).await;
                let state = self.state();
                let entry = view::owned(&state, caller, id)?;
                Err(wire::already_terminal(entry.stored.task.status))
            }
        }
    }
}

/// `notifications/tasks/status` to the session that created the task, if it still listens.
fn notify(peer: Option<Peer<RoleServer>>, task: &Task) {
    let (Some(peer), Ok(params)) = (peer, serde_json::to_value(task)) else {
        return;
    };
    tokio::spawn(async move {
        let notification = ServerNotification::CustomNotification(CustomNotification::new(
            wire::STATUS_NOTIFICATION,
            Some(params),
        ));
        // A session that is gone, or a client that does not read its stream, is not waited on.
        let _ = tokio::time::timeout(Duration::from_secs(5), peer.send_notification(notification))
            .await;
    });
}
