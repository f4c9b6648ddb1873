//! Errors of the sandbox service.

use crate::isolation::IsolationError;

/// Why the sandbox cannot start or serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting cannot work; the message names it.
    #[error("{0}")]
    Config(String),
    /// The host refuses the isolation the sandbox requires; the message says what is missing
    /// and how to grant it. The sandbox never runs code without it.
    #[error("the sandbox refuses to start: {0}")]
    Isolation(String),
    #[error(transparent)]
    Serve(#[from] switchboard_runtime::Error),
}

impl From<IsolationError> for Error {
    fn from(error: IsolationError) -> Self {
        match error {
            IsolationError::Config(m) => Error::Config(m),
            IsolationError::Unsupported(m) => Error::Isolation(m),
        }
    }
}

impl From<Error> for switchboard_runtime::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Serve(e) => e,
            other => switchboard_runtime::Error::Config(other.to_string()),
        }
    }
}

/// Why one execution was not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The request is malformed (e.g. a negative timeout).
    #[error("{0}")]
    BadRequest(String),
    /// Every interpreter is busy and none became free in time.
    #[error("{0}")]
    Busy(String),
    /// Interpreters cannot be started, or the service is stopping: the program was not run
    /// (`503`, so a caller with several sandboxes may send it to another).
    #[error("{0}")]
    Unavailable(String),
    /// No such session for this caller (`404`): it never existed or is someone else's.
    #[error("{0}")]
    NoSession(String),
    /// The session has ended (`410`); the message says why.
    #[error("{0}")]
    SessionEnded(String),
    /// The caller has as many sessions as it may (`429`).
    #[error("{0}")]
    TooMany(String),
    /// A file is larger than allowed (`413`).
    #[error("{0}")]
    TooLarge(String),
    /// No such file in the session (`404`).
    #[error("{0}")]
    NotFound(String),
    /// The program was handed to an interpreter, and its result was lost (`500`: it may have
    /// run, so it must not be sent elsewhere).
    #[error("{0}")]
    Lost(String),
}
