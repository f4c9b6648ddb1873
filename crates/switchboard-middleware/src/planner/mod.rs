//! The offline planner: answers explicit requests when no LLM is configured, so the system
//! works out of the box.
//!
//! It understands two things in the last user message:
//! - code to run: every fenced block (```` ```python ... ``` ````), taken whole; or else the
//!   program after `Execute:` / `Run:`: `` `inline code` `` in backticks, or everything after
//!   the marker — the rest of its line and all the lines below, indentation kept — except a
//!   request in plain language that ends the last line ("... and tell me the time": a
//!   conjunction or comma outside strings and brackets followed by a request word). Text
//!   before the marker is prose too; a question typed on a line of its own below the program
//!   would be taken for code, so it goes before the marker or at the end of the last line;
//! - a question about the time: the words *time*, *clock*, *date* or *today* outside the
//!   code, with IANA zones (`Europe/Berlin`), `UTC`, or cities that name a zone ("Tokyo",
//!   "New York" → `America/New_York`) in the message.
//!
//! Everything it finds runs concurrently through the same dispatcher as LLM tool calls. Every
//! answer starts by saying it came from the offline planner and ends with how to configure
//! a real LLM.
//!
//! Reading the message is [`parse`]; this module runs what it found and words the answer.

use std::time::Instant;

use serde_json::{Value, json};
use switchboard_protocol::sandbox::ExecutionResult;

mod parse;

pub use parse::{Plan, plan};

use crate::gateway::User;
use crate::{
    conversation::current_catalog,
    dispatch,
    events::{ChatAnswer, ChatEvent, EventSink, Source, ToolCallRecord},
    llm::{Message, Role, ToolCall, Usage},
    sessions::Conversation,
    state::Shared,
};

/// The model name the planner reports.
pub const MODEL: &str = "offline-planner";

/// How to leave the planner behind; ends every planner answer.
pub const CONFIGURE_HINT: &str = "To have a real LLM answer, set LLM_BASE_URL and LLM_MODEL_NAME (plus LLM_API_KEY if the API needs one) and restart, e.g. LLM_BASE_URL=http://localhost:11434/v1 LLM_MODEL_NAME=llama3.1 for Ollama, or LLM_BASE_URL=https://api.openai.com/v1 LLM_MODEL_NAME=gpt-4o-mini LLM_API_KEY=sk-... for OpenAI.";

/// Answer the conversation's last user message with the planner.
pub async fn run(
    state: &Shared,
    messages: &[Message],
    events: &EventSink,
    user: User<'_>,
    conversation: &Conversation,
) -> ChatAnswer {
    let clock = Instant::now();
    let last = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str());
    let plan = plan(last);
    let mut answer = ChatAnswer {
        response: String::new(),
        tool_calls: Vec::new(),
        usage: Usage::default(),
        model: MODEL.to_owned(),
        source: Source::OfflinePlanner,
        llm_requests: 0,
        warnings: Vec::new(),
        conversation_id: conversation.id().map(str::to_owned),
    };
    let mut lines = vec!["Offline planner (no LLM is configured).".to_owned()];
    if plan.code.is_empty() && plan.time_zones.is_none() {
        lines.push("I can run Python code — put it in a ```python fenced block or after \"Execute:\" or \"Run:\" — and tell the time (ask \"what time is it?\", optionally naming a zone such as Europe/Berlin). I found neither in your message.".to_owned());
    } else {
        let (catalog, warnings) = current_catalog(state, user).await;
        answer.warnings = warnings;
        let mut calls = Vec::new();
        let mut missing = Vec::new();
        let mut add = |base: &str, arguments: Value| match catalog.find_by_base_name(base) {
            Some(entry) => calls.push(ToolCall {
                id: format!("planner_{}", calls.len()),
                name: entry.llm_name.clone(),
                arguments: arguments.to_string(),
            }),
            None => missing.push(base.to_owned()),
        };
        for code in &plan.code {
            add("execute_code", json!({ "code": code }));
        }
        match plan.time_zones.as_deref() {
            Some([]) => add("get_current_time", json!({})),
            Some(zones) => zones
                .iter()
                .for_each(|z| add("get_current_time", json!({ "timezone": z }))),
            None => {}
        }
        let context = dispatch::Context {
            catalog: &catalog,
            user,
            conversation,
        };
        let records = dispatch::run_calls(state, context, &calls, clock, events).await;
        lines.extend(records.iter().map(describe));
        missing.dedup();
        for base in missing {
            lines.push(format!(
                "I could not use {base}: the gateway at {} offers no such tool right now{}.",
                state.gateway.url(),
                answer
                    .warnings
                    .first()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
        }
        answer.tool_calls = records;
    }
    lines.push(CONFIGURE_HINT.to_owned());
    answer.response = lines.join("\n\n");
    events.emit(ChatEvent::Text {
        delta: answer.response.clone(),
    });
    answer
}

/// One sentence (and block) per tool call.
fn describe(record: &ToolCallRecord) -> String {
    let base = record
        .name
        .rsplit(['.', '/', ':'])
        .next()
        .unwrap_or(&record.name);
    if base.ends_with("execute_code") {
        let run = record
            .structured_content
            .clone()
            .and_then(|v| serde_json::from_value::<ExecutionResult>(v).ok());
        return match run {
            Some(run) => {
                let mut text = format!("Code output:\n```\n{}\n```", run.stdout.trim_end());
                for image in &run.images {
                    text.push_str(&format!("\nPicture: {}", image.name));
                }
                if !run.stderr.trim().is_empty() {
                    text.push_str(&format!("\nstderr:\n```\n{}\n```", run.stderr.trim_end()));
                }
                if run.timed_out {
                    text.push_str("\nThe program was stopped: it ran out of time.");
                } else if !run.success {
                    text.push_str(&format!(
                        "\nThe program failed (exit code {}).",
                        run.exit_code
                            .map_or_else(|| "none".into(), |c| c.to_string())
                    ));
                }
                text
            }
            None if record.is_error => format!("Running the code failed: {}", record.result),
            None => format!("Code output:\n```\n{}\n```", record.result.trim_end()),
        };
    }
    if base.ends_with("get_current_time") {
        let s = record.structured_content.as_ref();
        let field = |k: &str| s.and_then(|s| s[k].as_str()).map(str::to_owned);
        return match (field("datetime"), field("timezone")) {
            (Some(datetime), Some(zone)) if !record.is_error => format!(
                "The current time in {zone} is {datetime}{}.",
                field("day_of_week")
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            _ if record.is_error => format!("Getting the time failed: {}", record.result),
            _ => format!("The current time: {}", record.result),
        };
    }
    format!("{}: {}", record.name, record.result)
}
