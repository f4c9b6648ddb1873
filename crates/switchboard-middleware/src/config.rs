//! Settings of the middleware.
//!
//! The LLM settings keep the names of the original system (`LLM_BASE_URL`, `LLM_API_KEY`,
//! `LLM_MODEL_NAME`, plus `LLM_PROVIDER`); everything else is `MIDDLEWARE_*`. Without
//! `LLM_BASE_URL` the middleware answers with its offline planner.

use std::{fmt, net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_runtime::{
    Error, HttpSettings,
    auth::Secret,
    config::{parse_socket_addr, seconds},
    http::default_allowed_origins,
};

pub use switchboard_runtime::client::ProxySource;

/// Default listen address (docs/design.md: middleware on 8002).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8002);
/// Default gateway MCP endpoint (docs/design.md: mcp-server on 8000).
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8000/mcp";
/// Default limit for one LLM request: local models on a CPU can take a minute to answer.
pub const DEFAULT_LLM_TIMEOUT: Duration = Duration::from_secs(120);
/// Default limit for one tool call; the sandbox's own wall-time limit is lower.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of LLM turns that may ask for tools before the final wrap-up turn.
pub const DEFAULT_MAX_TOOL_ROUNDS: usize = 8;
/// Default number of tool calls of one turn that run at the same time.
pub const DEFAULT_MAX_CONCURRENT_TOOLS: usize = 8;
/// Default largest tool result handed to the LLM, in characters: about 4k tokens.
pub const DEFAULT_MAX_TOOL_RESULT_CHARS: usize = 16_000;

/// Default time a conversation (and its sandbox session) is kept without a request.
pub const DEFAULT_CONVERSATION_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The system prompt used when the client sends none.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are Switchboard's assistant. You can call tools: \
use execute_code to run Python (print what you want to see) and get_current_time for the time. \
When the user asks for several independent things, call all the tools you need in one turn. \
After the tools answered, reply briefly and quote their results exactly.";

/// Which wire format the LLM speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI-compatible `POST {base}/chat/completions`: OpenAI, Ollama's `/v1`, vLLM,
    /// llama.cpp server.
    Openai,
    /// Ollama's native `POST {base}/api/chat` (NDJSON streaming).
    Ollama,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Ollama => "ollama",
        }
    }
}

/// Settings as given on the command line, in the environment or in `[middleware]`.
#[derive(Clone, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on [default: 127.0.0.1:8002].
    #[arg(long, env = "MIDDLEWARE_LISTEN", value_parser = parse_socket_addr, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// MCP endpoint of the gateway [default: http://127.0.0.1:8000/mcp].
    #[arg(long, env = "MIDDLEWARE_GATEWAY_URL", value_name = "URL")]
    pub gateway_url: Option<String>,
    /// The credential sent to the gateway (`Authorization: Bearer`), when it authenticates
    /// its callers: `env:NAME`, `file:PATH` or the token itself.
    #[arg(long, env = "MIDDLEWARE_GATEWAY_TOKEN", value_name = "SECRET")]
    pub gateway_token: Option<String>,
    /// Base URL of the LLM API, e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`
    /// (Ollama, OpenAI-compatible) or `http://localhost:11434` (with --llm-provider ollama).
    /// Unset: the offline planner answers.
    #[arg(long, env = "LLM_BASE_URL", value_name = "URL")]
    pub llm_base_url: Option<String>,
    /// API key sent as `Authorization: Bearer ...`; not needed by local servers.
    #[arg(long, env = "LLM_API_KEY", value_name = "KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// Model to ask, e.g. `gpt-4o-mini` or `llama3.1`; a request's `model` overrides it.
    #[arg(long, env = "LLM_MODEL_NAME", value_name = "MODEL")]
    pub llm_model_name: Option<String>,
    /// Wire format of the LLM API [default: openai].
    #[arg(long, env = "LLM_PROVIDER", value_enum, value_name = "PROVIDER")]
    pub llm_provider: Option<Provider>,
    /// Seconds one LLM request may take (for streams: the longest pause between chunks)
    /// [default: 120].
    #[arg(long, env = "MIDDLEWARE_LLM_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub llm_timeout_seconds: Option<f64>,
    /// Seconds one tool call may take [default: 60].
    #[arg(long, env = "MIDDLEWARE_TOOL_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub tool_timeout_seconds: Option<f64>,
    /// LLM turns that may call tools before a final answer is asked for [default: 8].
    #[arg(long, env = "MIDDLEWARE_MAX_TOOL_ROUNDS", value_name = "N")]
    pub max_tool_rounds: Option<usize>,
    /// Tool calls of one turn that run at the same time [default: 8].
    #[arg(long, env = "MIDDLEWARE_MAX_CONCURRENT_TOOLS", value_name = "N")]
    pub max_concurrent_tools: Option<usize>,
    /// Run the code tools (`execute_code`, `install_package`) as MCP tasks while a chat is
    /// streamed, so that their status reaches the chat as `tool_call_progress` events; `false`
    /// calls them plainly [default: true].
    #[arg(long, env = "MIDDLEWARE_TOOL_TASKS", value_name = "BOOL")]
    pub tool_tasks: Option<bool>,
    /// Longest tool result given to the LLM, in characters; longer ones are cut with a note
    /// [default: 16000].
    #[arg(long, env = "MIDDLEWARE_MAX_TOOL_RESULT_CHARS", value_name = "CHARS")]
    pub max_tool_result_chars: Option<usize>,
    /// Browser origins allowed by CORS, comma-separated, e.g. `https://chat.example:*`; `*`
    /// allows any [default: http://localhost:*,http://127.0.0.1:*,http://[::1]:*].
    #[arg(
        long,
        env = "MIDDLEWARE_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGINS"
    )]
    pub cors_origins: Option<Vec<String>>,
    /// System prompt used when a conversation has none.
    #[arg(long, env = "MIDDLEWARE_SYSTEM_PROMPT", value_name = "TEXT")]
    pub system_prompt: Option<String>,
    /// Seconds a conversation is kept without a request; then its sandbox session is closed
    /// [default: 900].
    #[arg(
        long,
        env = "MIDDLEWARE_CONVERSATION_IDLE_SECONDS",
        value_name = "SECONDS"
    )]
    pub conversation_idle_seconds: Option<f64>,
}

/// The API key never appears in logs or debug output.
impl fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawConfig")
            .field("listen", &self.listen)
            .field("gateway_url", &self.gateway_url)
            .field(
                "gateway_token",
                &self.gateway_token.as_ref().map(|_| "<redacted>"),
            )
            .field("llm_base_url", &self.llm_base_url)
            .field(
                "llm_api_key",
                &self.llm_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("llm_model_name", &self.llm_model_name)
            .field("llm_provider", &self.llm_provider)
            .finish_non_exhaustive()
    }
}

/// How to reach the LLM.
#[derive(Clone)]
pub struct LlmSettings {
    pub provider: Provider,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
    /// Where the proxy settings come from: the environment when read from configuration,
    /// none when built in code.
    pub proxy: ProxySource,
    /// Extra CA certificates to trust (the shared `[http] ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmSettings")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field(
                "proxy",
                &match &self.proxy {
                    ProxySource::Url(_) => "url (redacted)",
                    ProxySource::Environment => "environment",
                    ProxySource::None => "none",
                },
            )
            .finish()
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub gateway_url: String,
    /// Sent to the gateway as a bearer credential.
    pub gateway_token: Option<Secret>,
    /// `None`: no LLM configured, the offline planner answers.
    pub llm: Option<LlmSettings>,
    pub tool_timeout: Duration,
    pub max_tool_rounds: usize,
    pub max_concurrent_tools: usize,
    /// Code tools run as tasks while a chat is streamed (see [`RawConfig::tool_tasks`]).
    pub tool_tasks: bool,
    pub max_tool_result_chars: usize,
    pub cors_origins: Vec<String>,
    pub system_prompt: String,
    /// A conversation unused this long ends, and its sandbox session with it.
    pub conversation_idle_timeout: Duration,
    pub http: HttpSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            gateway_url: DEFAULT_GATEWAY_URL.to_owned(),
            gateway_token: None,
            llm: None,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            max_tool_rounds: DEFAULT_MAX_TOOL_ROUNDS,
            max_concurrent_tools: DEFAULT_MAX_CONCURRENT_TOOLS,
            tool_tasks: true,
            max_tool_result_chars: DEFAULT_MAX_TOOL_RESULT_CHARS,
            cors_origins: default_allowed_origins(),
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            conversation_idle_timeout: DEFAULT_CONVERSATION_IDLE_TIMEOUT,
            http: HttpSettings::default(),
        }
    }
}

/// `Some(trimmed)` unless absent or blank: compose files often pass `LLM_BASE_URL=`.
fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn http_url(setting: &str, value: &str) -> Result<String, Error> {
    let ok = (value.starts_with("http://") || value.starts_with("https://"))
        && value.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
    if ok {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(Error::Config(format!(
            "{setting}: '{value}' is not an http(s) URL; expected e.g. http://127.0.0.1:8000/mcp"
        )))
    }
}

fn positive(setting: &str, value: Option<usize>, default: usize) -> Result<usize, Error> {
    match value {
        None => Ok(default),
        Some(0) => Err(Error::Config(format!(
            "{setting}: must be a positive whole number"
        ))),
        Some(n) => Ok(n),
    }
}

impl Config {
    pub fn from_parts(raw: RawConfig, http: HttpSettings) -> Result<Self, Error> {
        let defaults = Config::default();
        let gateway_url = match given(raw.gateway_url) {
            Some(url) => http_url("gateway_url (--gateway-url / MIDDLEWARE_GATEWAY_URL)", &url)?,
            None => defaults.gateway_url,
        };
        let llm_timeout = match raw.llm_timeout_seconds {
            Some(s) => seconds(
                "llm_timeout_seconds (--llm-timeout-seconds / MIDDLEWARE_LLM_TIMEOUT_SECONDS)",
                s,
            )?,
            None => DEFAULT_LLM_TIMEOUT,
        };
        let api_key = given(raw.llm_api_key);
        let model = given(raw.llm_model_name);
        let llm = match given(raw.llm_base_url) {
            Some(url) => {
                let base_url = http_url("llm_base_url (--llm-base-url / LLM_BASE_URL)", &url)
                    .map_err(|_| {
                        Error::Config(format!(
                            "llm_base_url (--llm-base-url / LLM_BASE_URL): '{url}' is not an http(s) URL; expected e.g. https://api.openai.com/v1 or http://localhost:11434/v1"
                        ))
                    })?;
                let model = model.ok_or_else(|| {
                    Error::Config(
                        "llm_model_name (--llm-model-name / LLM_MODEL_NAME): required when LLM_BASE_URL is set; expected a model name such as gpt-4o-mini or llama3.1".into(),
                    )
                })?;
                Some(LlmSettings {
                    provider: raw.llm_provider.unwrap_or(Provider::Openai),
                    base_url,
                    api_key,
                    model,
                    timeout: llm_timeout,
                    proxy: ProxySource::Environment,
                    ca_file: http.ca_file.clone(),
                })
            }
            None if api_key.is_some() || model.is_some() => {
                return Err(Error::Config(
                    "llm_base_url (--llm-base-url / LLM_BASE_URL): LLM_API_KEY or LLM_MODEL_NAME is set but LLM_BASE_URL is not; expected the API's base URL, e.g. https://api.openai.com/v1".into(),
                ));
            }
            None => None,
        };
        let tool_timeout = match raw.tool_timeout_seconds {
            Some(s) => seconds(
                "tool_timeout_seconds (--tool-timeout-seconds / MIDDLEWARE_TOOL_TIMEOUT_SECONDS)",
                s,
            )?,
            None => DEFAULT_TOOL_TIMEOUT,
        };
        let cors_origins = match raw.cors_origins {
            None => defaults.cors_origins,
            Some(list) => {
                let list: Vec<String> = list
                    .into_iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if let Some(bad) = list
                    .iter()
                    .find(|o| o.as_str() != "*" && !o.contains("://"))
                {
                    return Err(Error::Config(format!(
                        "cors_origins (--cors-origins / MIDDLEWARE_CORS_ORIGINS): '{bad}' is not an origin; expected scheme://host[:port|:*], e.g. http://localhost:*, or *"
                    )));
                }
                list
            }
        };
        Ok(Self {
            listen: raw.listen.unwrap_or(DEFAULT_LISTEN),
            gateway_url,
            gateway_token: given(raw.gateway_token)
                .map(|source| {
                    Secret::resolve(
                        "gateway_token (--gateway-token / MIDDLEWARE_GATEWAY_TOKEN)",
                        &source,
                    )
                })
                .transpose()?,
            llm,
            tool_timeout,
            max_tool_rounds: positive(
                "max_tool_rounds (--max-tool-rounds / MIDDLEWARE_MAX_TOOL_ROUNDS)",
                raw.max_tool_rounds,
                DEFAULT_MAX_TOOL_ROUNDS,
            )?,
            max_concurrent_tools: positive(
                "max_concurrent_tools (--max-concurrent-tools / MIDDLEWARE_MAX_CONCURRENT_TOOLS)",
                raw.max_concurrent_tools,
                DEFAULT_MAX_CONCURRENT_TOOLS,
            )?,
            tool_tasks: raw.tool_tasks.unwrap_or(true),
            max_tool_result_chars: positive(
                "max_tool_result_chars (--max-tool-result-chars / MIDDLEWARE_MAX_TOOL_RESULT_CHARS)",
                raw.max_tool_result_chars,
                DEFAULT_MAX_TOOL_RESULT_CHARS,
            )?,
            cors_origins,
            system_prompt: given(raw.system_prompt)
                .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_owned()),
            conversation_idle_timeout: match raw.conversation_idle_seconds {
                Some(s) => seconds(
                    "conversation_idle_seconds (--conversation-idle-seconds / MIDDLEWARE_CONVERSATION_IDLE_SECONDS)",
                    s,
                )?,
                None => DEFAULT_CONVERSATION_IDLE_TIMEOUT,
            },
            http,
        })
    }

    /// Use `llm` (tests and embedding).
    pub fn with_llm(mut self, llm: Option<LlmSettings>) -> Self {
        self.llm = llm;
        self
    }

    /// End conversations (and close their sandbox sessions) after `idle` without a request.
    pub fn with_conversation_idle_timeout(mut self, idle: Duration) -> Self {
        self.conversation_idle_timeout = idle;
        self
    }

    /// Use the gateway at `url` (an MCP endpoint).
    pub fn with_gateway_url(mut self, url: impl Into<String>) -> Self {
        self.gateway_url = url.into();
        self
    }
}

impl LlmSettings {
    /// An LLM at `base_url` speaking `provider`, with the default timeout and no key.
    pub fn new(provider: Provider, base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            model: model.into(),
            timeout: DEFAULT_LLM_TIMEOUT,
            proxy: ProxySource::None,
            ca_file: None,
        }
    }
    /// Send requests through this proxy (`http://`, `https://` or `socks5(h)://`, with
    /// optional `user:password@`).
    pub fn with_proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySource::Url(url.into());
        self
    }
    /// Trust the CA certificates of this PEM file too.
    pub fn with_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(raw: RawConfig) -> Result<Config, Error> {
        Config::from_parts(raw, HttpSettings::default())
    }

    #[test]
    fn no_llm_means_offline_planner() {
        let config = build(RawConfig::default()).expect("defaults are valid");
        assert!(config.llm.is_none());
        assert_eq!(config.gateway_url, DEFAULT_GATEWAY_URL);
        let blank = RawConfig {
            llm_base_url: Some("  ".into()),
            ..Default::default()
        };
        assert!(build(blank).expect("blank is unset").llm.is_none());
    }

    #[test]
    fn llm_needs_a_model_and_a_url() {
        let err = build(RawConfig {
            llm_base_url: Some("http://localhost:11434/v1".into()),
            ..Default::default()
        })
        .expect_err("model missing");
        assert!(err.to_string().contains("LLM_MODEL_NAME"), "{err}");

        let err = build(RawConfig {
            llm_api_key: Some("sk-x".into()),
            ..Default::default()
        })
        .expect_err("url missing");
        assert!(err.to_string().contains("LLM_BASE_URL"), "{err}");

        let err = build(RawConfig {
            llm_base_url: Some("localhost:11434".into()),
            llm_model_name: Some("m".into()),
            ..Default::default()
        })
        .expect_err("not a URL");
        assert!(err.to_string().contains("http(s) URL"), "{err}");

        let config = build(RawConfig {
            llm_base_url: Some("http://localhost:11434/v1/".into()),
            llm_model_name: Some("llama3.1".into()),
            llm_api_key: Some("secret".into()),
            ..Default::default()
        })
        .expect("valid");
        let llm = config.llm.expect("configured");
        assert_eq!(llm.base_url, "http://localhost:11434/v1");
        assert_eq!(llm.provider, Provider::Openai);
        assert!(!format!("{llm:?}").contains("secret"));
    }

    #[test]
    fn limits_must_be_positive() {
        let err = build(RawConfig {
            max_tool_rounds: Some(0),
            ..Default::default()
        })
        .expect_err("zero rounds");
        assert!(
            err.to_string().contains("MIDDLEWARE_MAX_TOOL_ROUNDS"),
            "{err}"
        );
        let err = build(RawConfig {
            cors_origins: Some(vec!["example.com".into()]),
            ..Default::default()
        })
        .expect_err("bad origin");
        assert!(err.to_string().contains("MIDDLEWARE_CORS_ORIGINS"), "{err}");
    }
}
