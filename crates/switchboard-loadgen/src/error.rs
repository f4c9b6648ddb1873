//! What can stop a run before its first request.

use std::time::Duration;

/// A run that cannot start: bad options, or a target that cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option has a value the run cannot use; the message names the option.
    #[error("{0}")]
    Usage(String),
    /// An MCP session could not be opened.
    #[error("opening MCP session {worker} failed: {source}")]
    Connect {
        worker: usize,
        #[source]
        source: switchboard_protocol::mcp_client::ConnectError,
    },
    /// A `--raw` session could not be opened (the message says which step failed).
    #[error("opening MCP session {worker} failed: {message}")]
    RawConnect { worker: usize, message: String },
    /// The HTTP client could not be built.
    #[error("building the HTTP client failed: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// A serving command (`scripted-llm`, `fixed`, `forward`) could not listen or serve.
    #[error("serving on {addr}: {source}")]
    Serve {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Writing the report failed.
    #[error("writing the report to {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }
}

/// A duration option in seconds: finite and not negative.
pub(crate) fn seconds(option: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        Error::usage(format!(
            "{option} {value}: expected a number of seconds >= 0, e.g. 5 or 0.5"
        ))
    })
}
