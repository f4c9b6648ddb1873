//! The sandbox's REST API, as the code-executor calls it. Every request carries the current
//! span's W3C trace context (`traceparent`), so the sandbox's request span joins the tool
//! call's trace. Sessions and their files are in [`sessions`].

mod sessions;

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use switchboard_protocol::sandbox::{
    ExecuteRequest, ExecutionResult, InstallOutcome, InstallRequest,
};
use switchboard_runtime::propagation;

use crate::Config;

pub use sessions::{Download, OWNER_HEADER, Owner};

/// Why a call to the sandbox did not produce a result. The messages are written for the model
/// that called the tool: what happened and that nothing ran.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the sandbox at {url} is not reachable ({detail}); nothing was run")]
    /// No connection was made: the request provably never reached the sandbox (and may go to
    /// another).
    Unreachable { url: String, detail: String },
    #[error(
        "the connection to the sandbox at {url} broke ({detail}); the program may have started, and its result is lost"
    )]
    Broken { url: String, detail: String },
    #[error("the sandbox at {url} did not answer within {} s; the request was abandoned", .after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    #[error("the sandbox refused the request: {message}")]
    Refused { status: u16, message: String },
    #[error("the sandbox failed ({status}): {message}")]
    Failed { status: u16, message: String },
    #[error("the sandbox's answer was not understood: {0}")]
    BadResponse(String),
}

impl ClientError {
    /// Whether the sandbox provably did not run the program: it could not be reached, or it
    /// answered 503, which the sandbox gives only before a program is handed over (busy,
    /// no interpreter, stopping).
    pub fn not_run(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Failed { status: 503, .. }
        )
    }

    /// Whether the sandbox said the session is unknown to this caller (404) or has ended
    /// (410): where it was is worth forgetting.
    pub fn session_gone(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                status: 404 | 410,
                ..
            }
        )
    }

    /// A short stable word for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Broken { .. } => "broken",
            Self::Timeout { .. } => "timeout",
            Self::Refused { .. } => "refused",
            Self::Failed { .. } => "failed",
            Self::BadResponse(_) => "bad_response",
        }
    }
}

/// Calls the sandbox. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SandboxClient {
    http: reqwest::Client,
    base: String,
    /// The `Host` to send when `base` is one address of a name (`--sandbox-resolve`): the
    /// sandbox admits requests by host name (its allowed hosts), not by its pod's address.
    host: Option<reqwest::header::HeaderValue>,
    execute_timeout: Duration,
    install_timeout: Duration,
}

/// How long a readiness probe of the sandbox may take.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

impl SandboxClient {
    /// A client on the workspace's one HTTP stack (HTTPS with `[http] ca_file`, proxies from
    /// the environment); fails when that cannot be set up.
    pub fn new(config: &Config) -> Result<Self, switchboard_runtime::Error> {
        let options = switchboard_runtime::client::ClientOptions::from_http(&config.http)
            .with_connect_timeout(config.connect_timeout)
            .with_bearer(config.sandbox_token.clone());
        for url in &config.sandbox_urls {
            options.check_proxy_for(url)?;
        }
        Ok(Self {
            http: options.build()?,
            base: config
                .sandbox_urls
                .first()
                .cloned()
                .unwrap_or_else(|| crate::config::DEFAULT_SANDBOX_URL.to_owned()),
            host: None,
            execute_timeout: config.execute_timeout,
            install_timeout: config.install_timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same client (connection pool, credential, timeouts) for the sandbox at `base`.
    pub fn at(&self, base: String) -> Self {
        Self {
            base,
            host: None,
            ..self.clone()
        }
    }

    /// The same client for the sandbox at `base`, an address `host` (`name[:port]`) resolved
    /// to: requests name `host`, as if sent to the name.
    pub fn at_address_of(&self, base: String, host: reqwest::header::HeaderValue) -> Self {
        Self {
            base,
            host: Some(host),
            ..self.clone()
        }
    }

    /// A request to `url` on the shared client, naming the sandbox's host name if resolved.
    pub(crate) fn to(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.host {
            Some(host) => builder.header(reqwest::header::HOST, host.clone()),
            None => builder,
        }
    }

    /// The pins the sandbox has installed (`GET /packages`), as `name==version`.
    pub async fn installed(&self) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Listed {
            packages: Vec<Installed>,
        }
        #[derive(serde::Deserialize)]
        struct Installed {
            name: String,
            version: String,
        }
        let listed: Listed = self.get("/packages").await?;
        Ok(listed
            .packages
            .into_iter()
            .map(|p| format!("{}=={}", p.name, p.version))
            .collect())
    }

    /// `POST /execute`, as `owner` when known: a session's program must be run as the
    /// session's owner (the sandbox refuses others), and a one-shot run carries it too.
    pub async fn execute(
        &self,
        request: &ExecuteRequest,
        owner: Option<&Owner>,
    ) -> Result<ExecutionResult, ClientError> {
        let mut builder = self
            .to(reqwest::Method::POST, format!("{}/execute", self.base))
            .json(request);
        if let Some(owner) = owner {
            builder = builder.header(OWNER_HEADER, owner.header());
        }
        self.send(builder, self.execute_timeout).await
    }

    pub async fn install(&self, request: &InstallRequest) -> Result<InstallOutcome, ClientError> {
        self.post("/packages", request, self.install_timeout).await
    }

    /// The sandbox's `/ready` body when it answers 200.
    pub async fn ready(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/ready").await
    }

    /// `GET path`, within the probe's time limit.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self
            .to(reqwest::Method::GET, format!("{}{path}", self.base))
            .timeout(READY_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.transport(e, READY_TIMEOUT))?;
        Self::decode(response).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let builder = self
            .to(reqwest::Method::POST, format!("{}{path}", self.base))
            .json(body);
        self.send(builder, timeout).await
    }

    /// Send `builder` with the trace context, within `timeout`; its JSON answer.
    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let response = self.send_raw(builder, timeout).await?;
        Self::decode(response).await
    }

    /// Send `builder` with the trace context, within `timeout`; the answer, whatever its status.
    async fn send_raw(
        &self,
        builder: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        builder
            .headers(propagation::headers())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.transport(e, timeout))
    }

    fn transport(&self, error: reqwest::Error, timeout: Duration) -> ClientError {
        if error.is_timeout() {
            ClientError::Timeout {
                url: self.base.clone(),
                after: timeout,
            }
        } else {
            // The innermost cause says it best ("Connection refused").
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(inner) = source {
                detail = inner.to_string();
                source = inner.source();
            }
            if error.is_connect() {
                ClientError::Unreachable {
                    url: self.base.clone(),
                    detail,
                }
            } else {
                ClientError::Broken {
                    url: self.base.clone(),
                    detail,
                }
            }
        }
    }

    async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
        let bytes = Self::body(response).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    /// The body of a success answer; an error answer as [`ClientError::Refused`] (4xx) or
    /// [`ClientError::Failed`], with the message of its `{"error":{...}}` body.
    async fn body(response: reqwest::Response) -> Result<bytes::Bytes, ClientError> {
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::BadResponse(format!("reading the body: {e}")))?;
        if status.is_success() {
            return Ok(bytes);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(500).collect());
        let status = status.as_u16();
        if (400..500).contains(&status) {
            Err(ClientError::Refused { status, message })
        } else {
            Err(ClientError::Failed { status, message })
        }
    }
}
