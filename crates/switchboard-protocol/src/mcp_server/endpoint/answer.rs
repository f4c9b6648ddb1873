//! The answer to a request the endpoint serves itself: plain JSON when the answer comes
//! first, else an SSE stream of the notifications sent on it (progress; log messages of a
//! request without a session) followed by its answer, with keep-alive comments while it waits.

use std::{
    collections::VecDeque,
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::Stream;
use http::{HeaderValue, StatusCode, header};
use rmcp::{
    ErrorData,
    model::{ErrorCode, RequestId, ServerJsonRpcMessage, ServerNotification, ServerResult},
};
use tokio::sync::mpsc;

use super::Call;

/// How long an answer may take before the client gets an SSE stream with keep-alive
/// comments instead (rmcp's keep-alive interval).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Which revision's rules frame an answer given here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A request of a session (revisions before 2026-07-28): the result marker comes off, and
    /// every answer is HTTP 200.
    Session,
    /// A 2026-07-28 request: the result keeps its `resultType`, and an error that rmcp answers
    /// with another HTTP status (a malformed request: 400; an unknown method: 404) gets it.
    Stateless,
}

/// JSON when the answer comes first, else an SSE stream.
pub(super) async fn respond(
    id: RequestId,
    framing: Framing,
    mut call: Call,
    notices: mpsc::UnboundedReceiver<ServerNotification>,
) -> Response {
    enum First {
        Answer(Result<ServerResult, ErrorData>),
        Notice(ServerNotification),
        Nothing,
    }
    let mut answers = AnswerStream {
        id,
        framing,
        call: None,
        notices,
        queue: VecDeque::new(),
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
    };
    let first = tokio::select! {
        biased;
        result = &mut call => First::Answer(result),
        Some(notice) = answers.notices.recv() => First::Notice(notice),
        () = tokio::time::sleep(KEEP_ALIVE) => First::Nothing,
    };
    match first {
        First::Answer(result) if answers.notices.is_empty() => {
            let status = status(framing, &result);
            let mut response = json(&framed(answers.id, result, framing));
            *response.status_mut() = status;
            return response;
        }
        First::Answer(result) => answers.finish(result),
        First::Notice(notice) => {
            answers.queue.push_back(event(&notice_message(notice)));
            answers.call = Some(call);
        }
        First::Nothing => answers.call = Some(call),
    }
    sse(answers)
}

/// The answer to a request of a session. Only sessions of revisions before 2026-07-28 are
/// answered here, so the `"complete"` result marker comes off, as rmcp does for such peers.
pub fn answer_message(
    id: RequestId,
    result: Result<ServerResult, ErrorData>,
) -> ServerJsonRpcMessage {
    match result {
        Ok(mut result) => {
            result.strip_result_type_for_legacy_peer();
            ServerJsonRpcMessage::response(result, id)
        }
        Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
    }
}

/// The answer to a request framed by `framing`'s rules.
fn framed(
    id: RequestId,
    result: Result<ServerResult, ErrorData>,
    framing: Framing,
) -> ServerJsonRpcMessage {
    match (framing, result) {
        (Framing::Session, result) => answer_message(id, result),
        (Framing::Stateless, Ok(result)) => ServerJsonRpcMessage::response(result, id),
        (Framing::Stateless, Err(error)) => ServerJsonRpcMessage::error(error, Some(id)),
    }
}

/// The HTTP status of an answer given as JSON: rmcp's mapping for 2026-07-28 requests (its
/// `jsonrpc_http_status`; a request with malformed `_meta`, its other 400, is never answered
/// here).
fn status(framing: Framing, result: &Result<ServerResult, ErrorData>) -> StatusCode {
    let (Framing::Stateless, Err(error)) = (framing, result) else {
        return StatusCode::OK;
    };
    match error.code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

fn notice_message(notice: ServerNotification) -> ServerJsonRpcMessage {
    ServerJsonRpcMessage::notification(notice)
}

/// The plain JSON answer to a POSTed request.
pub fn json(message: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode an answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn sse(answers: AnswerStream) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                http::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(answers),
    )
        .into_response()
}

/// One SSE event carrying `message`.
pub fn event(message: &ServerJsonRpcMessage) -> Bytes {
    let mut bytes = b"data: ".to_vec();
    if let Err(error) = serde_json::to_writer(&mut bytes, message) {
        tracing::error!(%error, "cannot encode a message");
        return Bytes::new();
    }
    bytes.extend_from_slice(b"\n\n");
    Bytes::from(bytes)
}

/// The SSE answer of one request: its notifications, in order, then the answer; keep-alive
/// comments while it waits. Polling it drives the call, so a client that goes away cancels
/// the call.
struct AnswerStream {
    id: RequestId,
    framing: Framing,
    /// `None` once the answer is queued.
    call: Option<Call>,
    notices: mpsc::UnboundedReceiver<ServerNotification>,
    queue: VecDeque<Bytes>,
    keep_alive: tokio::time::Interval,
}

impl AnswerStream {
    /// Queue the notifications sent before the answer, then the answer.
    fn finish(&mut self, result: Result<ServerResult, ErrorData>) {
        while let Ok(notice) = self.notices.try_recv() {
            self.queue.push_back(event(&notice_message(notice)));
        }
        self.queue
            .push_back(event(&framed(self.id.clone(), result, self.framing)));
        self.call = None;
    }
}

impl Stream for AnswerStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            let Some(call) = this.call.as_mut() else {
                return Poll::Ready(None);
            };
            if let Poll::Ready(Some(notice)) = this.notices.poll_recv(cx) {
                this.queue.push_back(event(&notice_message(notice)));
                continue;
            }
            if let Poll::Ready(result) = call.as_mut().poll(cx) {
                this.finish(result);
                continue;
            }
            if this.keep_alive.poll_tick(cx).is_ready() {
                return Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n"))));
            }
            return Poll::Pending;
        }
    }
}
