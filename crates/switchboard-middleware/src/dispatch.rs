//! Running the tool calls of one turn: concurrently, at most `max_concurrent_tools` at a
//! time, results in the order the calls were asked for.
//!
//! Nothing here fails the chat: an unknown tool, arguments that are not a JSON object, a tool
//! that reports an error, a gateway that is down or a call that times out all become a
//! [`ToolCallRecord`] with `is_error`, whose text goes back to the LLM so it can correct
//! itself or explain.
//!
//! Code runs in the conversation's sandbox session (see [`crate::sessions`]): a call to
//! `execute_code` (or a session file tool) that names no `session_id` gets the conversation's.
//!
//! While the chat is streamed, the code tools run as MCP tasks
//! ([`crate::gateway::Gateway::call_tool_as_task`]): their status reaches the client as
//! `tool_call_progress` events. A chat nobody watches calls them plainly (one round trip
//! less, no task kept by the code-executor).

use std::time::Instant;

use futures::{FutureExt, StreamExt, future::BoxFuture};
use serde_json::Value;

use crate::gateway::{TaskProgress, User};
use crate::{
    catalog::{self, Catalog},
    events::{ChatEvent, EventSink, ToolCallRecord},
    llm::ToolCall,
    sessions::{self, Conversation},
    state::Shared,
};

/// What the tool calls of one chat share: the tools, the person asking and the conversation
/// whose sandbox session code runs in.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub user: User<'a>,
    pub conversation: &'a Conversation,
}

/// Run `calls` and return one record per call, in the same order.
pub async fn run_calls(
    state: &Shared,
    context: Context<'_>,
    calls: &[ToolCall],
    clock: Instant,
    events: &EventSink,
) -> Vec<ToolCallRecord> {
    // Boxed into a Vec first: a `map` closure in the stream's type trips the compiler's
    // higher-ranked lifetime check when the future must be `Send`.
    let pending: Vec<BoxFuture<'_, ToolCallRecord>> = calls
        .iter()
        .map(|call| run_call(state, context, call, clock, events).boxed())
        .collect();
    futures::stream::iter(pending)
        .buffered(state.config.max_concurrent_tools)
        .collect()
        .await
}

/// Arguments as a JSON object, or the message the LLM should read.
fn parse_arguments(text: &str) -> Result<serde_json::Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Default::default());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "the arguments must be a JSON object, got {other}; call the tool again with an object such as {{\"name\": value}}"
        )),
        Err(e) => Err(format!(
            "the arguments are not valid JSON ({e}); call the tool again with a JSON object"
        )),
    }
}

#[tracing::instrument(skip_all, fields(tool = %call.name, id = %call.id))]
async fn run_call(
    state: &Shared,
    context: Context<'_>,
    call: &ToolCall,
    clock: Instant,
    events: &EventSink,
) -> ToolCallRecord {
    let Context {
        catalog,
        user,
        conversation,
    } = context;
    let started_ms = clock.elapsed().as_secs_f64() * 1000.0;
    let entry = catalog.resolve(&call.name);
    let mut arguments = parse_arguments(&call.arguments);
    // The conversation's session, put in when the call names none (the model may not know it).
    let mut injected = None;
    if let (Some(entry), Ok(map)) = (entry, arguments.as_mut())
        && sessions::takes_session(&entry.tool.name)
        && !map.contains_key("session_id")
        && let Some(id) = conversation.session(state, catalog).await
    {
        map.insert("session_id".into(), Value::String(id.clone()));
        injected = Some(id);
    }
    let name = entry.map_or_else(|| call.name.clone(), |e| e.tool.name.to_string());
    let shown_arguments = match &arguments {
        Ok(map) => Value::Object(map.clone()),
        Err(_) => Value::String(call.arguments.clone()),
    };
    events.emit(ChatEvent::ToolCallStarted {
        id: call.id.clone(),
        name: name.clone(),
        arguments: shown_arguments.clone(),
    });
    let start = Instant::now();
    let (text, structured_content, images, is_error, outcome) = match (entry, arguments) {
        (None, _) => {
            let known: Vec<&str> = catalog
                .entries()
                .iter()
                .map(|e| e.llm_name.as_str())
                .collect();
            (
                format!(
                    "there is no tool named '{}'; the tools are: {}",
                    call.name,
                    if known.is_empty() {
                        "(none: the gateway offers no tools right now)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
                None,
                Vec::new(),
                true,
                "call_failed",
            )
        }
        (Some(_), Err(message)) => (message, None, Vec::new(), true, "call_failed"),
        (Some(entry), Ok(arguments)) => {
            let timeout = state.config.tool_timeout;
            let called = if state.config.tool_tasks
                && events.is_streaming()
                && sessions::runs_as_task(&entry.tool.name)
            {
                let report = |p: TaskProgress| {
                    events.emit(ChatEvent::ToolCallProgress {
                        id: call.id.clone(),
                        task_id: p.task_id,
                        status: p.status,
                        message: p.message,
                        elapsed_ms: p.elapsed.as_secs_f64() * 1000.0,
                    })
                };
                state
                    .gateway
                    .call_tool_as_task(&entry.tool.name, arguments, timeout, user, report)
                    .await
            } else {
                state
                    .gateway
                    .call_tool(&entry.tool.name, arguments, timeout, user)
                    .await
            };
            match called {
                Ok(result) => {
                    let is_error = result.is_error == Some(true);
                    let text = catalog::render(&result);
                    if let Some(id) = &injected {
                        session_outcome(
                            conversation,
                            id,
                            &text,
                            &result.structured_content,
                            is_error,
                        )
                        .await;
                    }
                    (
                        text,
                        result.structured_content.clone(),
                        catalog::images(&result),
                        is_error,
                        if is_error { "tool_error" } else { "ok" },
                    )
                }
                Err(error) => {
                    tracing::warn!(%error, "tool call failed");
                    (
                        format!("the tool call could not be completed: {error}"),
                        None,
                        Vec::new(),
                        true,
                        "call_failed",
                    )
                }
            }
        }
    };
    let took = start.elapsed();
    state
        .metrics
        .tool_call(entry.map(|e| e.tool.name.as_ref()), outcome, took);
    let (result, truncated) = catalog::truncate(text, state.config.max_tool_result_chars);
    let record = ToolCallRecord {
        id: call.id.clone(),
        name,
        arguments: shown_arguments,
        result,
        structured_content,
        is_error,
        truncated,
        started_ms,
        duration_ms: took.as_secs_f64() * 1000.0,
        images,
    };
    events.emit(ChatEvent::ToolCallFinished(record.clone()));
    record
}

/// What a call in session `id` says about the session: a run that reports `session_ended`, or
/// a failure that is no execution result and names the session (the sandbox refused it:
/// unknown, expired), drops it so that the next code call creates a fresh one.
async fn session_outcome(
    conversation: &Conversation,
    id: &str,
    text: &str,
    structured: &Option<Value>,
    is_error: bool,
) {
    let ended = structured
        .as_ref()
        .and_then(|s| s.get("session_ended"))
        .is_some_and(|why| !why.is_null());
    let refused = is_error
        && structured
            .as_ref()
            .is_none_or(|s| s.get("stdout").is_none())
        && text.contains(id);
    if ended || refused {
        conversation.forget(id).await;
    }
}

/// The tool message the LLM reads for a record: failures are marked as such, because the
/// OpenAI format has no error flag on tool messages.
pub fn llm_content(record: &ToolCallRecord) -> String {
    if record.is_error {
        format!("Error: {}", record.result)
    } else {
        record.result.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_a_json_object() {
        assert!(parse_arguments("").expect("empty is {}").is_empty());
        assert_eq!(
            parse_arguments("{\"a\":1}").expect("object")["a"],
            Value::from(1)
        );
        assert!(
            parse_arguments("[1]")
                .expect_err("array")
                .contains("JSON object")
        );
        assert!(
            parse_arguments("{oops")
                .expect_err("bad")
                .contains("not valid JSON")
        );
    }
}
