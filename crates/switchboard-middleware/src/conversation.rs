//! The tool loop: ask the LLM, run the tools it asks for, give it the results, repeat.
//!
//! One chat is at most `max_tool_rounds` turns that may call tools, then one wrap-up turn that
//! may not: if the model is still asking for tools when the bound is hit, it is told so and
//! asked to answer with what it has. The tools of one turn run concurrently (see
//! [`crate::dispatch`]). Text of every turn is part of the answer (and streamed as it comes);
//! tool-call turns are not shown to OpenAI-compatible clients (see [`crate::api::openai`]).
//!
//! The gateway being down does not fail a chat: the LLM is told that no tools are available
//! and the answer carries a warning. The LLM failing does fail it, with an error that says
//! what to check.

use switchboard_runtime::auth::{Identity, Method};

use crate::gateway::User;
use std::time::Instant;

use crate::{
    catalog::Catalog,
    dispatch,
    error::ChatError,
    events::{ChatAnswer, ChatEvent, EventSink, Source},
    llm::{Llm, LlmError, Message, Role, Sampling, Turn, TurnRequest, Usage},
    sessions::Conversation,
    state::Shared,
};

/// What a client asks.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub model: Option<String>,
    pub sampling: Sampling,
    /// The person asking, when the middleware authenticates its callers: the gateway is told
    /// whom the tool calls are for (see [`crate::gateway::User`]).
    pub user: Option<Identity>,
    /// The conversation the client names: its code runs in one sandbox session across
    /// requests (see [`crate::sessions`]). `None`: this request is the whole conversation.
    pub conversation_id: Option<String>,
}

/// The user to name to the gateway for a request by `caller`: nobody when the caller is
/// anonymous (authentication off).
pub fn user_of(caller: Option<Identity>) -> Option<Identity> {
    caller.filter(|c| c.method != Method::Anonymous)
}

/// The gateway's tools now, or none and a warning that says why.
pub async fn current_catalog(state: &Shared, user: User<'_>) -> (Catalog, Vec<String>) {
    match state.gateway.tools(user).await {
        Ok(tools) => (Catalog::new(&tools), Vec::new()),
        Err(error) => {
            tracing::warn!(%error, "cannot list the gateway's tools");
            (
                Catalog::default(),
                vec![format!("{error}; no tools were available for this answer")],
            )
        }
    }
}

/// Put the system prompt first unless the client brought its own, and tell the model when
/// no tools are available.
fn with_system_prompt(
    mut messages: Vec<Message>,
    prompt: &str,
    tools_missing: Option<&str>,
) -> Vec<Message> {
    let note = tools_missing.map(|why| {
        format!("\n\nNote: no tools are available right now ({why}). If the request needs a tool, say that it is unavailable.")
    });
    match messages.first_mut() {
        Some(first) if first.role == Role::System => {
            if let Some(note) = note {
                first.content.push_str(&note);
            }
        }
        _ => messages.insert(
            0,
            Message::new(
                Role::System,
                format!("{prompt}{}", note.unwrap_or_default()),
            ),
        ),
    }
    messages
}

/// Run one chat with the LLM.
pub async fn run(
    state: &Shared,
    llm: &Llm,
    request: ChatRequest,
    events: &EventSink,
    conversation: &Conversation,
) -> Result<ChatAnswer, ChatError> {
    let clock = Instant::now();
    let user = request.user.clone();
    let (catalog, mut warnings) = current_catalog(state, user.as_ref()).await;
    let specs = catalog.specs();
    let model = request
        .model
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| llm.default_model().to_owned());
    let mut messages = with_system_prompt(
        request.messages,
        &state.config.system_prompt,
        warnings.first().map(String::as_str),
    );
    let max_rounds = state.config.max_tool_rounds;
    let mut answer = ChatAnswer {
        response: String::new(),
        tool_calls: Vec::new(),
        usage: Usage::default(),
        model: model.clone(),
        source: Source::Llm,
        llm_requests: 0,
        warnings: Vec::new(),
        conversation_id: conversation.id().map(str::to_owned),
    };
    let context = dispatch::Context {
        catalog: &catalog,
        user: user.as_ref(),
        conversation,
    };
    for round in 0..=max_rounds {
        let wrap_up = round == max_rounds;
        if wrap_up {
            messages.push(Message::new(
                Role::User,
                format!("[Switchboard] The limit of {max_rounds} tool rounds is reached; no more tools can be called. Answer the request now with the results you have."),
            ));
        }
        let turn = ask(
            state,
            llm,
            &TurnRequest {
                model: &model,
                messages: &messages,
                tools: &specs,
                no_more_tools: wrap_up,
                sampling: &request.sampling,
            },
            !answer.response.is_empty(),
            events,
        )
        .await
        .map_err(|source| ChatError::Llm {
            source,
            after_tool_calls: answer.tool_calls.len(),
        })?;
        answer.llm_requests += 1;
        if let Some(usage) = turn.usage {
            answer.usage.add(usage);
            events.emit(ChatEvent::Usage(answer.usage));
        }
        if !turn.text.is_empty() {
            if !answer.response.is_empty() {
                answer.response.push_str("\n\n");
            }
            answer.response.push_str(&turn.text);
        }
        if turn.tool_calls.is_empty() {
            break;
        }
        if wrap_up {
            warnings.push(format!(
                "the LLM asked for {} more tool call(s) after the limit of {max_rounds} rounds; they were not made",
                turn.tool_calls.len()
            ));
            break;
        }
        let records = dispatch::run_calls(state, context, &turn.tool_calls, clock, events).await;
        messages.push(Message::assistant(turn.text, turn.tool_calls.clone()));
        for (call, record) in turn.tool_calls.iter().zip(&records) {
            messages.push(Message::tool_result(call, dispatch::llm_content(record)));
        }
        answer.tool_calls.extend(records);
    }
    if answer.response.trim().is_empty() {
        answer.response = if answer.tool_calls.is_empty() {
            "The LLM returned an empty answer.".to_owned()
        } else {
            "The LLM returned no text after calling tools; their results are listed under tool_calls.".to_owned()
        };
    }
    answer.warnings = warnings;
    Ok(answer)
}

/// One LLM request, timed and counted; text fragments go to `events` as they arrive. Its
/// `llm_request` span is the parent named in the request's `traceparent`.
#[tracing::instrument(
    name = "llm_request",
    skip_all,
    fields(provider = llm.provider().as_str(), model = request.model)
)]
async fn ask(
    state: &Shared,
    llm: &Llm,
    request: &TurnRequest<'_>,
    has_text_before: bool,
    events: &EventSink,
) -> Result<Turn, LlmError> {
    let start = Instant::now();
    let mut first = true;
    let mut on_text = |text: &str| {
        if first && has_text_before {
            events.emit(ChatEvent::Text {
                delta: "\n\n".to_owned(),
            });
        }
        first = false;
        events.emit(ChatEvent::Text {
            delta: text.to_owned(),
        });
    };
    let result = if events.is_streaming() {
        llm.turn(request, Some(&mut on_text)).await
    } else {
        llm.turn(request, None).await
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(LlmError::Unreachable { .. }) => "unreachable",
        Err(LlmError::Timeout { .. }) => "timeout",
        Err(LlmError::Status { .. }) => "status",
        Err(LlmError::Protocol { .. }) => "protocol",
    };
    state
        .metrics
        .llm_request(llm.provider().as_str(), outcome, start.elapsed());
    if let Err(error) = &result {
        tracing::warn!(%error, "LLM request failed");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_prompt_is_added_once_and_carries_the_tool_note() {
        let messages = with_system_prompt(vec![Message::new(Role::User, "hi")], "P", None);
        assert_eq!(messages[0].role, Role::System);
        assert_eq!(messages[0].content, "P");
        let own = vec![
            Message::new(Role::System, "mine"),
            Message::new(Role::User, "hi"),
        ];
        let messages = with_system_prompt(own, "P", Some("gateway down"));
        assert_eq!(messages.len(), 2);
        assert!(messages[0].content.starts_with("mine"));
        assert!(messages[0].content.contains("gateway down"));
    }
}
