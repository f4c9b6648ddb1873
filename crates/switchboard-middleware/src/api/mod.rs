//! The REST face of the middleware.
//!
//! | route | what |
//! |---|---|
//! | `GET /` , `GET /chat.js`, `GET /markdown.js` | the chat page ([`page`]) |
//! | `POST /chat` | a chat, as JSON or (with `stream: true`) as typed SSE events ([`chat`]) |
//! | `DELETE /conversations/{id}` | end a conversation and its sandbox session ([`chat`]) |
//! | `GET /tools` | the gateway's tools, as MCP describes them and as OpenAI functions ([`tools`]) |
//! | `POST /execute` | one tool call, no LLM ([`tools`]) |
//! | `POST /v1/chat/completions`, `GET /v1/models` | the OpenAI-compatible API ([`openai`]) |
//!
//! `/health`, `/ready` and `/metrics` come from the runtime's `ServiceApp`.

pub mod chat;
pub mod openai;
pub mod page;
pub mod tools;

use axum::{
    Router,
    routing::{delete, get, post},
};

use crate::{
    conversation::{self, ChatRequest},
    error::ChatError,
    events::{ChatAnswer, EventSink},
    planner,
    sessions::Conversation,
    state::{AppState, Shared},
};

/// Every REST route of the middleware, with its state.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/chat.js", get(page::script))
        .route("/markdown.js", get(page::markdown))
        .route("/chat", post(chat::chat))
        .route("/tools", get(tools::list))
        .route("/execute", post(tools::execute))
        .route("/v1/chat/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .route("/conversations/{id}", delete(chat::end_conversation))
        .with_state(state)
}

/// Answer a chat: with the LLM when one is configured, else with the offline planner.
pub async fn answer(
    state: &Shared,
    request: ChatRequest,
    events: &EventSink,
    endpoint: &'static str,
) -> Result<ChatAnswer, ChatError> {
    // A planner request that names no conversation runs one-shot: the planner runs all its
    // code in one concurrent turn, so a session would share nothing and cost two calls. With
    // an LLM, one request may run code over several rounds, so it gets a session of its own.
    let one_shot = Conversation::one_shot();
    let conversation = (state.llm.is_some() || request.conversation_id.is_some()).then(|| {
        state
            .conversations
            .enter(request.conversation_id.as_deref(), request.user.as_ref())
    });
    let current = conversation.as_deref().unwrap_or(&one_shot);
    let result = match &state.llm {
        Some(llm) => conversation::run(state, llm, request, events, current).await,
        None => Ok(planner::run(
            state,
            &request.messages,
            events,
            request.user.as_ref(),
            current,
        )
        .await),
    };
    if let Some(conversation) = conversation {
        state.conversations.leave(state, conversation).await;
    }
    let source = if state.llm.is_some() {
        "llm"
    } else {
        "offline_planner"
    };
    state.metrics.chat(endpoint, source, result.is_ok());
    result
}
