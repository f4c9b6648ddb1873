//! Command-line parsing and process set-up shared by every subcommand.

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use switchboard_runtime::{
    config::ConfigFile,
    telemetry::{self, LogFormat, TelemetryOptions},
};
use tokio_util::sync::CancellationToken;

use crate::commands::{
    self,
    service::{self, ServiceArgs},
};

/// Sections a configuration file may have; anything else is a typo.
pub const CONFIG_SECTIONS: &[&str] = &[
    "http",
    "auth",
    "audit",
    "time-client",
    "mcp-server",
    "sandbox",
    "code-executor",
    "middleware",
];

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A distributed MCP system: chat middleware, MCP gateway, tool services and a Python sandbox."
)]
pub struct Cli {
    /// TOML configuration file with one table per service ([time-client], [mcp-server], ...)
    /// and [http] for the shared HTTP settings. Flags and environment variables win over it.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `switchboard_gateway=debug,info`. The default shows our own
    /// records from INFO up and the libraries' (rmcp, hyper, ...) from WARN up.
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        default_value = DEFAULT_LOG_FILTER,
        value_name = "FILTER"
    )]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing a variant would only complicate clap's derive"
)]
pub enum Command {
    /// Start every service in this process on its port and wait until all are ready.
    Up(commands::up::Args),
    /// Run the time-client service (MCP time tools, port 8003).
    TimeClient(ServiceArgs<switchboard_time::RawConfig>),
    /// Run the sandbox service (isolated Python execution and guarded package installs, port 8001).
    Sandbox(ServiceArgs<switchboard_sandbox::RawConfig>),
    /// Run the code-executor service (MCP execute_code/install_package via the sandbox, port 8004).
    CodeExecutor(ServiceArgs<switchboard_code_executor::RawConfig>),
    /// Run the mcp-server gateway (federates upstream MCP servers at /mcp, port 8000).
    McpServer(ServiceArgs<switchboard_gateway::RawConfig>),
    /// Exit 0 if a URL answers 2xx (container health checks: the image has no curl).
    Probe(commands::probe::Args),
    /// Run the chat middleware (chat API, OpenAI-compatible API, chat page, port 8002).
    Middleware(ServiceArgs<switchboard_middleware::RawConfig>),
    /// Ask the middleware; prints the tool calls and the answer.
    Chat(commands::chat::Args),
    /// List the gateway's tools.
    Tools(commands::tools::Args),
    /// Call one of the gateway's tools: `switchboard call NAME '{"arg": ...}'`.
    Call(commands::call::Args),
    /// Make API keys: `switchboard auth new-key NAME`.
    Auth(commands::auth::Args),
}

/// What a subcommand gets besides its own arguments.
pub struct Context {
    pub config_file: Option<ConfigFile>,
    pub shutdown: CancellationToken,
}

pub fn run() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // Exported spans name the service this process runs (the subcommand: `time-client`,
    // `mcp-server`, ...), unless OTEL_SERVICE_NAME says otherwise; `up` hosts them all.
    let service = match matches.subcommand_name() {
        Some("up") | None => "switchboard",
        Some(name) => name,
    };
    // Before the async runtime: the OTLP exporter builds its blocking HTTP client.
    let telemetry = match telemetry::init(TelemetryOptions::new(
        cli.log_format,
        log_level(&cli),
        service,
    )) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run_command(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    };
    // Tasks end (and close their spans) with the runtime; then export what is queued.
    drop(runtime);
    if let Err(error) = telemetry.shutdown() {
        eprintln!("warning: {error}");
    }
    code
}

/// The default log filter: targets starting with `switchboard` (every crate of ours) at INFO,
/// everything else at WARN. rmcp logs each session's peer info at INFO, which buried the five
/// ready lines of `switchboard up`.
pub const DEFAULT_LOG_FILTER: &str = "warn,switchboard=info";

/// The log filter. Client subcommands print results on stdout; service logs at info would
/// drown them.
fn log_level(cli: &Cli) -> &str {
    match &cli.command {
        Command::Chat(_) | Command::Tools(_) | Command::Call(_) | Command::Auth(_)
            if cli.log_level == DEFAULT_LOG_FILTER =>
        {
            "warn"
        }
        _ => cli.log_level.as_str(),
    }
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    let config_file = match &cli.config {
        Some(path) => {
            let file = ConfigFile::load(path)?;
            file.check_sections(CONFIG_SECTIONS)?;
            Some(file)
        }
        None => None,
    };
    let shutdown = CancellationToken::new();
    switchboard_runtime::shutdown::cancel_on_signal(shutdown.clone());
    let context = Context {
        config_file,
        shutdown,
    };
    match cli.command {
        Command::Up(args) => commands::up::run(args, context).await,
        Command::TimeClient(args) => service::run::<service::TimeClient>(args, context).await,
        Command::Sandbox(args) => service::run::<service::Sandbox>(args, context).await,
        Command::CodeExecutor(args) => service::run::<service::CodeExecutor>(args, context).await,
        Command::McpServer(args) => service::run::<service::McpServer>(args, context).await,
        Command::Probe(args) => commands::probe::run(args).await,
        Command::Middleware(args) => service::run::<service::Middleware>(args, context).await,
        Command::Chat(args) => commands::chat::run(args).await,
        Command::Tools(args) => commands::tools::run(args).await,
        Command::Call(args) => commands::call::run(args).await,
        Command::Auth(args) => commands::auth::run(args),
    }
}

/// Parse a settings struct from the environment alone (no flags): how `switchboard up` reads
/// each service's variables, since five services cannot share one set of `--listen` flags.
pub fn from_env<T>() -> anyhow::Result<T>
where
    T: clap::Args + clap::FromArgMatches,
{
    let command = T::augment_args(clap::Command::new("env").no_binary_name(true));
    let matches = command
        .try_get_matches_from(std::iter::empty::<String>())
        .map_err(|e| anyhow::anyhow!(e.to_string().trim().to_owned()))?;
    Ok(T::from_arg_matches(&matches)?)
}
