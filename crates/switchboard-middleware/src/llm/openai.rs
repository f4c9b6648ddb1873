//! OpenAI-compatible chat completions: `POST {base}/chat/completions`.
//!
//! Streaming answers are SSE `data:` lines with `chat.completion.chunk` objects ending in
//! `data: [DONE]`; [`super::delta::DeltaAssembler`] puts their fragments back together.

use futures::StreamExt;
use serde_json::{Value, json};
use sse_stream::SseStream;

use super::{
    LlmError, Message, Role, ToolCall, ToolSpec, Turn, TurnRequest, Usage,
    delta::DeltaAssembler,
    http::{self, HttpClient},
};
use crate::config::LlmSettings;

/// The JSON body of a chat completions request.
pub fn request_body(request: &TurnRequest<'_>, stream: bool) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": request.messages.iter().map(message_json).collect::<Vec<_>>(),
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    if !request.tools.is_empty() {
        body["tools"] = Value::Array(request.tools.iter().map(tool_json).collect());
        if request.no_more_tools {
            body["tool_choice"] = json!("none");
        }
    }
    let sampling = request.sampling;
    if let Some(t) = sampling.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = sampling.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(n) = sampling.max_tokens {
        body["max_tokens"] = json!(n);
    }
    body
}

fn tool_json(tool: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        }
    })
}

fn message_json(message: &Message) -> Value {
    match message.role {
        Role::Assistant if !message.tool_calls.is_empty() => json!({
            "role": "assistant",
            "content": if message.content.is_empty() { Value::Null } else { json!(message.content) },
            "tool_calls": message.tool_calls.iter().map(|c| json!({
                "id": c.id,
                "type": "function",
                "function": { "name": c.name, "arguments": c.arguments },
            })).collect::<Vec<_>>(),
        }),
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content,
        }),
        role => json!({ "role": role, "content": message.content }),
    }
}

/// One turn over the OpenAI-compatible API.
pub async fn turn(
    client: &HttpClient,
    settings: &LlmSettings,
    request: &TurnRequest<'_>,
    on_text: Option<&mut (dyn FnMut(&str) + Send)>,
) -> Result<Turn, LlmError> {
    let url = format!("{}/chat/completions", settings.base_url);
    let body = request_body(request, on_text.is_some());
    let bytes = serde_json::to_vec(&body).map_err(|e| LlmError::Protocol {
        url: url.clone(),
        reason: format!("cannot encode the request: {e}"),
    })?;
    let response = client
        .post(&url, settings.api_key.as_deref(), bytes, settings.timeout)
        .await?;
    if !response.status().is_success() {
        return Err(http::status_error(&url, response, settings.timeout).await);
    }
    match on_text {
        None => {
            let body = http::read_all(&url, response.into_body(), settings.timeout).await?;
            let value: Value = serde_json::from_slice(&body).map_err(|e| LlmError::Protocol {
                url: url.clone(),
                reason: format!("not JSON ({e})"),
            })?;
            parse_completion(&value).map_err(|reason| LlmError::Protocol { url, reason })
        }
        Some(on_text) => {
            let mut events = SseStream::new(response.into_body());
            let mut assembler = DeltaAssembler::default();
            loop {
                let event = match tokio::time::timeout(settings.timeout, events.next()).await {
                    Err(_) => {
                        return Err(LlmError::Timeout {
                            url,
                            after: settings.timeout,
                        });
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        return Err(LlmError::Protocol {
                            url,
                            reason: format!("the event stream broke: {e}"),
                        });
                    }
                    Ok(Some(Ok(event))) => event,
                };
                let Some(data) = event.data else { continue };
                let data = data.trim();
                if data == "[DONE]" {
                    break;
                }
                if data.is_empty() {
                    continue;
                }
                let chunk: Value = serde_json::from_str(data).map_err(|e| LlmError::Protocol {
                    url: url.clone(),
                    reason: format!("a stream chunk is not JSON ({e}): {data}"),
                })?;
                if chunk.get("error").is_some_and(|e| !e.is_null()) {
                    return Err(LlmError::Status {
                        message: http::error_message(data.as_bytes()),
                        url,
                        status: 200,
                        hint: "",
                    });
                }
                if let Some(text) = assembler.push(&chunk) {
                    on_text(&text);
                }
            }
            Ok(assembler.finish())
        }
    }
}

/// A whole (non-streamed) completion.
pub fn parse_completion(value: &Value) -> Result<Turn, String> {
    let message = value
        .pointer("/choices/0/message")
        .ok_or_else(|| format!("no choices[0].message in {}", short_json(value)))?;
    let text = message["content"].as_str().unwrap_or_default().to_owned();
    let tool_calls = message["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, call)| ToolCall {
                    id: call["id"]
                        .as_str()
                        .filter(|id| !id.is_empty())
                        .map_or_else(|| format!("call_{i}"), str::to_owned),
                    name: call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: arguments_text(call.pointer("/function/arguments")),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Turn {
        text,
        tool_calls,
        usage: parse_usage(&value["usage"]),
    })
}

/// Arguments as JSON text: a string as sent, an object serialised, nothing as `{}`.
fn arguments_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Object(o)) => Value::Object(o.clone()).to_string(),
        _ => "{}".to_owned(),
    }
}

pub fn parse_usage(value: &Value) -> Option<Usage> {
    let prompt = value["prompt_tokens"].as_u64();
    let completion = value["completion_tokens"].as_u64();
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: value["total_tokens"]
            .as_u64()
            .unwrap_or(prompt + completion),
    })
}

fn short_json(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ids_and_arguments_get_defaults() {
        let value = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"function": {"name": "get_current_time"}},
            {"id": "c9", "function": {"name": "f", "arguments": {"a": 1}}},
        ]}}]});
        let turn = parse_completion(&value).expect("parses");
        assert_eq!(turn.text, "");
        assert_eq!(turn.tool_calls[0].id, "call_0");
        assert_eq!(turn.tool_calls[0].arguments, "{}");
        assert_eq!(turn.tool_calls[1].arguments, "{\"a\":1}");
        assert!(parse_completion(&json!({"nope": 1})).is_err());
    }

    #[test]
    fn wrap_up_requests_forbid_tools_and_history_round_trips() {
        let messages = vec![
            Message::new(Role::User, "hi"),
            Message::assistant(
                "",
                vec![ToolCall {
                    id: "c1".into(),
                    name: "t".into(),
                    arguments: "{}".into(),
                }],
            ),
            Message::tool_result(
                &ToolCall {
                    id: "c1".into(),
                    name: "t".into(),
                    arguments: "{}".into(),
                },
                "ok",
            ),
        ];
        let tools = [ToolSpec {
            name: "t".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }];
        let sampling = super::super::Sampling::default();
        let body = request_body(
            &TurnRequest {
                model: "m",
                messages: &messages,
                tools: &tools,
                no_more_tools: true,
                sampling: &sampling,
            },
            true,
        );
        assert_eq!(body["tool_choice"], "none");
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][1]["content"], Value::Null);
        assert_eq!(
            body["messages"][1]["tool_calls"][0]["function"]["name"],
            "t"
        );
        assert_eq!(body["messages"][2]["tool_call_id"], "c1");
    }
}
