//! Rewriting one JSON-RPC answer inside an MCP response on its way out: a JSON body, or the one
//! event of an SSE stream that carries it (events before it pass unchanged, the rest of the
//! stream as it comes). The code-executor and the gateway use it to say what rmcp cannot (MCP
//! 2025-11-25 tasks: the `tasks` capability, a tool's `execution`), which the serving path
//! does not model.

use axum::{
    body::{Body, Bytes},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use http::{StatusCode, header};
use serde_json::Value;

/// `response` with its answer rewritten by `rewrite`, which is shown each JSON-RPC message in
/// turn and returns `true` once it has rewritten the answer (nothing after it is shown).
pub async fn answer<F>(response: Response, rewrite: F) -> Response
where
    F: FnMut(&mut Value) -> bool + Send + 'static,
{
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (mut parts, body) = response.into_parts();
    if content_type.starts_with("text/event-stream") {
        return Response::from_parts(parts, stream(body, rewrite));
    }
    if !content_type.starts_with("application/json") {
        return Response::from_parts(parts, body);
    }
    // Our own service's answer: nothing to limit.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut rewrite = rewrite;
    let rewritten = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut message| rewrite(&mut message).then_some(message))
        .and_then(|message| serde_json::to_vec(&message).ok());
    match rewritten {
        Some(rewritten) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(rewritten))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// An SSE body whose answer event is rewritten; events are cut at blank lines, across chunks.
fn stream<F>(body: Body, rewrite: F) -> Body
where
    F: FnMut(&mut Value) -> bool + Send + 'static,
{
    struct State<F> {
        /// Until the answer is rewritten (or the stream ends without it).
        rewrite: Option<F>,
        frames: axum::body::BodyDataStream,
        buffer: Vec<u8>,
    }
    let state = State {
        rewrite: Some(rewrite),
        frames: body.into_data_stream(),
        buffer: Vec::new(),
    };
    let events = futures::stream::unfold(state, |mut state| async move {
        loop {
            let Some(rewrite) = state.rewrite.as_mut() else {
                // Done: the rest as it comes.
                if !state.buffer.is_empty() {
                    let rest = std::mem::take(&mut state.buffer);
                    return Some((Ok(Bytes::from(rest)), state));
                }
                let frame = state.frames.next().await?;
                return Some((frame, state));
            };
            if let Some(end) = state.buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = state.buffer.drain(..end + 2).collect();
                let rewritten = self::event(&event[..end], &mut *rewrite);
                if rewritten.is_some() {
                    state.rewrite = None;
                }
                let out = rewritten.unwrap_or(event);
                return Some((Ok(Bytes::from(out)), state));
            }
            match state.frames.next().await {
                Some(Ok(chunk)) => state.buffer.extend_from_slice(&chunk),
                Some(Err(error)) => return Some((Err(error), state)),
                None => state.rewrite = None,
            }
        }
    });
    Body::from_stream(events)
}

/// One SSE event (without its blank line) with its data rewritten, if `rewrite` rewrote it:
/// its other fields (`id:`, `event:`) kept, the data written back as one line.
pub fn event(event: &[u8], rewrite: impl FnOnce(&mut Value) -> bool) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(event).ok()?;
    let (mut data, mut fields) = (Vec::new(), Vec::new());
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match line.strip_prefix("data:") {
            Some(d) => data.push(d.strip_prefix(' ').unwrap_or(d)),
            None if !line.is_empty() => fields.push(line),
            None => {}
        }
    }
    let mut message: Value = serde_json::from_str(&data.join("\n")).ok()?;
    if !rewrite(&mut message) {
        return None;
    }
    let mut out = String::new();
    for field in fields {
        out.push_str(field);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&serde_json::to_string(&message).ok()?);
    out.push_str("\n\n");
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mark_answer(message: &mut Value) -> bool {
        if message.get("id") != Some(&json!(1)) {
            return false;
        }
        message["result"]["marked"] = json!(true);
        true
    }

    #[tokio::test]
    async fn only_the_answer_event_is_rewritten_even_split_across_chunks() {
        let before =
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n";
        let answer_event = "id: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        let after = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        let whole = format!("{before}{answer_event}{after}");
        // Cut in the middle of the answer's event.
        let (a, b) = whole.split_at(before.len() + 10);
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> =
            vec![Ok(Bytes::from(a.to_owned())), Ok(Bytes::from(b.to_owned()))];
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(futures::stream::iter(chunks)))
            .expect("a response");
        let out = super::answer(response, mark_answer).await;
        let text = String::from_utf8(
            axum::body::to_bytes(out.into_body(), usize::MAX)
                .await
                .expect("the body")
                .to_vec(),
        )
        .expect("text");
        assert!(text.starts_with(before), "{text}");
        // The answer's event keeps its other fields, with the data rewritten.
        let rewritten = &text[before.len()..text.len() - after.len()];
        assert!(rewritten.starts_with("id: 7\ndata: "), "{text}");
        assert!(rewritten.contains("\"marked\":true"), "{text}");
        // Only the first answer: what follows passes as it was.
        assert!(text.ends_with(after), "{text}");
        assert_eq!(text.matches("marked").count(), 1, "{text}");
    }

    #[tokio::test]
    async fn a_json_answer_is_rewritten_and_other_bodies_pass() {
        let json_response = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, "36")
            .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
            .expect("a response");
        let out = super::answer(json_response, mark_answer).await;
        assert!(out.headers().get(header::CONTENT_LENGTH).is_none());
        let body: Value = serde_json::from_slice(
            &axum::body::to_bytes(out.into_body(), usize::MAX)
                .await
                .expect("the body"),
        )
        .expect("JSON");
        assert_eq!(body["result"]["marked"], true);

        let other = Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Body::empty())
            .expect("a response");
        let out = super::answer(other, mark_answer).await;
        assert_eq!(out.status(), StatusCode::ACCEPTED);
    }
}
