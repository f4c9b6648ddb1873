//! `switchboard up`: every service in one process, each on its own port.
//!
//! Each service reads its settings from its environment variables and its section of the
//! config file, exactly as when it runs alone; `--host` and `--base-port` move all of them at
//! once (service ports keep their offsets: mcp-server +0, sandbox +1, middleware +2,
//! time-client +3, code-executor +4) and the services are pointed at each other's new
//! addresses. `up` waits until every `/ready` answers 200, prints one line per service, and
//! stops them all on Ctrl-C.

use std::{net::IpAddr, time::Duration};

use anyhow::Context as _;
use futures::future::BoxFuture;
use switchboard_runtime::{
    HttpSettings,
    auth::{
        Secret,
        api_keys::{self, ApiKeys},
    },
};
use tokio_util::sync::CancellationToken;

use super::service::{self, CodeExecutor, McpServer, Middleware, Sandbox, Service, TimeClient};
use crate::cli::{Context, from_env};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address every service listens on (overrides each service's own listen setting).
    #[arg(long, env = "SWITCHBOARD_HOST", value_name = "IP")]
    pub host: Option<IpAddr>,
    /// Port of the first service; the others follow at their usual offsets (default 8000:
    /// mcp-server 8000, sandbox 8001, middleware 8002, time-client 8003, code-executor 8004).
    #[arg(long, env = "SWITCHBOARD_BASE_PORT", value_name = "PORT")]
    pub base_port: Option<u16>,
    /// Seconds to wait for every service to become ready.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub ready_timeout: f64,
    #[command(flatten)]
    pub shared: super::SharedArgs,
}

/// The name the services of one `up` know each other by, in logs and audit lines.
const INTERNAL_CALLER: &str = "switchboard-up";

/// Port offsets from the base port, in the order of docs/design.md's table.
const TIME_CLIENT_OFFSET: u16 = 3;
const SANDBOX_OFFSET: u16 = 1;
const MCP_SERVER_OFFSET: u16 = 0;
const CODE_EXECUTOR_OFFSET: u16 = 4;
const MIDDLEWARE_OFFSET: u16 = 2;

/// One started service: its name, the URL of its main endpoint, its serve future and the
/// token that stops it.
struct Started {
    name: &'static str,
    base_url: String,
    endpoint: &'static str,
    task: BoxFuture<'static, Result<(), switchboard_runtime::Error>>,
    stop: CancellationToken,
}

impl Started {
    /// Bind `S`'s listener and prepare its serve future (run later, with the others).
    async fn bind<S: Service>(
        config: S::Config,
        endpoint: &'static str,
        http: &HttpSettings,
    ) -> anyhow::Result<Self> {
        let listener = super::bind(S::NAME, S::listen(&config), http).await?;
        // Not a child of the process's token: `run` stops the services one by one.
        let stop = CancellationToken::new();
        Ok(Self {
            name: S::NAME,
            base_url: format!("http://{}", listener.local_addr()?),
            endpoint,
            task: S::serve(listener, config, stop.clone()),
            stop,
        })
    }

    /// The URL another service in this process uses to reach this one's endpoint.
    fn url(&self) -> String {
        format!("{}{}", reachable(&self.base_url), self.endpoint)
    }
}

/// `base_url` with a wildcard listen address replaced by the loopback one, which a client
/// can connect to.
fn reachable(base_url: &str) -> String {
    base_url
        .replace("//0.0.0.0:", "//127.0.0.1:")
        .replace("//[::]:", "//[::1]:")
}

pub async fn run(args: Args, context: Context) -> anyhow::Result<()> {
    let file = context.config_file.as_ref();
    let mut http = super::http_settings(&args.shared, file)?;
    // With authentication on, the services here call each other with a key made for this run
    // (held in memory, admitted by all of them besides the configured keys and tokens).
    let internal = http.authenticates().then(|| {
        let (key, _) = api_keys::new_key(INTERNAL_CALLER);
        http.auth.api_keys = Some(ApiKeys::admitting(
            http.auth.api_keys.take(),
            INTERNAL_CALLER,
            &key,
        ));
        Secret::new(key)
    });
    let moved = args.host.is_some() || args.base_port.is_some();
    let host = args.host.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let base = args.base_port.unwrap_or(8000);
    let port = |offset: u16| -> anyhow::Result<u16> {
        base.checked_add(offset)
            .with_context(|| format!("--base-port {base} leaves no room for port +{offset}"))
    };

    let mut started: Vec<Started> = Vec::new();

    let mut config = service::config::<TimeClient>(&from_env()?, file, http.clone())?;
    if moved {
        config.listen = (host, port(TIME_CLIENT_OFFSET)?).into();
    }
    started.push(Started::bind::<TimeClient>(config, "/mcp", &http).await?);

    // sandbox, then the code-executor pointed at the address the sandbox is bound to (both
    // before the gateway, which picks up the code-executor's address from `started`).
    let mut config = service::config::<Sandbox>(&from_env()?, file, http.clone())?;
    if moved {
        config.listen = (host, port(SANDBOX_OFFSET)?).into();
    }
    let sandbox = Started::bind::<Sandbox>(config, "/mcp", &http).await?;
    let sandbox_url = reachable(&sandbox.base_url);
    started.push(sandbox);

    let mut config = service::config::<CodeExecutor>(&from_env()?, file, http.clone())?;
    if moved {
        config.listen = (host, port(CODE_EXECUTOR_OFFSET)?).into();
        // One code-executor per state directory: on ports of its own, the default becomes
        // one of its own too (`code-executor-18004`), so that several `up`s can run at once.
        if config.tasks.state_dir == switchboard_code_executor::config::default_state_dir() {
            let port = config.listen.port();
            config.tasks.state_dir = config.tasks.state_dir.map(|dir| {
                let mut name = dir.file_name().unwrap_or_default().to_owned();
                name.push(format!("-{port}"));
                dir.with_file_name(name)
            });
        }
    }
    config.sandbox_urls = vec![sandbox_url];
    if let Some(key) = &internal {
        config.sandbox_token = Some(key.clone());
    }
    started.push(Started::bind::<CodeExecutor>(config, "/mcp", &http).await?);

    // mcp-server: upstreams named like a service started above point at the address that
    // service is bound to; any other upstream (an external MCP server from the config) keeps
    // its configured URL. The gateway serves while any of them is missing.
    let mut config = service::config::<McpServer>(&from_env()?, file, http.clone())?;
    if moved {
        config.listen = (host, port(MCP_SERVER_OFFSET)?).into();
    }
    if internal.is_some() {
        // The middleware calls with the run's key on behalf of whoever asked it.
        config.delegates.push(INTERNAL_CALLER.to_owned());
    }
    for upstream in &mut config.upstreams {
        if let Some(service) = started.iter().find(|s| s.name == upstream.name) {
            upstream.url = service.url();
            if let Some(key) = &internal {
                upstream
                    .access
                    .headers
                    .insert(reqwest::header::AUTHORIZATION, key.bearer_header()?);
            }
        }
    }
    started.push(Started::bind::<McpServer>(config, "/mcp", &http).await?);

    // middleware: talks to the gateway started above, at the address it is bound to.
    let mut config = service::config::<Middleware>(&from_env()?, file, http.clone())?;
    if moved {
        config.listen = (host, port(MIDDLEWARE_OFFSET)?).into();
    }
    if let Some(gateway) = started.iter().find(|s| s.name == McpServer::NAME) {
        config.gateway_url = gateway.url();
        config.gateway_token.clone_from(&internal);
    }
    started.push(Started::bind::<Middleware>(config, "/", &http).await?);

    let names: Vec<(&'static str, String, &'static str)> = started
        .iter()
        .map(|s| (s.name, s.base_url.clone(), s.endpoint))
        .collect();
    // Each service runs on a task of its own; one that stops on its own (an error) stops the
    // whole process, as a signal does.
    let mut running = Vec::with_capacity(started.len());
    for service in started {
        let name = service.name;
        let shutdown = context.shutdown.clone();
        let task = tokio::spawn(async move {
            let result = service.task.await;
            shutdown.cancel();
            result
        });
        running.push((name, service.stop, task));
    }

    let timeout = switchboard_runtime::config::seconds("--ready-timeout", args.ready_timeout)?;
    tokio::select! {
        result = wait_all_ready(&names, timeout) => {
            if let Err(error) = result {
                stop_in_order(running).await?;
                return Err(error);
            }
        }
        () = context.shutdown.cancelled() => {}
    }
    if !context.shutdown.is_cancelled() {
        for (name, base_url, endpoint) in &names {
            outln!("{name:<14} {base_url}{endpoint}  ready");
        }
        outln!("switchboard is up; press Ctrl-C to stop");
    }

    // Run until a signal, or until one service fails (which stops the rest).
    context.shutdown.cancelled().await;
    let stopped = stop_in_order(running).await;
    // What the last calls recorded reaches the log before the process ends.
    http.audit.flush(Duration::from_secs(5));
    stopped
}

type RunningService = (
    &'static str,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), switchboard_runtime::Error>>,
);

/// Stop the services in the reverse order of their start, each after the one before it has
/// finished: the middleware first, so it closes its gateway session while the gateway is still
/// there; then the gateway, which closes its upstream sessions while the code-executor and the
/// time-client still answer; the sandbox last. The first error is returned.
async fn stop_in_order(running: Vec<RunningService>) -> anyhow::Result<()> {
    let mut first_error = None;
    for (name, stop, task) in running.into_iter().rev() {
        stop.cancel();
        if let Err(error) = report_exit(task.await.map(|result| (name, result))) {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn report_exit(
    joined: Result<(&'static str, Result<(), switchboard_runtime::Error>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok((_, Ok(()))) => Ok(()),
        Ok((name, Err(error))) => Err(anyhow::anyhow!("{name}: {error}")),
        Err(error) => Err(anyhow::anyhow!("a service task failed: {error}")),
    }
}

/// Poll every service's `/ready` until all answer 200. Polling is right here: readiness is
/// decided by the services (an upstream discovered, the sandbox pool filled), and `/ready` is
/// the one place that says so.
async fn wait_all_ready(
    services: &[(&'static str, String, &'static str)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = tokio::time::Instant::now() + timeout;
    for (name, base_url, _) in services {
        let url = format!("{base_url}/ready");
        let mut delay = Duration::from_millis(2);
        loop {
            let last = match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("{name} did not become ready within {timeout:?}: {last}");
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }
    Ok(())
}
