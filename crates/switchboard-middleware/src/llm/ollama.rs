//! Ollama's native chat API: `POST {base}/api/chat`.
//!
//! Differences from the OpenAI format: a streamed answer is NDJSON (one JSON object per line,
//! the last with `"done": true` and the token counts); tool calls arrive whole, with
//! `arguments` as a JSON object and no call id (ids are made up here, `call_0`, `call_1`, ...);
//! a tool result names its tool with `tool_name` instead of a call id; sampling options sit
//! under `options` (`num_predict` for the token limit).

use serde_json::{Map, Value, json};

use super::{
    LlmError, Message, Role, ToolCall, ToolSpec, Turn, TurnRequest, Usage,
    http::{self, BodyReader, HttpClient},
};
use crate::config::LlmSettings;

/// The JSON body of an `/api/chat` request.
pub fn request_body(request: &TurnRequest<'_>, stream: bool) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": request.messages.iter().map(message_json).collect::<Vec<_>>(),
        "stream": stream,
    });
    // Ollama has no `tool_choice`: the wrap-up turn is asked without tools.
    if !request.tools.is_empty() && !request.no_more_tools {
        body["tools"] = Value::Array(request.tools.iter().map(tool_json).collect());
    }
    let mut options = Map::new();
    if let Some(t) = request.sampling.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.sampling.top_p {
        options.insert("top_p".into(), json!(p));
    }
    if let Some(n) = request.sampling.max_tokens {
        options.insert("num_predict".into(), json!(n));
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
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
            "content": message.content,
            "tool_calls": message.tool_calls.iter().map(|c| json!({
                "function": {
                    "name": c.name,
                    "arguments": serde_json::from_str::<Value>(&c.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({})),
                },
            })).collect::<Vec<_>>(),
        }),
        Role::Tool => json!({
            "role": "tool",
            "content": message.content,
            "tool_name": message.tool_name,
        }),
        role => json!({ "role": role, "content": message.content }),
    }
}

/// One turn over the native API.
pub async fn turn(
    client: &HttpClient,
    settings: &LlmSettings,
    request: &TurnRequest<'_>,
    on_text: Option<&mut (dyn FnMut(&str) + Send)>,
) -> Result<Turn, LlmError> {
    let url = format!("{}/api/chat", settings.base_url);
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
    let mut assembler = LineAssembler::default();
    match on_text {
        None => {
            let body = http::read_all(&url, response.into_body(), settings.timeout).await?;
            let value: Value = serde_json::from_slice(&body).map_err(|e| LlmError::Protocol {
                url: url.clone(),
                reason: format!("not JSON ({e})"),
            })?;
            assembler
                .push(&value)
                .map_err(|message| status_in_body(&url, message))?;
        }
        Some(on_text) => {
            let mut reader = BodyReader::new(&url, response.into_body(), settings.timeout);
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let data = reader.next().await?;
                let at_end = data.is_none();
                if let Some(data) = data {
                    pending.extend_from_slice(&data);
                }
                // Every complete line is one JSON object; at the end, so is what is left.
                while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=newline).collect();
                    handle_line(&url, &line, &mut assembler, on_text)?;
                }
                if at_end {
                    let rest = std::mem::take(&mut pending);
                    handle_line(&url, &rest, &mut assembler, on_text)?;
                    break;
                }
                if assembler.done {
                    break;
                }
            }
        }
    }
    Ok(assembler.finish())
}

fn handle_line(
    url: &str,
    line: &[u8],
    assembler: &mut LineAssembler,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<(), LlmError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| LlmError::Protocol {
        url: url.to_owned(),
        reason: format!(
            "a stream line is not JSON ({e}): {}",
            String::from_utf8_lossy(line).trim()
        ),
    })?;
    match assembler.push(&value) {
        Ok(Some(text)) => {
            on_text(&text);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(message) => Err(status_in_body(url, message)),
    }
}

fn status_in_body(url: &str, message: String) -> LlmError {
    LlmError::Status {
        url: url.to_owned(),
        status: 200,
        message,
        hint: "",
    }
}

/// Assembles `/api/chat` objects (one for a whole answer, many for a stream) into a [`Turn`].
#[derive(Debug, Default)]
pub struct LineAssembler {
    text: String,
    tool_calls: Vec<ToolCall>,
    usage: Option<Usage>,
    done: bool,
}

impl LineAssembler {
    /// Take one object; returns its text fragment, or the error it reports.
    pub fn push(&mut self, value: &Value) -> Result<Option<String>, String> {
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            return Err(error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned));
        }
        if let Some(calls) = value
            .pointer("/message/tool_calls")
            .and_then(Value::as_array)
        {
            for call in calls {
                let n = self.tool_calls.len();
                self.tool_calls.push(ToolCall {
                    id: call["id"]
                        .as_str()
                        .filter(|id| !id.is_empty())
                        .map_or_else(|| format!("call_{n}"), str::to_owned),
                    name: call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: match call.pointer("/function/arguments") {
                        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                        Some(v @ Value::Object(_)) => v.to_string(),
                        _ => "{}".to_owned(),
                    },
                });
            }
        }
        if value["done"].as_bool() == Some(true) {
            self.done = true;
            let prompt = value["prompt_eval_count"].as_u64().unwrap_or(0);
            let completion = value["eval_count"].as_u64().unwrap_or(0);
            if prompt + completion > 0 {
                self.usage = Some(Usage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    total_tokens: prompt + completion,
                });
            }
        }
        let text = value
            .pointer("/message/content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        Ok(text.map(|t| {
            self.text.push_str(t);
            t.to_owned()
        }))
    }

    pub fn finish(self) -> Turn {
        Turn {
            text: self.text,
            tool_calls: self.tool_calls,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Sampling;

    #[test]
    fn stream_lines_make_one_turn_with_made_up_ids() {
        let mut a = LineAssembler::default();
        let lines = [
            json!({"message": {"role": "assistant", "content": "Run"}, "done": false}),
            json!({"message": {"role": "assistant", "content": "ning.", "tool_calls": [
                {"function": {"name": "execute_code", "arguments": {"code": "print(1)"}}},
                {"function": {"name": "get_current_time", "arguments": {}}},
            ]}, "done": false}),
            json!({"message": {"role": "assistant", "content": ""}, "done": true, "prompt_eval_count": 10, "eval_count": 5}),
        ];
        let texts: Vec<_> = lines
            .iter()
            .filter_map(|l| a.push(l).expect("no error"))
            .collect();
        assert_eq!(texts, ["Run", "ning."]);
        assert!(a.done);
        let turn = a.finish();
        assert_eq!(turn.tool_calls[0].id, "call_0");
        assert_eq!(turn.tool_calls[1].id, "call_1");
        let args: Value = serde_json::from_str(&turn.tool_calls[0].arguments).expect("json");
        assert_eq!(args["code"], "print(1)");
        assert_eq!(turn.usage.map(|u| u.total_tokens), Some(15));
        assert_eq!(
            LineAssembler::default().push(&json!({"error": "model 'x' not found"})),
            Err("model 'x' not found".to_owned())
        );
    }

    #[test]
    fn history_uses_argument_objects_and_tool_names() {
        let call = ToolCall {
            id: "call_0".into(),
            name: "get_current_time".into(),
            arguments: "{\"timezone\":\"UTC\"}".into(),
        };
        let messages = vec![
            Message::new(Role::User, "time?"),
            Message::assistant("", vec![call.clone()]),
            Message::tool_result(&call, "12:00"),
        ];
        let sampling = Sampling {
            max_tokens: Some(50),
            ..Default::default()
        };
        let tools = [ToolSpec {
            name: "get_current_time".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }];
        let body = request_body(
            &TurnRequest {
                model: "llama3.1",
                messages: &messages,
                tools: &tools,
                no_more_tools: false,
                sampling: &sampling,
            },
            false,
        );
        assert_eq!(
            body["messages"][1]["tool_calls"][0]["function"]["arguments"]["timezone"],
            "UTC"
        );
        assert_eq!(body["messages"][2]["tool_name"], "get_current_time");
        assert_eq!(body["options"]["num_predict"], 50);
        assert_eq!(body["tools"][0]["function"]["name"], "get_current_time");
    }
}
