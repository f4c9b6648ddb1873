//! The whole of Switchboard in one test process: every service on an ephemeral port, talking
//! real HTTP and MCP to each other, with a scripted LLM as the one double.
//!
//! # Layout
//!
//! - [`System`]: starts, each with `switchboard_testkit`'s harness (until ready), the sandbox,
//!   the code-executor in front of it, the time-client, the gateway federating both — waiting,
//!   on the gateway's own catalog notifications, until `execute_code` and `get_current_time`
//!   are listed — and the middleware pointed at the gateway and at a [`ScriptedLlm`] (or at
//!   no LLM).
//! - `tests/`: chats through `/chat`, its stream, `/v1/chat/completions` and Ollama's wire
//!   format; failures; the offline planner; one chat's trace across every hop (`trace.rs`).
//! - `browser/`: the chat page in headless Chromium (run by `.ci/run` against
//!   `switchboard up`).

use std::time::Duration;

use switchboard_code_executor::CodeExecutorService;
use switchboard_gateway::{Gateway, UpstreamConfig};
use switchboard_middleware::{LlmSettings, MiddlewareService, Provider};
use switchboard_sandbox::SandboxService;
use switchboard_testkit::{Reply, Running, ScriptedLlm, Spawn, Until, spawn};
use switchboard_time::TimeService;
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
    /// The services, callers before what they call (fields and vectors drop in order).
    _services: Vec<Running>,
    /// Base URL of the middleware, e.g. `http://127.0.0.1:40123`.
    pub middleware: String,
    /// The gateway's MCP endpoint.
    pub gateway_mcp: String,
    /// Base URL of the code-executor (its `/metrics` count tasks).
    pub code_executor: String,
    pub llm: Option<ScriptedLlm>,
    _packages: tempfile::TempDir,
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
        Self::start_tuned(
            llm,
            switchboard_gateway::config::DEFAULT_CALL_TIMEOUT,
            tweak,
        )
        .await
    }

    /// Start everything, the gateway giving each request to the code-executor at most
    /// `code_call_timeout`; `tweak` adjusts the middleware's settings.
    pub async fn start_tuned(
        llm: Llm,
        code_call_timeout: Duration,
        tweak: impl FnOnce(MiddlewareConfig) -> MiddlewareConfig,
    ) -> Self {
        // sandbox: ready once its interpreter pool can start programs.
        let packages = packages_dir();
        let mut sandbox_config =
            switchboard_sandbox::Config::with_packages_dir(packages.path().join("site"));
        sandbox_config.pool_size = 2;
        sandbox_config.http = sandbox_config
            .http
            .with_shutdown_grace(Duration::from_secs(1));
        let sandbox = spawn::<SandboxService>(sandbox_config).await;
        let mut code_executor_config =
            switchboard_code_executor::Config::for_sandbox(&sandbox.url())
                .expect("valid code-executor settings");
        // Tasks (streamed chats run code as tasks) in a directory of this system's own: the
        // default is one per machine, and a code-executor starting there fails the tasks it
        // finds running — another test's.
        code_executor_config.tasks.state_dir = Some(packages.path().join("tasks"));
        let code_executor = spawn::<CodeExecutorService>(code_executor_config).await;
        let code_executor_url = code_executor.url();
        let time = spawn::<TimeService>(switchboard_time::Config::default()).await;

        // gateway: started here to keep a handle, then served; wait until it lists both tools.
        let gateway_config = switchboard_gateway::Config::new(vec![
            UpstreamConfig::new("code-executor", code_executor.mcp_url())
                .with_call_timeout(code_call_timeout),
            UpstreamConfig::new("time-client", time.mcp_url()),
        ]);
        let shutdown = CancellationToken::new();
        let gateway =
            Gateway::start(&gateway_config, shutdown.child_token()).expect("gateway HTTP client");
        let handle = gateway.clone();
        let gateway_server = Spawn::new()
            .until(Until::Healthy)
            .serve(
                switchboard_gateway::SERVICE,
                shutdown,
                |listener, shutdown| {
                    switchboard_gateway::serve_gateway(listener, handle, gateway_config, shutdown)
                },
            )
            .await;
        wait_for_tools(&gateway, &["execute_code", "get_current_time"]).await;
        let gateway_mcp = gateway_server.mcp_url();

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
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1:0");
                let addr = listener.local_addr().expect("bound address");
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
        let middleware = spawn::<MiddlewareService>(config).await;

        System {
            middleware: middleware.url(),
            gateway_mcp,
            code_executor: code_executor_url,
            llm: scripted,
            _services: vec![middleware, gateway_server, time, code_executor, sandbox],
            _packages: packages,
        }
    }

    pub fn scripted(&self) -> &ScriptedLlm {
        self.llm.as_ref().expect("this system has a scripted LLM")
    }
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
