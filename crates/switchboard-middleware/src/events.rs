//! What a chat produces: the answer, the record of each tool call, and the typed events a
//! streaming client sees while the chat runs.
//!
//! With `stream: true`, `POST /chat` sends each [`ChatEvent`] as one SSE event whose `event:`
//! is the `type` and whose `data:` is the event as JSON:
//!
//! | type | data |
//! |---|---|
//! | `text` | `{delta}`: a piece of the answer |
//! | `tool_call_started` | `{id, name, arguments}` |
//! | `tool_call_progress` | `{id, task_id, status, message, elapsed_ms}`: a code tool running as an MCP task reports its status (about every second) |
//! | `tool_call_finished` | a [`ToolCallRecord`] |
//! | `usage` | `{prompt_tokens, completion_tokens, total_tokens}` after each LLM request |
//! | `done` | the whole [`ChatAnswer`], last event of a successful chat |
//! | `error` | `{code, message}`, last event of a failed chat |

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::llm::Usage;

/// Who produced the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The configured LLM.
    Llm,
    /// The built-in offline planner (no LLM configured).
    OfflinePlanner,
}

/// One tool call as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    /// The call id (the LLM's, or made up for the planner and for Ollama).
    pub id: String,
    /// The gateway's name of the tool.
    pub name: String,
    /// The arguments as sent (or as the LLM wrote them, when they were not valid JSON).
    pub arguments: serde_json::Value,
    /// The result as text, as the LLM read it (cut when over the size limit).
    pub result: String,
    /// The tool's structured result, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<serde_json::Value>,
    /// The tool failed, or the call could not be made; `result` says why.
    pub is_error: bool,
    /// `result` was cut to the size limit.
    #[serde(default)]
    pub truncated: bool,
    /// When the call started, in milliseconds since the chat started.
    pub started_ms: f64,
    /// How long the call took, in milliseconds.
    pub duration_ms: f64,
    /// Pictures the tool returned (MCP image content, e.g. a plot from `execute_code`), for
    /// the page and API clients to show; the LLM reads only `result`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ToolImage>,
}

/// One picture a tool returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolImage {
    /// A file name for it: the one the tool gave (`figure-1.png`, `outputs/chart.png`), else
    /// `image-<n>` with the MIME type's extension.
    pub name: String,
    /// `image/png`, `image/jpeg`, ...
    pub mime_type: String,
    /// The picture, base64 (standard alphabet).
    pub data: String,
}

/// The answer to a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAnswer {
    pub response: String,
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: Usage,
    /// The model that answered (`offline-planner` for the planner).
    pub model: String,
    pub source: Source,
    /// LLM requests made (0 for the planner).
    pub llm_requests: usize,
    /// What went wrong without failing the chat (e.g. the gateway was unreachable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The conversation the client named (`conversation_id` in the request): its code runs
    /// in one sandbox session until the conversation ends or idles out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// An event of a running chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    Text {
        delta: String,
    },
    ToolCallStarted {
        id: String,
        name: String,
        arguments: serde_json::Value,
    },
    ToolCallProgress {
        id: String,
        task_id: String,
        /// The task's status: `working`, `input_required`, `completed`, `failed`, `cancelled`.
        status: String,
        /// The server's `statusMessage`, e.g. "Running."
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        elapsed_ms: f64,
    },
    ToolCallFinished(ToolCallRecord),
    Usage(Usage),
    Done(ChatAnswer),
    Error {
        code: String,
        message: String,
    },
}

impl ChatEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            ChatEvent::Text { .. } => "text",
            ChatEvent::ToolCallStarted { .. } => "tool_call_started",
            ChatEvent::ToolCallProgress { .. } => "tool_call_progress",
            ChatEvent::ToolCallFinished(_) => "tool_call_finished",
            ChatEvent::Usage(_) => "usage",
            ChatEvent::Done(_) => "done",
            ChatEvent::Error { .. } => "error",
        }
    }
}

/// Where a chat reports its events: a channel to a streaming response, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct EventSink {
    tx: Option<mpsc::UnboundedSender<ChatEvent>>,
}

impl EventSink {
    /// Events are dropped (a non-streaming request).
    pub fn none() -> Self {
        Self { tx: None }
    }

    /// Events go to the returned receiver. Unbounded is fine: events are at most as large as
    /// what the LLM and the tools produce for this one chat, which the answer holds anyway.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<ChatEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx: Some(tx) }, rx)
    }

    pub fn is_streaming(&self) -> bool {
        self.tx.is_some()
    }

    pub fn emit(&self, event: ChatEvent) {
        if let Some(tx) = &self.tx {
            // A closed channel means the client went away; the chat task is being aborted.
            let _ = tx.send(event);
        }
    }
}
