//! Talking to an LLM: one provider-neutral conversation model and two wire formats.
//!
//! - [`openai`]: OpenAI-compatible chat completions (OpenAI, Ollama's `/v1`, vLLM, llama.cpp
//!   server), including streamed tool-call deltas assembled per index and id.
//! - [`ollama`]: Ollama's native `/api/chat` — NDJSON streaming, tool arguments as objects, no
//!   call ids.
//! - [`delta`]: assembling streamed OpenAI-compatible chunks, tool-call fragments included.
//! - [`http`]: the HTTP(S) client both use (the workspace's one client stack, proxies included).
//!
//! [`Llm::turn`] sends the conversation and returns one assistant turn: its text and the tool
//! calls it asks for. Streaming is a transport detail: when a text callback is given, the
//! request streams and the callback sees each text fragment as it arrives.

pub mod delta;
pub mod http;
pub mod ollama;
pub mod openai;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{LlmSettings, Provider};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of a conversation, in the shape both wire formats can express.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Tool calls an assistant message asked for.
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this is the result of.
    pub tool_call_id: Option<String>,
    /// For `Role::Tool`: the (LLM-facing) name of the tool that produced it.
    pub tool_name: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
        }
    }
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls,
            ..Self::new(Role::Assistant, content)
        }
    }
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call.id.clone()),
            tool_name: Some(call.name.clone()),
            ..Self::new(Role::Tool, content)
        }
    }
}

/// A tool call the LLM asked for. `arguments` is the JSON text as the LLM wrote it; it is
/// parsed when the call is made, so malformed arguments become a tool error the LLM can read.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    /// The LLM-facing (sanitised) tool name.
    pub name: String,
    pub arguments: String,
}

/// A tool offered to the LLM.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// LLM-facing name: `^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$`.
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: serde_json::Value,
}

/// Sampling options a client may pass through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u64>,
}

/// Token counts, summed over every LLM request of a chat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// What is sent for one turn.
#[derive(Debug, Clone)]
pub struct TurnRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [Message],
    pub tools: &'a [ToolSpec],
    /// Ask for an answer without tool calls (the final wrap-up turn).
    pub no_more_tools: bool,
    pub sampling: &'a Sampling,
}

/// One assistant turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Turn {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
}

/// Why an LLM request failed. Every message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(
        "cannot reach the LLM at {url}: {reason}; check LLM_BASE_URL and that the LLM server is running"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the LLM at {url} did not answer within {after:?}; it may be overloaded or still loading the model (limit: MIDDLEWARE_LLM_TIMEOUT_SECONDS)"
    )]
    Timeout { url: String, after: Duration },
    #[error("the LLM at {url} answered {status}: {message}{hint}")]
    Status {
        url: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
    #[error("the LLM at {url} sent a response that could not be read: {reason}")]
    Protocol { url: String, reason: String },
}

impl LlmError {
    /// A hint for common statuses, appended to the message.
    pub fn hint_for(status: u16) -> &'static str {
        match status {
            401 | 403 => " (check LLM_API_KEY)",
            404 => " (check LLM_BASE_URL, LLM_PROVIDER and LLM_MODEL_NAME)",
            429 => " (rate limited; try again later)",
            _ => "",
        }
    }
}

/// A configured LLM.
#[derive(Clone)]
pub struct Llm {
    settings: LlmSettings,
    client: http::HttpClient,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Llm {
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        let client = http::HttpClient::new(
            settings.timeout,
            &settings.proxy,
            settings.ca_file.as_deref(),
            &settings.base_url,
        )
        .map_err(|reason| LlmError::Unreachable {
            url: settings.base_url.clone(),
            reason,
        })?;
        Ok(Self { settings, client })
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    pub fn provider(&self) -> Provider {
        self.settings.provider
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.settings.model
    }

    /// Ask for one assistant turn. With `on_text`, the request streams and `on_text` receives
    /// each text fragment as it arrives; the returned [`Turn`] holds the whole text either way.
    pub async fn turn(
        &self,
        request: &TurnRequest<'_>,
        on_text: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<Turn, LlmError> {
        match self.settings.provider {
            Provider::Openai => openai::turn(&self.client, &self.settings, request, on_text).await,
            Provider::Ollama => ollama::turn(&self.client, &self.settings, request, on_text).await,
        }
    }

    /// Whether the LLM API answers at all (for `/health`): lists models, which every supported
    /// server offers and which costs no tokens.
    pub async fn probe(&self) -> Result<String, LlmError> {
        let url = match self.settings.provider {
            Provider::Openai => format!("{}/models", self.settings.base_url),
            Provider::Ollama => format!("{}/api/tags", self.settings.base_url),
        };
        let timeout = self.settings.timeout.min(Duration::from_secs(3));
        let (status, body) = self
            .client
            .get(&url, self.settings.api_key.as_deref(), timeout)
            .await?;
        if (200..300).contains(&status) {
            Ok(format!("{url} answered {status}"))
        } else {
            Err(LlmError::Status {
                message: http::error_message(&body),
                hint: LlmError::hint_for(status),
                url,
                status,
            })
        }
    }
}
