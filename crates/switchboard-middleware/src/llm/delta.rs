//! Assembling a streamed OpenAI-compatible answer from its chunks.
//!
//! Tool calls arrive as fragments: the first fragment of a call carries its `index`, `id`
//! and `function.name`, later ones only `index` and a piece of `function.arguments`. Calls are
//! keyed by index *and* id — some servers reuse index 0 for every call and tell calls apart
//! only by id — and a name repeated in every fragment (another server habit) is kept once.

use serde_json::Value;

use super::{ToolCall, Turn, Usage, openai::parse_usage};

/// A tool call being assembled from stream fragments.
#[derive(Debug, Default)]
struct PartialCall {
    index: u64,
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Assembles streamed chunks into a [`Turn`].
#[derive(Debug, Default)]
pub struct DeltaAssembler {
    text: String,
    calls: Vec<PartialCall>,
    usage: Option<Usage>,
}

impl DeltaAssembler {
    /// Take one chunk; returns its text fragment, if any.
    pub fn push(&mut self, chunk: &Value) -> Option<String> {
        if let Some(usage) = parse_usage(&chunk["usage"]) {
            self.usage = Some(usage);
        }
        let delta = chunk.pointer("/choices/0/delta")?;
        if let Some(fragments) = delta["tool_calls"].as_array() {
            for fragment in fragments {
                self.push_call_fragment(fragment);
            }
        }
        let text = delta["content"].as_str().filter(|t| !t.is_empty())?;
        self.text.push_str(text);
        Some(text.to_owned())
    }

    fn push_call_fragment(&mut self, fragment: &Value) {
        let id = fragment["id"].as_str().filter(|id| !id.is_empty());
        let index = fragment["index"].as_u64().unwrap_or_else(|| {
            // No index: a new call if it brings an id, else a continuation of the last one.
            match (id, self.calls.last()) {
                (None, Some(last)) => last.index,
                _ => self.calls.len() as u64,
            }
        });
        let position = self.calls.iter().rposition(|c| c.index == index);
        let starts_new = match (position, id) {
            (None, _) => true,
            (Some(p), Some(id)) => self.calls[p].id.as_deref().is_some_and(|known| known != id),
            (Some(_), None) => false,
        };
        if starts_new {
            self.calls.push(PartialCall {
                index,
                ..Default::default()
            });
        }
        let Some(call) = (if starts_new {
            self.calls.last_mut()
        } else {
            position.and_then(|p| self.calls.get_mut(p))
        }) else {
            return;
        };
        if call.id.is_none() {
            call.id = id.map(str::to_owned);
        }
        if let Some(name) = fragment.pointer("/function/name").and_then(Value::as_str) {
            // Some servers repeat the whole name in every fragment.
            if call.name != name {
                call.name.push_str(name);
            }
        }
        match fragment.pointer("/function/arguments") {
            Some(Value::String(piece)) => call.arguments.push_str(piece),
            Some(Value::Object(o)) => call.arguments = Value::Object(o.clone()).to_string(),
            _ => {}
        }
    }

    pub fn finish(self) -> Turn {
        Turn {
            text: self.text,
            tool_calls: self
                .calls
                .into_iter()
                .enumerate()
                .map(|(i, c)| ToolCall {
                    id: c.id.unwrap_or_else(|| format!("call_{i}")),
                    name: c.name,
                    arguments: if c.arguments.trim().is_empty() {
                        "{}".to_owned()
                    } else {
                        c.arguments
                    },
                })
                .collect(),
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chunk(delta: Value) -> Value {
        json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": delta }] })
    }

    #[test]
    fn fragments_are_joined_per_index() {
        let mut a = DeltaAssembler::default();
        a.push(&chunk(json!({"role": "assistant", "content": "Let me "})));
        a.push(&chunk(json!({"content": "check."})));
        a.push(&chunk(json!({"tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "execute_code", "arguments": ""}},
        ]})));
        a.push(&chunk(json!({"tool_calls": [
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_current_time", "arguments": "{}"}},
        ]})));
        a.push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"code\": \"pri"}}]}),
        ));
        a.push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "nt(1)\"}"}}]}),
        ));
        a.push(&json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}));
        let turn = a.finish();
        assert_eq!(turn.text, "Let me check.");
        assert_eq!(turn.tool_calls.len(), 2);
        assert_eq!(turn.tool_calls[0].id, "call_a");
        assert_eq!(turn.tool_calls[0].name, "execute_code");
        assert_eq!(turn.tool_calls[0].arguments, "{\"code\": \"print(1)\"}");
        assert_eq!(turn.tool_calls[1].name, "get_current_time");
        assert_eq!(turn.usage.map(|u| u.total_tokens), Some(7));
    }

    #[test]
    fn calls_sharing_index_zero_are_told_apart_by_id() {
        let mut a = DeltaAssembler::default();
        for (id, name, args) in [("x1", "a", "{\"n\":"), ("x2", "b", "{}")] {
            a.push(&chunk(json!({"tool_calls": [{"index": 0, "id": id, "function": {"name": name, "arguments": args}}]})));
            if id == "x1" {
                a.push(&chunk(json!({"tool_calls": [{"index": 0, "function": {"name": "a", "arguments": "1}"}}]})));
            }
        }
        let turn = a.finish();
        let names: Vec<_> = turn
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(names, [("x1", "a", "{\"n\":1}"), ("x2", "b", "{}")]);
    }
}
