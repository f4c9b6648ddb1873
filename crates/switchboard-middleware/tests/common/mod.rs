//! Shared set-up: a real time-client as "the gateway" (any MCP server is one to the
//! middleware), a scripted LLM, and the middleware itself, all on ephemeral ports.
#![allow(dead_code)] // Each test binary uses a different part.

use std::time::Duration;

use serde_json::Value;
use switchboard_middleware::{Config, LlmSettings, MiddlewareService, Provider};
use switchboard_testkit::{Reply, Running, ScriptedLlm, Spawn, Until};
use switchboard_time::TimeService;
use tokio::net::TcpListener;

/// Running services; dropping it stops them (the middleware first: fields drop in order).
pub struct Stack {
    _middleware: Running,
    /// The time-client standing in for the gateway, unless the gateway is down.
    _gateway: Option<Running>,
    pub base: String,
    pub http: reqwest::Client,
    pub llm: Option<ScriptedLlm>,
    pub gateway_url: String,
}

/// An address nothing listens on (bound, then released).
pub async fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("127.0.0.1:{}", addr.port())
}

/// Options for [`stack`].
pub struct Setup {
    pub llm: Option<(Provider, Vec<Reply>)>,
    pub gateway_down: bool,
    pub tweak: Box<dyn FnOnce(Config) -> Config + Send>,
}

impl Setup {
    pub fn openai(replies: Vec<Reply>) -> Self {
        Self::with(Some((Provider::Openai, replies)))
    }
    pub fn ollama(replies: Vec<Reply>) -> Self {
        Self::with(Some((Provider::Ollama, replies)))
    }
    pub fn offline() -> Self {
        Self::with(None)
    }
    fn with(llm: Option<(Provider, Vec<Reply>)>) -> Self {
        Self {
            llm,
            gateway_down: false,
            tweak: Box::new(|c| c),
        }
    }
    pub fn gateway_down(mut self) -> Self {
        self.gateway_down = true;
        self
    }
    pub fn tweak(mut self, f: impl FnOnce(Config) -> Config + Send + 'static) -> Self {
        self.tweak = Box::new(f);
        self
    }
}

/// Start the middleware (and what it talks to) as `setup` says.
pub async fn stack(setup: Setup) -> Stack {
    let (gateway_url, gateway) = if setup.gateway_down {
        (format!("http://{}/mcp", dead_address().await), None)
    } else {
        let time =
            switchboard_testkit::spawn::<TimeService>(switchboard_time::Config::default()).await;
        (time.mcp_url(), Some(time))
    };
    let mut config = Config::default().with_gateway_url(gateway_url.clone());
    let llm = match setup.llm {
        Some((provider, replies)) => {
            let llm = ScriptedLlm::start(replies).await;
            let base = match provider {
                Provider::Openai => llm.openai_base_url(),
                Provider::Ollama => llm.ollama_base_url(),
            };
            config = config.with_llm(Some(
                LlmSettings::new(provider, base, "scripted-model").with_api_key("test-key"),
            ));
            Some(llm)
        }
        None => None,
    };
    let config = (setup.tweak)(config);
    // Serving is enough: some stacks have their gateway down on purpose (not ready).
    let middleware = Spawn::new()
        .until(Until::Healthy)
        .service::<MiddlewareService>(config)
        .await;
    Stack {
        base: middleware.url(),
        _middleware: middleware,
        _gateway: gateway,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        llm,
        gateway_url,
    }
}

impl Stack {
    pub fn llm(&self) -> &ScriptedLlm {
        self.llm.as_ref().expect("this stack has a scripted LLM")
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// POST and read the whole SSE stream: `(event name, data)` pairs in order.
    pub async fn post_sse(&self, path: &str, body: Value) -> Vec<(String, String)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        parse_sse(&response.text().await.unwrap())
    }
}

/// Parse an SSE body into `(event, data)` pairs; comments (keep-alives) are skipped.
pub fn parse_sse(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = "message".to_owned();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
                }
            }
            (!data.is_empty()).then(|| (event, data.join("\n")))
        })
        .collect()
}

/// The chat events of a `/chat` stream, as JSON.
pub fn events(sse: &[(String, String)]) -> Vec<(String, Value)> {
    sse.iter()
        .map(|(e, d)| (e.clone(), serde_json::from_str(d).unwrap()))
        .collect()
}

/// The tool messages of a recorded LLM request: `(tool_call_id or tool_name, content)`.
pub fn tool_messages(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            let key = m["tool_call_id"]
                .as_str()
                .or(m["tool_name"].as_str())
                .unwrap_or_default()
                .to_owned();
            (key, m["content"].as_str().unwrap().to_owned())
        })
        .collect()
}
