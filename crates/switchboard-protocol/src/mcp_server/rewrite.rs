//! Rewriting one JSON-RPC answer inside an MCP response on its way out: a JSON body, or the one
//! event of an SSE stream that carries it (events before it pass unchanged, the rest of the
//! stream as it comes). The code-executor and the gateway use it to say what rmcp cannot (MCP
//! 2025-11-25 tasks: the `tasks` capability, a tool's `execution`), which the serving path
//! does not model.
//!
//! A tool list is completed by splicing ([`tool_executions`]): each tool's `execution` goes in
//! after the tool's opening brace, and the rest of the answer is copied as it was. Parsing the
//! answer into a `serde_json::Value` and writing it out again cost ~100 µs of CPU for a 14 KB
//! list (the code-executor's seven tools with their schemas): 160 µs per `tools/list` against
//! 60 µs for the sandbox, whose list is as long and not rewritten (`perf`, c=32, one shared
//! session).

use std::borrow::Cow;

use axum::{
    body::{Body, Bytes},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use http::{StatusCode, header};
use serde::{Deserialize, de::IgnoredAny};
use serde_json::{Value, value::RawValue};

/// `response` with its answer rewritten by `rewrite`, which is shown each JSON-RPC message in
/// turn and returns `true` once it has rewritten the answer (nothing after it is shown).
pub async fn answer<F>(response: Response, mut rewrite: F) -> Response
where
    F: FnMut(&mut Value) -> bool + Send + 'static,
{
    answer_bytes(response, move |bytes| {
        let mut message = serde_json::from_slice::<Value>(bytes).ok()?;
        if !rewrite(&mut message) {
            return None;
        }
        serde_json::to_vec(&message).ok()
    })
    .await
}

/// `response` with its answer rewritten by `rewrite`, which is shown each JSON-RPC message's
/// text in turn and returns the rewritten message once it finds the answer (nothing after it
/// is shown); `None` passes the message as it was.
pub async fn answer_bytes<F>(response: Response, rewrite: F) -> Response
where
    F: FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static,
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
    match rewrite(&bytes) {
        Some(rewritten) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(rewritten))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// The `tools/list` answer to `id` in `message`, with `"execution": execution(name)` added to
/// each tool that `execution` names and that has none; `None` when `message` is not that
/// answer (another id, an error, not a tool list). Only the answer's bytes are copied: the
/// tools are found with borrowed parses, and nothing of the list is decoded or encoded.
pub fn tool_executions<'v>(
    message: &[u8],
    id: &Value,
    execution: impl Fn(&str) -> Option<&'v Value>,
) -> Option<Vec<u8>> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(default)]
        id: Option<Value>,
        #[serde(borrow)]
        result: ToolList<'a>,
    }
    #[derive(Deserialize)]
    struct ToolList<'a> {
        #[serde(borrow)]
        tools: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct ToolProbe<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
        #[serde(default)]
        execution: Option<IgnoredAny>,
    }
    let answer = serde_json::from_slice::<Answer>(message).ok()?;
    if answer.id.as_ref() != Some(id) {
        return None;
    }
    // Where each addition goes (just after a tool's `{`), in order.
    let mut additions: Vec<(usize, &Value)> = Vec::new();
    for tool in &answer.result.tools {
        let text = tool.get();
        let Ok(probe) = serde_json::from_str::<ToolProbe>(text) else {
            continue;
        };
        let Some(execution) = execution(&probe.name).filter(|_| probe.execution.is_none()) else {
            continue;
        };
        // The raw value borrows `message`: its offset there is where its text starts.
        let start = (text.as_ptr() as usize).checked_sub(message.as_ptr() as usize)?;
        additions.push((start + 1, execution));
    }
    let mut out = Vec::with_capacity(message.len() + additions.len() * 48);
    let mut copied = 0;
    for (at, execution) in additions {
        out.extend_from_slice(message.get(copied..at)?);
        out.extend_from_slice(b"\"execution\":");
        serde_json::to_writer(&mut out, execution).ok()?;
        // A tool has at least its name, so something follows.
        out.push(b',');
        copied = at;
    }
    out.extend_from_slice(message.get(copied..)?);
    Some(out)
}

/// An SSE body whose answer event is rewritten; events are cut at blank lines, across chunks.
fn stream<F>(body: Body, rewrite: F) -> Body
where
    F: FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static,
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
fn event(event: &[u8], rewrite: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
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
    // One data line is the usual event (rmcp writes each message on one): read in place.
    let joined;
    let message = match data.as_slice() {
        [one] => one.as_bytes(),
        _ => {
            joined = data.join("\n");
            joined.as_bytes()
        }
    };
    let rewritten = rewrite(message)?;
    let mut out =
        Vec::with_capacity(event.len().saturating_sub(message.len()) + rewritten.len() + 8);
    for field in fields {
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&rewritten);
    out.extend_from_slice(b"\n\n");
    Some(out)
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

    #[test]
    fn tool_executions_splices_what_a_parse_and_rewrite_would_write() {
        let optional = json!({"taskSupport": "optional"});
        let named = |name: &str| (name == "run" || name == "es\"caped").then_some(&optional);
        let list = json!({"jsonrpc": "2.0", "id": 3, "result": {
            "tools": [
                {"name": "run", "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}}},
                {"name": "other", "inputSchema": {"type": "object"}},
                {"inputSchema": {"type": "object"}, "name": "es\"caped"},
                {"name": "run", "execution": {"taskSupport": "required"}, "inputSchema": {}}
            ],
            "nextCursor": "c"}});
        let bytes = serde_json::to_vec(&list).expect("JSON");
        let spliced = tool_executions(&bytes, &json!(3), named).expect("the answer");
        let spliced: Value = serde_json::from_slice(&spliced).expect("still JSON");
        let mut expected = list.clone();
        for tool in expected["result"]["tools"].as_array_mut().expect("tools") {
            let name = tool["name"].as_str().unwrap_or_default().to_owned();
            if tool.get("execution").is_none() && named(&name).is_some() {
                tool["execution"] = optional.clone();
            }
        }
        assert_eq!(spliced, expected);
        // Only the answer to the request, and only a tool list.
        assert!(tool_executions(&bytes, &json!(4), named).is_none());
        let error = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"no"}}"#;
        assert!(tool_executions(error, &json!(3), named).is_none());
        let other = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#;
        assert!(tool_executions(other, &json!(3), named).is_none());
    }

    #[tokio::test]
    async fn a_tool_list_in_a_multi_line_event_is_spliced() {
        let optional = json!({"taskSupport": "optional"});
        let event = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"l\",\ndata: \"result\":{\"tools\":[{\"name\":\"run\"}]}}\n\n";
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from(event))
            .expect("a response");
        let out = answer_bytes(response, move |message| {
            tool_executions(message, &json!("l"), |_| Some(&optional))
        })
        .await;
        let bytes = axum::body::to_bytes(out.into_body(), usize::MAX)
            .await
            .expect("the body");
        let text = String::from_utf8(bytes.to_vec()).expect("text");
        let data = text
            .strip_prefix("event: message\ndata: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .expect("one event");
        let message: Value = serde_json::from_str(data).expect("JSON");
        assert_eq!(
            message["result"]["tools"][0]["execution"]["taskSupport"],
            "optional"
        );
    }
}
