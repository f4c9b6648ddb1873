//! Logging set-up: `tracing` with a human-readable or a JSON format.
//!
//! The filter follows `RUST_LOG` syntax (`info`, `switchboard_gateway=debug,info`, ...).
//! Spans carry the request context (`http_request{method, matched_path, request_id}`), so every
//! log line of a request can be found by its request id.

use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::Error;

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

/// Install the global subscriber. Call once per process, before starting services.
pub fn init(format: LogFormat, filter: &str) -> Result<(), Error> {
    let filter = EnvFilter::try_new(filter).map_err(|e| {
        Error::Config(format!(
            "log level (--log-level / RUST_LOG): '{filter}' is not a filter ({e}); expected e.g. info or switchboard_gateway=debug,info"
        ))
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Human => registry
            .with(fmt::layer().with_writer(std::io::stderr).with_target(true))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_current_span(true)
                    .with_span_list(true)
                    .flatten_event(true),
            )
            .try_init(),
    };
    result.map_err(|e| Error::Telemetry(e.to_string()))
}
