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
use switchboard_runtime::http::HttpArgs;

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
    pub http: HttpArgs,
}

/// Port offsets from the base port, in the order of DESIGN.md's table.
const TIME_CLIENT_OFFSET: u16 = 3;
const SANDBOX_OFFSET: u16 = 1;
const MCP_SERVER_OFFSET: u16 = 0;
const CODE_EXECUTOR_OFFSET: u16 = 4;
const MIDDLEWARE_OFFSET: u16 = 2;

/// One started service: its name, the URL of its main endpoint, and its serve future.
struct Started {
    name: &'static str,
    base_url: String,
    endpoint: &'static str,
    task: BoxFuture<'static, Result<(), switchboard_runtime::Error>>,
}

pub async fn run(args: Args, context: Context) -> anyhow::Result<()> {
    let file = context.config_file.as_ref();
    let http = super::http_settings(&args.http, file)?;
    let moved = args.host.is_some() || args.base_port.is_some();
    let host = args.host.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let base = args.base_port.unwrap_or(8000);
    let port = |offset: u16| -> anyhow::Result<u16> {
        base.checked_add(offset)
            .with_context(|| format!("--base-port {base} leaves no room for port +{offset}"))
    };

    let mut started: Vec<Started> = Vec::new();

    // time-client
    {
        let raw = switchboard_runtime::config::layer(
            &from_env::<switchboard_time::RawConfig>()?,
            file,
            switchboard_time::SERVICE,
        )?;
        let mut config = switchboard_time::Config::from_parts(raw, http.clone())?;
        if moved {
            config.listen = (host, port(TIME_CLIENT_OFFSET)?).into();
        }
        let listener = super::bind(switchboard_time::SERVICE, config.listen).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shutdown = context.shutdown.child_token();
        started.push(Started {
            name: switchboard_time::SERVICE,
            base_url,
            endpoint: "/mcp",
            task: Box::pin(switchboard_time::serve(listener, config, shutdown)),
        });
    }

    // sandbox, then the code-executor pointed at the address the sandbox is bound to (both
    // before the gateway, which picks up the code-executor's address from `started`).
    let sandbox_url = {
        let raw = switchboard_runtime::config::layer(
            &from_env::<switchboard_sandbox::RawConfig>()?,
            file,
            switchboard_sandbox::SERVICE,
        )?;
        let mut config = switchboard_sandbox::Config::from_parts(raw, http.clone())?;
        if moved {
            config.listen = (host, port(SANDBOX_OFFSET)?).into();
        }
        let listener = super::bind(switchboard_sandbox::SERVICE, config.listen).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shutdown = context.shutdown.child_token();
        started.push(Started {
            name: switchboard_sandbox::SERVICE,
            base_url: base_url.clone(),
            endpoint: "/mcp",
            task: Box::pin(async move {
                switchboard_sandbox::serve(listener, config, shutdown)
                    .await
                    .map_err(Into::into)
            }),
        });
        base_url
            .replace("//0.0.0.0:", "//127.0.0.1:")
            .replace("//[::]:", "//[::1]:")
    };
    {
        let raw = switchboard_runtime::config::layer(
            &from_env::<switchboard_code_executor::RawConfig>()?,
            file,
            switchboard_code_executor::SERVICE,
        )?;
        let mut config = switchboard_code_executor::Config::from_parts(raw, http.clone())?;
        if moved {
            config.listen = (host, port(CODE_EXECUTOR_OFFSET)?).into();
        }
        config.sandbox_url = sandbox_url;
        let listener = super::bind(switchboard_code_executor::SERVICE, config.listen).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shutdown = context.shutdown.child_token();
        started.push(Started {
            name: switchboard_code_executor::SERVICE,
            base_url,
            endpoint: "/mcp",
            task: Box::pin(switchboard_code_executor::serve(listener, config, shutdown)),
        });
    }

    // mcp-server: upstreams named like a service started above point at the address that
    // service is bound to; any other upstream (an external MCP server from the config) keeps
    // its configured URL. The gateway serves while any of them is missing.
    {
        let raw = switchboard_runtime::config::layer(
            &from_env::<switchboard_gateway::RawConfig>()?,
            file,
            switchboard_gateway::SERVICE,
        )?;
        let mut config = switchboard_gateway::Config::from_parts(raw, http.clone())?;
        if moved {
            config.listen = (host, port(MCP_SERVER_OFFSET)?).into();
        }
        for upstream in &mut config.upstreams {
            if let Some(service) = started.iter().find(|s| s.name == upstream.name) {
                let base = service
                    .base_url
                    .replace("//0.0.0.0:", "//127.0.0.1:")
                    .replace("//[::]:", "//[::1]:");
                upstream.url = format!("{base}{}", service.endpoint);
            }
        }
        let listener = super::bind(switchboard_gateway::SERVICE, config.listen).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shutdown = context.shutdown.child_token();
        started.push(Started {
            name: switchboard_gateway::SERVICE,
            base_url,
            endpoint: "/mcp",
            task: Box::pin(switchboard_gateway::serve(listener, config, shutdown)),
        });
    }

    // middleware: talks to the gateway started above, at the address it is bound to.
    {
        let raw = switchboard_runtime::config::layer(
            &from_env::<switchboard_middleware::RawConfig>()?,
            file,
            switchboard_middleware::SERVICE,
        )?;
        let mut config = switchboard_middleware::Config::from_parts(raw, http.clone())?;
        if moved {
            config.listen = (host, port(MIDDLEWARE_OFFSET)?).into();
        }
        if let Some(gateway) = started
            .iter()
            .find(|s| s.name == switchboard_gateway::SERVICE)
        {
            let base = gateway
                .base_url
                .replace("//0.0.0.0:", "//127.0.0.1:")
                .replace("//[::]:", "//[::1]:");
            config.gateway_url = format!("{base}{}", gateway.endpoint);
        }
        let listener = super::bind(switchboard_middleware::SERVICE, config.listen).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shutdown = context.shutdown.child_token();
        started.push(Started {
            name: switchboard_middleware::SERVICE,
            base_url,
            endpoint: "/",
            task: Box::pin(switchboard_middleware::serve(listener, config, shutdown)),
        });
    }

    let names: Vec<(&'static str, String, &'static str)> = started
        .iter()
        .map(|s| (s.name, s.base_url.clone(), s.endpoint))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for service in started {
        let name = service.name;
        tasks.spawn(async move { (name, service.task.await) });
    }

    let timeout = switchboard_runtime::config::seconds("--ready-timeout", args.ready_timeout)?;
    tokio::select! {
        result = wait_all_ready(&names, timeout) => result?,
        Some(joined) = tasks.join_next() => {
            context.shutdown.cancel();
            return report_exit(joined);
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
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = report_exit(joined) {
            first_error.get_or_insert(error);
            context.shutdown.cancel();
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
