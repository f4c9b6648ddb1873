//! The REST face of the middleware.
//!
//! | route | what |
//! |---|---|
//! | `GET /` , `GET /chat.js` | the chat page ([`page`]) |
//! | `POST /chat` | a chat, as JSON or (with `stream: true`) as typed SSE events ([`chat`]) |
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
    routing::{get, post},
};

use crate::{
    conversation::{self, ChatRequest},
    error::ChatError,
    events::{ChatAnswer, EventSink},
    planner,
    state::{AppState, Shared},
};

/// Every REST route of the middleware, with its state.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/chat.js", get(page::script))
        .route("/chat", post(chat::chat))
        .route("/tools", get(tools::list))
        .route("/execute", post(tools::execute))
        .route("/v1/chat/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .with_state(state)
}

/// Answer a chat: with the LLM when one is configured, else with the offline planner.
pub async fn answer(
    state: &Shared,
    request: ChatRequest,
    events: &EventSink,
    endpoint: &'static str,
) -> Result<ChatAnswer, ChatError> {
    let result = match &state.llm {
        Some(llm) => conversation::run(state, llm, request, events).await,
        None => Ok(planner::run(state, &request.messages, events, request.user.as_ref()).await),
    };
    let source = if state.llm.is_some() {
        "llm"
    } else {
        "offline_planner"
    };
    state.metrics.chat(endpoint, source, result.is_ok());
    result
}
