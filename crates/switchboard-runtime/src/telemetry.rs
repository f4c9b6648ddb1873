//! Logs and traces: `tracing` with a human-readable or JSON log format, every span also an
//! OpenTelemetry span, and OTLP export when the standard variables ask for it.
//!
//! - Logs: the filter follows `RUST_LOG` syntax (`info`, `switchboard_gateway=debug,info`).
//!   Spans carry the request context (`http_request{service, method, matched_path, request_id,
//!   trace_id}`), so every log line of a request can be found by its request id or trace id.
//! - Trace context: the spans of the Switchboard crates (targets `switchboard*`, level INFO and
//!   above) are OpenTelemetry spans whatever the log level, so a trace id exists and is
//!   propagated (see [`crate::propagation`]) even when nothing is exported, and even with
//!   `RUST_LOG=warn` a warning inside a request still names its trace id.
//! - Export: OTLP over HTTP (protobuf), switched on by `OTEL_EXPORTER_OTLP_ENDPOINT` (the
//!   collector's base URL, `/v1/traces` is appended) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//!   (the full URL). The other standard variables apply (`OTEL_EXPORTER_OTLP_HEADERS`,
//!   `..._TIMEOUT`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`);
//!   `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` switch it off. Spans are batched on
//!   the exporter's own thread; a request only queues its finished spans. Events (log lines)
//!   inside exported spans become span events, filtered like the log.
//! - Service name: the resource's `service.name` is `OTEL_SERVICE_NAME` (or `service.name` in
//!   `OTEL_RESOURCE_ATTRIBUTES`), else the name the binary passes (the subcommand's service, or
//!   `switchboard` for `switchboard up`). A resource describes a whole process, so under `up`,
//!   where one process hosts five services, each request span also carries the hosted
//!   service in its `service` attribute (`http_request{service="time-client"}`).
//!
//! Call [`Telemetry::shutdown`] before the process exits: it exports what is still queued.

use std::{io::IsTerminal, time::Duration};

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::{Level, Metadata};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt, FilterFn, LevelFilter, filter_fn},
    fmt::{self, writer::BoxMakeWriter},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::Error;

/// How long [`Telemetry::shutdown`] waits for the last export.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";

/// How log lines are written to stderr.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event, with span context.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What [`init`] sets up.
#[non_exhaustive]
pub struct TelemetryOptions {
    pub format: LogFormat,
    /// `RUST_LOG` syntax.
    pub filter: String,
    /// The resource's `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
    pub service_name: String,
    /// Export to this OTLP/HTTP traces URL (e.g. `http://127.0.0.1:4318/v1/traces`) whatever
    /// the environment says; `None` follows the standard variables.
    pub otlp_traces_endpoint: Option<String>,
    /// Where log lines go (default: stderr).
    pub writer: Option<BoxMakeWriter>,
}

impl TelemetryOptions {
    pub fn new(
        format: LogFormat,
        filter: impl Into<String>,
        service_name: impl Into<String>,
    ) -> Self {
        Self {
            format,
            filter: filter.into(),
            service_name: service_name.into(),
            otlp_traces_endpoint: None,
            writer: None,
        }
    }
    pub fn with_otlp_traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_traces_endpoint = Some(url.into());
        self
    }
    /// Write log lines somewhere else than stderr (tests capture them this way).
    pub fn with_writer<W>(mut self, writer: W) -> Self
    where
        W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
    {
        self.writer = Some(BoxMakeWriter::new(writer));
        self
    }
}

/// The installed tracer provider. Cloning is cheap; all clones share one provider.
#[derive(Clone)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    export: Option<String>,
    service_name: String,
}

impl Telemetry {
    /// The OTLP traces URL spans are exported to, if any.
    pub fn export_endpoint(&self) -> Option<&str> {
        self.export.as_deref()
    }

    /// The resource's `service.name`.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Export every finished span now. Blocks until the collector answered (or the export
    /// timeout passed): call it from a blocking context, not on an async worker.
    pub fn flush(&self) -> Result<(), Error> {
        self.provider
            .force_flush()
            .map_err(|e| Error::Telemetry(format!("exporting spans failed: {e}")))
    }

    /// [`Telemetry::flush`] from async code: the blocking export runs off the async workers.
    pub async fn flush_async(&self) -> Result<(), Error> {
        let telemetry = self.clone();
        tokio::task::spawn_blocking(move || telemetry.flush())
            .await
            .map_err(|e| Error::Telemetry(format!("exporting spans failed: {e}")))?
    }

    /// Export what is still queued and stop exporting (within [`SHUTDOWN_TIMEOUT`]). Blocks:
    /// call it after the async runtime has finished.
    pub fn shutdown(self) -> Result<(), Error> {
        self.provider
            .shutdown_with_timeout(SHUTDOWN_TIMEOUT)
            .map_err(|e| Error::Telemetry(format!("exporting the last spans failed: {e}")))
    }
}

/// Install the global subscriber. Call once per process, before starting services and outside
/// an async runtime (the exporter's HTTP client is built on its own thread).
pub fn init(options: TelemetryOptions) -> Result<Telemetry, Error> {
    let filter = parse_filter(&options.filter)?;
    let explicit = options.otlp_traces_endpoint.is_some();
    let export = match options.otlp_traces_endpoint {
        Some(url) => Some(url),
        None => export_from_env()?,
    };
    let resource = resource(&options.service_name);
    let service_name = resource
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .map(|v| v.to_string())
        .unwrap_or_else(|| options.service_name.clone());
    let mut provider = SdkTracerProvider::builder().with_resource(resource);
    if let Some(url) = &export {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(otlp_client(url)?);
        if explicit {
            exporter = exporter.with_endpoint(url.clone());
        }
        let exporter = exporter.build().map_err(|e| {
            Error::Config(format!(
                "OTLP trace export ({TRACES_ENDPOINT} / {ENDPOINT}): {e}; expected an http:// or https:// URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318"
            ))
        })?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    let tracer = provider.tracer("switchboard");

    // Log lines: the user's filter, plus our spans always, so a line inside a request names the
    // request's span (and its trace id) whatever the level.
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = options.writer.is_none() && std::io::stderr().is_terminal();
    let writer = options
        .writer
        .unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr));
    let log_layer = match options.format {
        LogFormat::Human => fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_target(true)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(writer)
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .boxed(),
    };
    let log_layer = log_layer.with_filter(filter.or(switchboard_spans()));

    // OpenTelemetry: our spans; log events too while exporting (they become span events).
    let events = if export.is_some() {
        parse_filter(&options.filter)?
    } else {
        EnvFilter::new("off")
    };
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_context_activation(false)
        // Span names say where they come from; file/line attributes would cost every span.
        .with_location(false)
        .with_filter(switchboard_spans().or(events.and(only_events())));

    tracing_subscriber::registry()
        .with(log_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| Error::Telemetry(e.to_string()))?;
    match &export {
        Some(url) => tracing::info!(
            endpoint = %url,
            service_name = %service_name,
            "exporting traces with OTLP/HTTP"
        ),
        None => tracing::debug!(
            "trace export off (set {ENDPOINT} to export); trace ids still propagate and appear in logs"
        ),
    }
    Ok(Telemetry {
        provider,
        export,
        service_name,
    })
}

fn parse_filter(filter: &str) -> Result<EnvFilter, Error> {
    EnvFilter::try_new(filter).map_err(|e| {
        Error::Config(format!(
            "log level (--log-level / RUST_LOG): '{filter}' is not a filter ({e}); expected e.g. info or switchboard_gateway=debug,info"
        ))
    })
}

/// Spans of the Switchboard crates at INFO and above: these carry the trace context.
fn switchboard_spans() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    filter_fn(|meta: &Metadata<'_>| {
        meta.is_span() && *meta.level() <= Level::INFO && meta.target().starts_with("switchboard")
    })
    .with_max_level_hint(LevelFilter::INFO)
}

/// Events only. The level hint keeps the combined filters' hint equal to the log filter's:
/// without one, the global maximum level would be TRACE, and every disabled `trace!`/`debug!`
/// in the dependencies — and every `log` record, which `tracing-log` forwards unless the
/// maximum level excludes it — would be checked one by one (measured: ~20 µs of CPU per MCP
/// call at the time-client).
fn only_events() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    filter_fn(|meta: &Metadata<'_>| meta.is_event()).with_max_level_hint(LevelFilter::TRACE)
}

/// The OTLP traces URL the standard variables ask for, or `None` when export is off.
/// The exporter's HTTP client: the workspace's one stack ([`crate::client`]), trusting the CA
/// of `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE` / `OTEL_EXPORTER_OTLP_CERTIFICATE` (the standard
/// variables) or else `SWITCHBOARD_CA_FILE`, besides the platform's roots. Built here, outside
/// the async runtime: the blocking client runs its own.
fn otlp_client(url: &str) -> Result<reqwest::blocking::Client, Error> {
    crate::client::check_url(
        &format!("OTLP trace export ({TRACES_ENDPOINT} / {ENDPOINT})"),
        url,
    )?;
    let ca_file = [
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "SWITCHBOARD_CA_FILE",
    ]
    .iter()
    .find_map(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
    .map(std::path::PathBuf::from);
    let options = crate::client::ClientOptions {
        ca_file,
        ..Default::default()
    };
    options.check_proxy_for(url)?;
    let timeout = [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.trim().parse::<u64>().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis);
    let builder = options.blocking_builder()?.timeout(timeout);
    // Built (and its own runtime started) on a thread of its own, as opentelemetry-otlp does:
    // a blocking client must not be made or dropped on an async worker.
    std::thread::spawn(move || builder.build())
        .join()
        .map_err(|_| Error::Telemetry("building the OTLP HTTP client panicked".into()))?
        .map_err(|e| Error::Config(format!("OTLP trace export: {}", crate::client::chain(&e))))
}

fn export_from_env() -> Result<Option<String>, Error> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    let url = match (var(TRACES_ENDPOINT), var(ENDPOINT)) {
        (Some(url), _) => url,
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    for name in [TRACES_PROTOCOL, PROTOCOL] {
        if let Some(protocol) = var(name) {
            if protocol.trim() != "http/protobuf" {
                return Err(Error::Config(format!(
                    "{name}: '{protocol}' is not supported; expected http/protobuf (OTLP over HTTP, usually port 4318; gRPC is not built in)"
                )));
            }
            break; // the traces-specific variable wins over the general one
        }
    }
    Ok(Some(url))
}

/// The resource: the SDK's detectors (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, SDK
/// name and version), with `service_name` when the environment names no service.
fn resource(service_name: &str) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder()
            .with_attribute(KeyValue::new("service.name", service_name.to_owned()))
            .build()
    }
}
