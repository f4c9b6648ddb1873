//! Shared test set-up: real upstreams on ephemeral ports (our time-client in-process, an MCP
//! server on the official TypeScript SDK as a child process), a gateway in front of them, and an
//! MCP client that records the notifications it receives.
#![allow(dead_code)] // Each test binary uses part of this module.
#![allow(deprecated)] // Logging is deprecated by SEP-2577; the gateway still forwards it.

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientConfig, LoggingMessageNotificationParam,
        ProgressNotificationParam, ResourceUpdatedNotificationParam,
    },
    service::{NotificationContext, RunningService},
};
use serde_json::Value;
use switchboard_gateway::{Config, Gateway, SERVICE, UpstreamConfig, catalog::Catalog};
use switchboard_protocol::mcp_client::{ConnectOptions, client_config, connect_with};
use switchboard_testkit::{Spawn, Until};
use switchboard_time::TimeService;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;

pub use switchboard_testkit::Running;

pub mod everything;

#[allow(unused_imports)] // Each test binary uses part of this module.
pub use everything::{EverythingHttp, everything_script};
pub mod python;
#[allow(unused_imports)] // Each test binary uses part of this module.
pub use python::python_fixture;

/// Longest any test waits for an event before failing (a guard, never a synchronisation).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Our time-client on `addr` (port 0 for any), ready.
pub async fn time_client(addr: SocketAddr) -> Running {
    let mut config = switchboard_time::Config::default();
    config.http = config.http.with_shutdown_grace(Duration::from_millis(200));
    Spawn::new().at(addr).service::<TimeService>(config).await
}

pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A gateway in this process with its handle, so tests can watch its state.
pub struct GatewayUnderTest {
    pub running: Running,
    pub gateway: Gateway,
}

impl GatewayUnderTest {
    pub fn mcp_url(&self) -> String {
        self.running.mcp_url()
    }
    pub fn base(&self) -> String {
        self.running.url()
    }

    /// Wait until the catalog satisfies `ready` (checked at once and after every rebuild).
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Catalog) -> bool) {
        let mut generations = self.gateway.subscribe();
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                if ready(&self.gateway.catalog()) {
                    return;
                }
                generations.changed().await.unwrap();
            }
        })
        .await;
        assert!(waited.is_ok(), "gave up waiting for: {what}");
    }

    pub fn tool_names(&self) -> Vec<String> {
        self.gateway
            .catalog()
            .tools
            .iter()
            .map(|t| t.name.to_string())
            .collect()
    }
}

/// A gateway, serving (not necessarily ready: tests start it with upstreams down and watch
/// it discover them).
pub async fn gateway(config: Config) -> GatewayUnderTest {
    // The test's own HTTP settings (authentication, say), with a short drain.
    let http = config
        .http
        .clone()
        .with_shutdown_grace(Duration::from_millis(200));
    let config = config.with_http(http);
    // Started here rather than by `serve`, to keep a handle for the tests to watch.
    let shutdown = CancellationToken::new();
    let gateway = Gateway::start(&config, shutdown.child_token()).expect("gateway HTTP client");
    let handle = gateway.clone();
    let running = Spawn::new()
        .until(Until::Healthy)
        .serve(SERVICE, shutdown, move |listener, shutdown| {
            switchboard_gateway::serve_gateway(listener, handle, config, shutdown)
        })
        .await;
    GatewayUnderTest { running, gateway }
}

/// Gateway settings for tests: quick health checks so recovery is observed in moments.
pub fn config(upstreams: Vec<UpstreamConfig>) -> Config {
    Config::new(upstreams)
        .with_health_interval(Duration::from_millis(200))
        .with_connect_timeout(Duration::from_secs(2))
}

/// The MCP server on the official TypeScript SDK, as a child process.
pub struct TsUpstream {
    pub port: u16,
    child: tokio::process::Child,
}

/// The command that installs the TypeScript SDK for these tests.
pub const INSTALL: &str = "crates/switchboard-gateway/tests/fixtures/install.sh";

/// The fixtures' sources (scripts, package lists).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Where `INSTALL` put the SDKs and reference servers.
pub fn installed() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("gateway-fixtures")
}

/// `path` under `installed()`, which must exist: a test that starts a missing program would
/// only time out waiting for its tools.
pub fn fixture(path: &str) -> PathBuf {
    let path = installed().join(path);
    assert!(
        path.exists(),
        "{} is not installed; run `{INSTALL}` (scripts/test runs it)",
        path.display()
    );
    path
}

/// The TypeScript SDK's `node_modules`.
pub fn node_modules() -> PathBuf {
    installed().join("ts-upstream/node_modules")
}

/// The reference "everything" server as a stdio upstream.
pub fn everything_stdio() -> UpstreamConfig {
    let everything =
        fixture("stdio-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let command = switchboard_gateway::config::StdioCommand::new(
        "node",
        [everything.to_string_lossy().into_owned(), "stdio".into()],
    );
    UpstreamConfig::stdio("everything", command)
}

impl TsUpstream {
    /// Start it on `port` (0 = any) and wait for the line that says it listens.
    pub async fn start(port: u16) -> Self {
        let modules = node_modules();
        assert!(
            modules
                .join("@modelcontextprotocol/sdk/package.json")
                .is_file(),
            "the TypeScript MCP SDK is not installed at {}; run `{INSTALL}` (CI runs it in .ci/run)",
            modules.display()
        );
        let mut child = tokio::process::Command::new("node")
            .arg(fixtures().join("ts-upstream/server.cjs"))
            .arg(port.to_string())
            .env("NODE_PATH", &modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `node` ({e}); install Node.js and run `{INSTALL}`")
            });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("the TypeScript upstream printed its port in time")
            .unwrap()
            .expect("the TypeScript upstream exited before listening");
        let port = line
            .strip_prefix("PORT=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("unexpected first line from the TypeScript upstream: {line}")
            });
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { port, child }
    }

    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill(mut self) -> u16 {
        self.child.kill().await.unwrap();
        self.port
    }
}

/// What a test client received besides answers.
#[derive(Clone)]
pub struct Recorder {
    pub tools_changed: mpsc::UnboundedSender<()>,
    pub progress: mpsc::UnboundedSender<ProgressNotificationParam>,
    #[allow(deprecated)]
    pub logs: mpsc::UnboundedSender<LoggingMessageNotificationParam>,
    pub updated: mpsc::UnboundedSender<ResourceUpdatedNotificationParam>,
    info: ClientConfig,
}

pub struct Events {
    pub tools_changed: mpsc::UnboundedReceiver<()>,
    pub progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
    #[allow(deprecated)]
    pub logs: mpsc::UnboundedReceiver<LoggingMessageNotificationParam>,
    /// `notifications/resources/updated`.
    pub updated: mpsc::UnboundedReceiver<ResourceUpdatedNotificationParam>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.tools_changed.send(());
    }
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(params);
    }
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.logs.send(params);
    }
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.updated.send(params);
    }
}

pub type Client = RunningService<RoleClient, Recorder>;

/// An MCP client of `url` that records notifications.
pub async fn client(url: &str) -> (Client, Events) {
    let (tools_changed, tools_rx) = mpsc::unbounded_channel();
    let (progress, progress_rx) = mpsc::unbounded_channel();
    let (logs, logs_rx) = mpsc::unbounded_channel();
    let (updated, updated_rx) = mpsc::unbounded_channel();
    let recorder = Recorder {
        tools_changed,
        progress,
        logs,
        updated,
        info: client_config("gateway-test"),
    };
    let client = connect_with(url, &ConnectOptions::default(), recorder)
        .await
        .expect("MCP initialize with the gateway");
    client
        .peer()
        .set_response_cache_config(rmcp::ClientCacheConfig::disabled())
        .await;
    (
        client,
        Events {
            tools_changed: tools_rx,
            progress: progress_rx,
            logs: logs_rx,
            updated: updated_rx,
        },
    )
}

pub fn params(name: &str, args: Value) -> CallToolRequestParams {
    let params = CallToolRequestParams::new(name.to_owned());
    match args {
        Value::Object(map) => params.with_arguments(map),
        _ => params,
    }
}

pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Receive the next item or fail after [`PATIENCE`].
pub async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("gave up waiting for {what}"))
        .unwrap_or_else(|| panic!("channel closed while waiting for {what}"))
}

/// A TCP proxy in front of `target` that can be switched to hang: it then keeps accepting
/// connections and reading requests but never answers, on new and existing connections.
pub struct HangingProxy {
    pub addr: SocketAddr,
    hang: watch::Sender<bool>,
}

impl HangingProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind(any_port()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (hang, hang_rx) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let hang_rx = hang_rx.clone();
                tokio::spawn(proxy_connection(inbound, target, hang_rx));
            }
        });
        Self { addr, hang }
    }

    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn hang(&self) {
        self.hang.send_replace(true);
    }
}

async fn proxy_connection(
    mut inbound: tokio::net::TcpStream,
    target: SocketAddr,
    mut hang: watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    let swallow = |mut inbound: tokio::net::TcpStream| async move {
        let mut sink = [0u8; 4096];
        while matches!(inbound.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    if *hang.borrow() {
        return swallow(inbound).await;
    }
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let copied = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => true,
        _ = hang.wait_for(|h| *h) => false,
    };
    if !copied {
        // Keep both ends open and silent.
        let _keep = outbound;
        swallow(inbound).await;
    }
}

pub fn upstream(name: &str, url: &str) -> UpstreamConfig {
    UpstreamConfig::new(name, url)
}

/// The value of the series `name` whose labels include all of `labels`, in Prometheus text.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.split_once("} ")?;
        let pairs: Vec<&str> = set.split(',').collect();
        labels
            .iter()
            .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()))
            .then(|| value.trim().parse().ok())?
    })
}

/// Poll the gateway's `GET /ready` at `base` until `done` holds for its JSON body (a
/// deadline, not a clock); that body.
pub async fn ready_until(base: &str, done: impl Fn(&Value) -> bool) -> Value {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body: Value = http
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting; /ready says {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
