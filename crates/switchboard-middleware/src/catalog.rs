//! The gateway's tools as an LLM sees them, and tool results as an LLM reads them.
//!
//! LLM APIs accept tool names matching `^[a-zA-Z0-9_-]{1,64}$` (OpenAI; others are as strict
//! or stricter about the first character), while MCP names may contain dots, slashes or be
//! longer. [`Catalog`] gives every gateway tool a valid, unique LLM-facing name and maps the
//! names the LLM uses back to the gateway's. Results are rendered to text and cut to a size
//! the LLM's context can take, with a note saying so.

use std::collections::HashSet;

use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::{Value, json};

use crate::{events::ToolImage, llm::ToolSpec};

/// Longest name LLM APIs accept.
const MAX_NAME: usize = 64;

/// One gateway tool and its LLM-facing name.
#[derive(Debug, Clone)]
pub struct Entry {
    pub llm_name: String,
    pub tool: Tool,
}

/// The tools of one chat, fixed when the chat starts.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
}

impl Catalog {
    /// Name every tool; the gateway's order is kept, so names are stable for a given list.
    pub fn new(tools: &[Tool]) -> Self {
        let mut taken = HashSet::new();
        let entries = tools
            .iter()
            .cloned()
            .map(|tool| {
                let base = sanitize(&tool.name);
                let mut name = base.clone();
                let mut n = 2;
                while !taken.insert(name.clone()) {
                    let suffix = format!("_{n}");
                    name = format!("{}{suffix}", cut(&base, MAX_NAME - suffix.len()));
                    n += 1;
                }
                Entry {
                    llm_name: name,
                    tool,
                }
            })
            .collect();
        Self { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The gateway tool behind a name the LLM used (its LLM-facing name, or the original).
    pub fn resolve(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.llm_name == name)
            .or_else(|| self.entries.iter().find(|e| e.tool.name == name))
    }

    /// A tool by its contract name (`execute_code`), also when the gateway prefixed it with an
    /// upstream name to resolve a collision (`code-executor.execute_code`, `x__execute_code`).
    pub fn find_by_base_name(&self, base: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.tool.name == base)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| has_base_name(&e.tool.name, base))
            })
    }

    /// The tools in the provider-neutral form sent to the LLM.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.entries
            .iter()
            .map(|e| ToolSpec {
                name: e.llm_name.clone(),
                description: e.tool.description.as_deref().unwrap_or_default().to_owned(),
                parameters: parameters(&e.tool),
            })
            .collect()
    }

    /// The tools in OpenAI's function-calling format.
    pub fn openai_functions(&self) -> Vec<Value> {
        self.specs()
            .into_iter()
            .map(|s| {
                json!({
                    "type": "function",
                    "function": { "name": s.name, "description": s.description, "parameters": s.parameters },
                })
            })
            .collect()
    }
}

/// Whether the gateway name `name` is the contract name `base`, alone or after an upstream
/// prefix the gateway added (`code-executor.execute_code`, `x__execute_code`).
pub fn has_base_name(name: &str, base: &str) -> bool {
    name == base
        || name
            .strip_suffix(base)
            .is_some_and(|prefix| prefix.ends_with(['.', '_', '/', ':', '-']))
}

/// A tool's input schema as LLM APIs want it: an object schema, without `$schema`.
fn parameters(tool: &Tool) -> Value {
    let mut schema = tool.input_schema.as_ref().clone();
    schema.remove("$schema");
    schema
        .entry("type")
        .or_insert_with(|| Value::String("object".into()));
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        schema
            .entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Value::Object(schema)
}

/// A valid LLM tool name for `name`: invalid characters become `_`, a name that does not
/// start with a letter or `_` gets a `t_` prefix, and an over-long name is cut and given a
/// short hash of the whole name so two long names stay apart.
pub fn sanitize(name: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !clean.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        clean.insert_str(0, "t_");
    }
    if clean.len() > MAX_NAME {
        let hash = format!("_{:08x}", fnv1a(name.as_bytes()));
        clean = format!("{}{hash}", cut(&clean, MAX_NAME - hash.len()));
    }
    clean
}

/// The first `max` bytes of an ASCII string.
fn cut(s: &str, max: usize) -> &str {
    &s[..s.len().min(max)]
}

/// FNV-1a, 32 bits: a stable short hash for names (no cryptographic need here).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// A tool result as text: text blocks as they are, other blocks described, structured content
/// as JSON when there is no text.
pub fn render(result: &CallToolResult) -> String {
    let parts: Vec<String> = result
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::Image(i) => {
                format!("[image {}, {} bytes base64]", i.mime_type, i.data.len())
            }
            ContentBlock::Audio(a) => {
                format!("[audio {}, {} bytes base64]", a.mime_type, a.data.len())
            }
            ContentBlock::Resource(r) => match serde_json::to_value(&r.resource) {
                Ok(v) => v["text"]
                    .as_str()
                    .map_or_else(|| format!("[resource {}]", v["uri"]), str::to_owned),
                Err(_) => "[resource]".to_owned(),
            },
            ContentBlock::ResourceLink(link) => format!("[resource link {}]", link.uri),
            _ => "[content of an unknown kind]".to_owned(),
        })
        .collect();
    let text = parts.join("\n");
    if !text.trim().is_empty() {
        return text;
    }
    match &result.structured_content {
        Some(value) => value.to_string(),
        None => "(the tool returned no output)".to_owned(),
    }
}

/// The pictures of a tool result (its image content blocks), named after the files the tool
/// reported in its structured content (`images: [{name, content_base64}]`, as `execute_code`
/// does) when the data matches, else `image-<n>.<ext>`.
pub fn images(result: &CallToolResult) -> Vec<ToolImage> {
    let named: Vec<(&str, &str)> = result
        .structured_content
        .as_ref()
        .and_then(|s| s.get("images"))
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| Some((f["name"].as_str()?, f["content_base64"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    result
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Image(image) => Some(image),
            _ => None,
        })
        .enumerate()
        .map(|(n, image)| {
            let name = named
                .iter()
                .find(|(_, data)| *data == image.data)
                .map(|(name, _)| (*name).to_owned())
                .unwrap_or_else(|| {
                    let extension = image.mime_type.rsplit('/').next().unwrap_or("bin");
                    let extension = extension.split('+').next().unwrap_or(extension);
                    format!("image-{}.{extension}", n + 1)
                });
            ToolImage {
                name,
                mime_type: image.mime_type.clone(),
                data: image.data.clone(),
            }
        })
        .collect()
}

/// `text` cut to `max` characters with a note saying how much was left out; the flag says
/// whether it was cut.
pub fn truncate(text: String, max: usize) -> (String, bool) {
    let total = text.chars().count();
    match text.char_indices().nth(max) {
        None => (text, false),
        Some((cut, _)) => (
            format!(
                "{}\n[truncated: showing the first {max} of {total} characters]",
                &text[..cut]
            ),
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Tool {
        let schema = json!({"type": "object", "properties": {"x": {"type": "string"}}, "$schema": "https://json-schema.org/draft/2020-12/schema"});
        let Value::Object(schema) = schema else {
            unreachable!("object literal")
        };
        Tool::new(name.to_owned(), "does things", std::sync::Arc::new(schema))
    }

    #[test]
    fn names_are_made_valid_unique_and_map_back() {
        let catalog = Catalog::new(&[
            tool("time-client.get_current_time"),
            tool("time-client/get_current_time"),
            tool("9lives"),
            tool(&"x".repeat(100)),
            tool(&format!("{}y", "x".repeat(99))),
            tool("execute_code"),
        ]);
        let names: Vec<_> = catalog
            .entries()
            .iter()
            .map(|e| e.llm_name.as_str())
            .collect();
        assert_eq!(names[0], "time-client_get_current_time");
        assert_eq!(names[1], "time-client_get_current_time_2");
        assert_eq!(names[2], "t_9lives");
        assert_eq!(names[3].len(), 64);
        assert_ne!(names[3], names[4]);
        for name in &names {
            assert!(
                name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
        }
        let back = catalog
            .resolve("time-client_get_current_time_2")
            .expect("maps back");
        assert_eq!(back.tool.name, "time-client/get_current_time");
        assert!(
            catalog.resolve("time-client.get_current_time").is_some(),
            "original names work too"
        );
        assert_eq!(
            catalog
                .find_by_base_name("get_current_time")
                .map(|e| e.tool.name.as_ref()),
            Some("time-client.get_current_time")
        );
        assert_eq!(
            catalog
                .find_by_base_name("execute_code")
                .map(|e| e.llm_name.as_str()),
            Some("execute_code")
        );
        let spec = &catalog.specs()[0];
        assert!(spec.parameters.get("$schema").is_none());
        assert_eq!(catalog.openai_functions()[0]["type"], "function");
    }

    #[test]
    fn long_results_are_cut_with_a_note() {
        let (short, cut) = truncate("héllo".to_owned(), 10);
        assert_eq!((short.as_str(), cut), ("héllo", false));
        let (long, cut) = truncate("é".repeat(30), 10);
        assert!(cut);
        assert!(long.starts_with(&"é".repeat(10)));
        assert!(long.contains("first 10 of 30 characters"), "{long}");
    }

    #[test]
    fn images_are_named_after_the_files_the_tool_reported() {
        let mut result = CallToolResult::success(vec![
            ContentBlock::text("drew two"),
            ContentBlock::image("AAAA", "image/png"),
            ContentBlock::image("BBBB", "image/svg+xml"),
        ]);
        result.structured_content = Some(json!({"images": [
            {"name": "outputs/chart.png", "mime_type": "image/png", "size": 3, "content_base64": "AAAA"}
        ]}));
        let images = images(&result);
        assert_eq!(images.len(), 2);
        assert_eq!(
            (images[0].name.as_str(), images[0].data.as_str()),
            ("outputs/chart.png", "AAAA")
        );
        assert_eq!(images[1].name, "image-2.svg");
        assert_eq!(images[1].mime_type, "image/svg+xml");
    }

    #[test]
    fn results_render_text_then_structured_content() {
        let mut result = CallToolResult::success(vec![ContentBlock::text("Hello")]);
        assert_eq!(render(&result), "Hello");
        result.content.clear();
        result.structured_content = Some(json!({"a": 1}));
        assert_eq!(render(&result), "{\"a\":1}");
    }
}
