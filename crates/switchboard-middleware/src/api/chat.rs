//! `POST /chat`: `{messages: [{role, content}], stream?, model?, conversation_id?}` (or
//! `{message: "..."}` for one user message) → `{response, tool_calls, usage, model, source,
//! ...}`, or with `stream: true` an SSE stream of [`ChatEvent`]s ending in `done` or `error`.
//! Requests with the same `conversation_id` run their code in one sandbox session, which
//! `DELETE /conversations/{id}` ends (see [`crate::sessions`]).

use std::{convert::Infallible, sync::Arc};

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
    http::{HeaderValue, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::Stream;
use serde::Deserialize;
use switchboard_runtime::ApiError;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use switchboard_runtime::auth::Identity;

use crate::{conversation::user_of, sessions::valid_id};

use crate::{
    conversation::ChatRequest,
    error::ChatError,
    events::{ChatEvent, EventSink},
    llm::{Message, Role, Sampling},
    state::AppState,
};

/// One message as a `/chat` client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// The `/chat` request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    #[serde(default)]
    pub messages: Vec<InMessage>,
    /// Shorthand for `messages: [{role: "user", content: message}]`.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// The conversation this request continues (any id the client chooses, e.g. a random
    /// UUID; 1–128 of `A-Z a-z 0-9 . _ : -`): its code runs in one sandbox session.
    #[serde(default)]
    pub conversation_id: Option<String>,
}

impl ChatBody {
    /// The validated request; the error says what is wrong.
    pub fn into_request(self) -> Result<ChatRequest, ChatError> {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        for (i, m) in self.messages.into_iter().enumerate() {
            let role = match m.role.as_str() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(ChatError::BadRequest(format!(
                        "messages[{i}].role: '{other}' is not a role; expected system, user or assistant"
                    )));
                }
            };
            messages.push(Message::new(role, m.content));
        }
        if let Some(text) = self.message {
            messages.push(Message::new(Role::User, text));
        }
        if !messages
            .iter()
            .any(|m| m.role == Role::User && !m.content.trim().is_empty())
        {
            return Err(ChatError::BadRequest(
                "no user message: send {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}]} or {\"message\": \"...\"}".into(),
            ));
        }
        if let Some(id) = &self.conversation_id
            && !valid_id(id)
        {
            return Err(ChatError::BadRequest(
                "conversation_id: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -".into(),
            ));
        }
        Ok(ChatRequest {
            conversation_id: self.conversation_id,
            messages,
            model: self.model,
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_tokens,
            },
            user: None,
        })
    }
}

pub async fn chat(
    State(state): State<AppState>,
    caller: Option<Extension<Identity>>,
    Json(body): Json<ChatBody>,
) -> Response {
    let stream = body.stream;
    let mut request = match body.into_request() {
        Ok(request) => request,
        Err(error) => return ApiError::from(error).into_response(),
    };
    request.user = user_of(caller.map(|c| c.0));
    if !stream {
        return match super::answer(&state, request, &EventSink::none(), "chat").await {
            Ok(answer) => Json(answer).into_response(),
            Err(error) => ApiError::from(error).into_response(),
        };
    }
    let events = run_streaming(state, request, "chat");
    let stream = futures::StreamExt::map(events, |event| {
        let data = serde_json::to_string(&event).unwrap_or_else(|e| {
            format!("{{\"type\":\"error\",\"code\":\"internal\",\"message\":\"cannot encode an event: {e}\"}}")
        });
        Ok::<_, Infallible>(Event::default().event(event.name()).data(data))
    });
    sse_response(stream)
}

/// `DELETE /conversations/{id}`: end the conversation and close its sandbox session. 204
/// whether or not it had one (ending is idempotent); 400 for an id `/chat` would refuse.
pub async fn end_conversation(
    State(state): State<AppState>,
    caller: Option<Extension<Identity>>,
    Path(id): Path<String>,
) -> Response {
    if !valid_id(&id) {
        return ApiError::from(ChatError::BadRequest(
            "conversation id: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -".into(),
        ))
        .into_response();
    }
    let user = user_of(caller.map(|c| c.0));
    state.conversations.end(&state, &id, user.as_ref()).await;
    StatusCode::NO_CONTENT.into_response()
}

/// Run a chat in its own task and return its events, ending with `done` or `error`. The
/// task is aborted when the stream is dropped (the client went away).
pub fn run_streaming(
    state: AppState,
    request: ChatRequest,
    endpoint: &'static str,
) -> impl Stream<Item = ChatEvent> + Send + 'static {
    let (sink, rx) = EventSink::channel();
    let task = tokio::spawn(
        async move {
            let state = Arc::clone(&state);
            match super::answer(&state, request, &sink, endpoint).await {
                Ok(answer) => sink.emit(ChatEvent::Done(answer)),
                Err(error) => sink.emit(ChatEvent::Error {
                    code: error.code().to_owned(),
                    message: error.to_string(),
                }),
            }
        }
        .instrument(tracing::Span::current()),
    );
    let guard = AbortOnDropHandle::new(task);
    futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|event| (event, (rx, guard)))
    })
}

/// An SSE response that proxies do not buffer.
pub fn sse_response<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
