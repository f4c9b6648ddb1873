//! The whole of Switchboard in one test process: every service on an ephemeral port, talking
//! real HTTP and MCP to each other, with a scripted LLM as the one double.
//!
//! # Layout
//!
//! - [`System`]: starts the sandbox (its interpreter pool filled), the code-executor in front
//!   of it, the time-client, the gateway federating both — waiting, on the gateway's own catalog
//!   notifications, until `execute_code` and `get_current_time` are listed — and the
//!   middleware pointed at the gateway and at a [`ScriptedLlm`] (or at no LLM).
//! - `tests/`: chats through `/chat`, its stream, `/v1/chat/completions` and Ollama's wire
//!   format; failures; the offline planner; one chat's trace across every hop (`trace.rs`).
//! - `browser/`: the chat page in headless Chromium (run by `.ci/run` against
//!   `switchboard up`).

use std::{net::SocketAddr, time::Duration};

use switchboard_gateway::{Gateway, UpstreamConfig};
use switchboard_middleware::{LlmSettings, Provider};
use switchboard_runtime::Metrics;
use switchboard_testkit::{Reply, ScriptedLlm};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use switchboard_middleware::Config as MiddlewareConfig;

/// Longest the set-up waits for the gateway to list every tool (a guard, not a clock).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Which LLM the middleware talks to.
pub enum Llm {
    /// None: the offline planner answers.
    Offline,
    /// A scripted OpenAI-compatible API.
    OpenAi(Vec<Reply>),
    /// A scripted Ollama-native API.
    Ollama(Vec<Reply>),
    /// An OpenAI-compatible URL nobody listens on.
    Unreachable,
}

/// Every service, running; dropping it stops them all.
pub struct System {
    /// Base URL of the middleware, e.g. `http://127.0.0.1:40123`.
    pub middleware: String,
    /// The gateway's MCP endpoint.
    pub gateway_mcp: String,
    pub llm: Option<ScriptedLlm>,
    shutdown: CancellationToken,
    _packages: tempfile::TempDir,
}

impl Drop for System {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    (listener, addr)
}

/// A directory the sandbox's unprivileged users can read (the managed site-packages).
fn packages_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("switchboard-e2e")
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 755");
    dir
}

impl System {
    /// Start everything with `llm` and the middleware's defaults.
    pub async fn start(llm: Llm) -> Self {
        Self::start_with(llm, |c| c).await
    }

    /// Start everything; `tweak` adjusts the middleware's settings.
    pub async fn start_with(
        llm: Llm,
        tweak: impl FnOnce(MiddlewareConfig) -> MiddlewareConfig,
    ) -> Self {
        let shutdown = CancellationToken::new();

        // sandbox: started (pool filled) before it serves.
        let packages = packages_dir();
        let mut sandbox_config =
            switchboard_sandbox::Config::with_packages_dir(packages.path().join("site"));
        sandbox_config.pool_size = 2;
        let metrics = Metrics::new(switchboard_sandbox::SERVICE);
        let sandbox =
            switchboard_sandbox::Sandbox::start(&sandbox_config, &metrics, shutdown.child_token())
                .await
                .expect("the sandbox starts (this host allows the isolation)");
        let (listener, sandbox_addr) = bind().await;
        let app =
            switchboard_sandbox::router(sandbox, metrics, &sandbox_config, shutdown.child_token());
        tokio::spawn(switchboard_runtime::serve(
            listener,
            app,
            shutdown.child_token(),
            Duration::from_secs(1),
        ));
        let code_tools = code_tools(sandbox_addr, &shutdown).await;

        // time-client
        let (listener, time_addr) = bind().await;
        tokio::spawn(switchboard_time::serve(
            listener,
            switchboard_time::Config::default(),
            shutdown.child_token(),
        ));

        // gateway: wait until it lists both tools.
        let gateway_config = switchboard_gateway::Config::new(vec![
            code_tools,
            UpstreamConfig::new("time-client", format!("http://{time_addr}/mcp")),
        ]);
        let gateway = Gateway::start(&gateway_config, shutdown.child_token());
        let (listener, gateway_addr) = bind().await;
        tokio::spawn(switchboard_gateway::serve_gateway(
            listener,
            gateway.clone(),
            gateway_config,
            shutdown.child_token(),
        ));
        wait_for_tools(&gateway, &["execute_code", "get_current_time"]).await;
        let gateway_mcp = format!("http://{gateway_addr}/mcp");

        // middleware
        let (scripted, settings) = match llm {
            Llm::Offline => (None, None),
            Llm::OpenAi(replies) => {
                let llm = ScriptedLlm::start(replies).await;
                let settings =
                    LlmSettings::new(Provider::Openai, llm.openai_base_url(), "scripted-model");
                (Some(llm), Some(settings))
            }
            Llm::Ollama(replies) => {
                let llm = ScriptedLlm::start(replies).await;
                let settings =
                    LlmSettings::new(Provider::Ollama, llm.ollama_base_url(), "scripted-model");
                (Some(llm), Some(settings))
            }
            Llm::Unreachable => {
                let (listener, addr) = bind().await;
                drop(listener);
                (
                    None,
                    Some(LlmSettings::new(
                        Provider::Openai,
                        format!("http://{addr}/v1"),
                        "nobody",
                    )),
                )
            }
        };
        let config = tweak(
            MiddlewareConfig::default()
                .with_gateway_url(gateway_mcp.clone())
                .with_llm(settings),
        );
        let (listener, middleware_addr) = bind().await;
        tokio::spawn(switchboard_middleware::serve(
            listener,
            config,
            shutdown.child_token(),
        ));

        System {
            middleware: format!("http://{middleware_addr}"),
            gateway_mcp,
            llm: scripted,
            shutdown,
            _packages: packages,
        }
    }

    pub fn scripted(&self) -> &ScriptedLlm {
        self.llm.as_ref().expect("this system has a scripted LLM")
    }
}

/// The code-executor in front of the sandbox at `sandbox`, as the gateway's upstream.
async fn code_tools(sandbox: SocketAddr, shutdown: &CancellationToken) -> UpstreamConfig {
    let config = switchboard_code_executor::Config::for_sandbox(&format!("http://{sandbox}"))
        .expect("valid code-executor settings");
    let (listener, addr) = bind().await;
    tokio::spawn(switchboard_code_executor::serve(
        listener,
        config,
        shutdown.child_token(),
    ));
    UpstreamConfig::new("code-executor", format!("http://{addr}/mcp"))
}

/// Wait on the gateway's catalog notifications until every tool in `names` is listed.
async fn wait_for_tools(gateway: &Gateway, names: &[&str]) {
    let mut generations = gateway.subscribe();
    let listed = |gateway: &Gateway| {
        let catalog = gateway.catalog();
        names
            .iter()
            .all(|n| catalog.tools.iter().any(|t| t.name.as_ref() == *n))
    };
    let waited = tokio::time::timeout(PATIENCE, async {
        while !listed(gateway) {
            if generations.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        waited.is_ok() && listed(gateway),
        "the gateway did not list {names:?} within {PATIENCE:?}"
    );
}
