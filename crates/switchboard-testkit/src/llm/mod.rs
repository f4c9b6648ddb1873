//! A scripted LLM server: the only test double of the suite, standing in for the external
//! LLM API in the tests and in the load generator's benchmarks.
//!
//! It speaks both wire formats the middleware supports, on one port:
//! - OpenAI-compatible `POST /v1/chat/completions` (JSON, or SSE chunks with tool calls split
//!   into fragments the way OpenAI sends them: the first fragment of a call carries index, id
//!   and name, the arguments follow in pieces), plus `GET /v1/models` (both also without the
//!   `/v1` prefix, for clients configured with the bare host);
//! - Ollama's native `POST /api/chat` (JSON, or NDJSON lines; tool arguments as objects, no
//!   call ids), plus `GET /api/tags`.
//!
//! Each chat request takes the next [`Reply`] of its [`Script`], in arrival order; once the
//! replies are used up, the script's [`Rule`] (if any) answers every further request, which
//! is how a benchmark gets any number of answers. A body that is not JSON is a 400 with an
//! API-style error. Tests read every request back with [`ScriptedLlm::requests`].

mod wire;

use std::{
    collections::VecDeque,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    http::{HeaderMap, header},
    routing::{get, post},
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the scripted LLM answers to one chat request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A plain answer.
    Text(String),
    /// Ask for tools (all in this one turn), with optional text before them.
    ToolCalls {
        text: String,
        calls: Vec<(String, Value)>,
    },
    /// An answer that quotes every tool result in the request, after `prefix` — what a
    /// model does when it "formats the results", and how tests see real tool output arrive.
    EchoToolResults { prefix: String },
    /// An HTTP error with an API-style error body.
    Fail { status: u16, message: String },
    /// A 200 whose body is `body` as is (for malformed answers).
    Raw { content_type: String, body: String },
    /// Never answer (until the server stops): for timeouts.
    Hang,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text(text.into())
    }
    /// Tool calls given as `(name, arguments)`.
    pub fn tools<N: Into<String>>(calls: impl IntoIterator<Item = (N, Value)>) -> Self {
        Reply::ToolCalls {
            text: String::new(),
            calls: calls.into_iter().map(|(n, a)| (n.into(), a)).collect(),
        }
    }
    pub fn echo(prefix: impl Into<String>) -> Self {
        Reply::EchoToolResults {
            prefix: prefix.into(),
        }
    }
    pub fn fail(status: u16, message: impl Into<String>) -> Self {
        Reply::Fail {
            status,
            message: message.into(),
        }
    }
}

/// A standing answer for every request the script has no reply left for:
///
/// 1. the last message is a tool result (`role: "tool"`): answer `The tool answered.`;
/// 2. tools are offered (and `tool_choice` is not `"none"`) and the last user message contains
///    the word `tool`: call the rule's tool with its arguments;
/// 3. anything else: answer `hello`.
#[derive(Debug, Clone)]
pub struct Rule {
    tool: String,
    arguments: Value,
}

impl Rule {
    /// Call `tool` with `arguments` when asked to use a tool.
    pub fn calling(tool: impl Into<String>, arguments: Value) -> Self {
        Self {
            tool: tool.into(),
            arguments,
        }
    }

    /// The reply to `request`, a chat request in either format.
    pub fn reply(&self, request: &Value) -> Reply {
        let messages = request["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if messages.last().is_some_and(|m| m["role"] == "tool") {
            return Reply::text("The tool answered.");
        }
        let has_tools = request["tools"].as_array().is_some_and(|t| !t.is_empty())
            && request["tool_choice"] != "none";
        let asks_for_tool = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .is_some_and(|text| text.to_lowercase().contains("tool"));
        if has_tools && asks_for_tool {
            Reply::tools([(self.tool.clone(), self.arguments.clone())])
        } else {
            Reply::text("hello")
        }
    }
}

/// How a scripted LLM answers.
#[derive(Debug, Clone)]
pub struct Script {
    replies: Vec<Reply>,
    rule: Option<Rule>,
    record: bool,
}

impl Script {
    /// `replies` in order; a request beyond them gets a 500 that says so. Every request is
    /// recorded.
    pub fn replies(replies: impl IntoIterator<Item = Reply>) -> Self {
        Self {
            replies: replies.into_iter().collect(),
            rule: None,
            record: true,
        }
    }

    /// `rule` for every request, none recorded: a benchmark sends more requests than memory
    /// should keep.
    pub fn endless(rule: Rule) -> Self {
        Self {
            replies: Vec::new(),
            rule: Some(rule),
            record: false,
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    /// The W3C trace context the caller sent, if any.
    pub traceparent: Option<String>,
    pub body: Value,
}

/// The server's state: the script being played and what it heard.
struct State {
    replies: Mutex<VecDeque<Reply>>,
    rule: Option<Rule>,
    record: bool,
    requests: Mutex<Vec<Recorded>>,
    /// Cancelled when the server stops; [`Reply::Hang`] waits for it.
    stop: CancellationToken,
}

impl State {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(script.replies.into()),
            rule: script.rule,
            record: script.record,
            requests: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        })
    }

    /// Record the request and take the next reply.
    fn next(&self, path: &str, headers: &HeaderMap, body: &Value) -> Reply {
        if self.record
            && let Ok(mut requests) = self.requests.lock()
        {
            let header = |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            requests.push(Recorded {
                path: path.to_owned(),
                authorization: header(header::AUTHORIZATION.as_str()),
                traceparent: header("traceparent"),
                body: body.clone(),
            });
        }
        let scripted = self.replies.lock().ok().and_then(|mut r| r.pop_front());
        scripted
            .or_else(|| self.rule.as_ref().map(|rule| rule.reply(body)))
            .unwrap_or_else(|| Reply::fail(500, "scripted LLM: no reply left for this request"))
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(wire::openai_chat))
        .route("/chat/completions", post(wire::openai_chat))
        .route("/v1/models", get(wire::models))
        .route("/models", get(wire::models))
        .route("/api/chat", post(wire::ollama_chat))
        .route("/api/tags", get(wire::models))
        .with_state(state)
}

/// Serve `script` on `listener` until `stop` completes: the load generator's `scripted-llm`
/// command, which binds where it is told and stops on a signal.
pub async fn serve(
    listener: TcpListener,
    script: Script,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = State::new(script);
    let hanging = state.stop.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            stop.await;
            // Release hanging requests, or the graceful shutdown would wait for them.
            hanging.cancel();
        })
        .await
}

/// A running scripted LLM for a test; stops when dropped.
pub struct ScriptedLlm {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.state.stop.cancel();
    }
}

impl ScriptedLlm {
    /// Start on `127.0.0.1:0` with `replies`, answered in order.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        Self::start_script(Script::replies(replies)).await
    }

    /// Start on `127.0.0.1:0` with `script`.
    pub async fn start_script(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let state = State::new(script);
        let app = router(state.clone());
        let stop = state.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Self { addr, state }
    }

    /// Base URL for `LLM_PROVIDER=openai`: `http://127.0.0.1:PORT/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL for `LLM_PROVIDER=ollama`: `http://127.0.0.1:PORT`.
    pub fn ollama_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every chat request received so far (none if the script does not record).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Replies not used yet.
    pub fn remaining(&self) -> usize {
        self.state.replies.lock().map(|r| r.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule() -> Rule {
        Rule::calling("get_current_time", json!({"timezone": "UTC"}))
    }

    fn text(reply: Reply) -> String {
        match reply {
            Reply::Text(text) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn the_rule() {
        let tools = json!([{"type": "function", "function": {"name": "get_current_time"}}]);
        let ask =
            json!({"messages": [{"role": "user", "content": "use a Tool please"}], "tools": tools});
        assert!(
            matches!(rule().reply(&ask), Reply::ToolCalls { calls, .. } if calls[0].0 == "get_current_time")
        );
        let no_tools = json!({"messages": [{"role": "user", "content": "use a tool"}]});
        assert_eq!(text(rule().reply(&no_tools)), "hello");
        let mut forbidden = ask.clone();
        forbidden["tool_choice"] = json!("none");
        assert_eq!(text(rule().reply(&forbidden)), "hello");
        let plain = json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools});
        assert_eq!(text(rule().reply(&plain)), "hello");
        let after_tool = json!({"messages": [
            {"role": "user", "content": "use a tool"},
            {"role": "assistant", "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_1", "content": "{}"}
        ], "tools": tools});
        assert_eq!(text(rule().reply(&after_tool)), "The tool answered.");
    }

    #[test]
    fn replies_first_then_the_rule_and_nothing_recorded_when_endless() {
        let mut script = Script::endless(rule());
        script.replies.push(Reply::text("scripted"));
        let state = State::new(script);
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(text(state.next("/", &HeaderMap::new(), &plain)), "scripted");
        assert_eq!(text(state.next("/", &HeaderMap::new(), &plain)), "hello");
        assert!(state.requests.lock().expect("not poisoned").is_empty());

        let state = State::new(Script::replies([]));
        let reply = state.next("/", &HeaderMap::new(), &plain);
        assert!(
            matches!(reply, Reply::Fail { status: 500, .. }),
            "{reply:?}"
        );
        assert_eq!(state.requests.lock().expect("not poisoned").len(), 1);
    }
}
