//! The answer to a request the endpoint serves itself: plain JSON when the answer comes
//! first, else an SSE stream of the request's progress followed by its answer, with
//! keep-alive comments while it waits.

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
    model::{
        ProgressNotification, ProgressNotificationParam, RequestId, ServerJsonRpcMessage,
        ServerNotification, ServerResult,
    },
};
use tokio::sync::mpsc;

use super::Call;

/// How long an answer may take before the client gets an SSE stream with keep-alive
/// comments instead (rmcp's keep-alive interval).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// JSON when the answer comes first, else an SSE stream.
pub(super) async fn respond(
    id: RequestId,
    mut call: Call,
    progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
) -> Response {
    #[expect(
        clippy::large_enum_variant,
        reason = "lives on the stack for one select; boxing would allocate per call"
    )]
    enum First {
        Answer(Result<ServerResult, ErrorData>),
        Progress(ProgressNotificationParam),
        Nothing,
    }
    let mut answers = AnswerStream {
        id,
        call: None,
        progress,
        queue: VecDeque::new(),
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
    };
    let first = tokio::select! {
        biased;
        result = &mut call => First::Answer(result),
        Some(progress) = answers.progress.recv() => First::Progress(progress),
        () = tokio::time::sleep(KEEP_ALIVE) => First::Nothing,
    };
    match first {
        First::Answer(result) if answers.progress.is_empty() => {
            return json(&answer_message(answers.id, result));
        }
        First::Answer(result) => answers.finish(result),
        First::Progress(progress) => {
            answers.queue.push_back(event(&progress_message(progress)));
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

fn progress_message(params: ProgressNotificationParam) -> ServerJsonRpcMessage {
    ServerJsonRpcMessage::notification(ServerNotification::ProgressNotification(
        ProgressNotification::new(params),
    ))
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

/// The SSE answer of one request: its progress, in order, then the answer; keep-alive comments
/// while it waits. Polling it drives the call, so a client that goes away cancels the call.
struct AnswerStream {
    id: RequestId,
    /// `None` once the answer is queued.
    call: Option<Call>,
    progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
    queue: VecDeque<Bytes>,
    keep_alive: tokio::time::Interval,
}

impl AnswerStream {
    /// Queue the progress sent before the answer, then the answer.
    fn finish(&mut self, result: Result<ServerResult, ErrorData>) {
        while let Ok(progress) = self.progress.try_recv() {
            self.queue.push_back(event(&progress_message(progress)));
        }
        self.queue
            .push_back(event(&answer_message(self.id.clone(), result)));
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
            if let Poll::Ready(Some(progress)) = this.progress.poll_recv(cx) {
                this.queue.push_back(event(&progress_message(progress)));
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
