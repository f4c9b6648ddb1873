//! Wire types of the sandbox REST API (`POST /execute`, `POST /packages`, ...).
//!
//! The code-executor forwards `execute_code`/`install_package` calls as these requests, and
//! their results are the structured content of those tools, so the field names here are part
//! of the contract in DESIGN.md.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /execute` body; also the arguments of the `execute_code` tool.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The Python 3 program to run. It runs as a fresh process with no network, an empty
    /// environment and a private, temporary working directory; print what you want to see.
    pub code: String,
    /// Wall-clock limit in seconds for this run. Capped by the sandbox's configured maximum;
    /// omitted means the sandbox default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Text given to the program on standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

/// The outcome of one execution; also the structured content of `execute_code`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ExecutionResult {
    /// What the program wrote to standard output (possibly truncated, see `truncated`).
    pub stdout: String,
    /// What the program wrote to standard error, including any traceback.
    pub stderr: String,
    /// The exit status, when the program exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended the program (e.g. `SIGKILL`), when it was killed.
    pub signal: Option<String>,
    /// Wall-clock time of the run in milliseconds.
    pub duration_ms: f64,
    /// The run was killed because it exceeded its wall-clock or CPU time limit.
    pub timed_out: bool,
    /// The run was killed or failed because it exceeded its memory limit.
    pub memory_exceeded: bool,
    /// Output went over the cap; stdout/stderr hold only the first part.
    pub truncated: bool,
    /// True when the program exited with status 0 within its limits.
    pub success: bool,
}

/// `POST /packages` body; also the arguments of the `install_package` tool.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// The package name as on the package index, e.g. `requests`.
    pub package: String,
    /// An exact version to install, e.g. `2.31.0`; omitted means the newest allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What became of an install request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InstallStatus {
    /// Installed (or already present); programs can import it now.
    Installed,
    /// Refused; `reason` says why.
    Rejected,
    /// Held until an operator approves it; `approval_id` identifies the request.
    PendingApproval,
}

/// The answer to an install request; also the structured content of `install_package`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct InstallOutcome {
    pub status: InstallStatus,
    /// The normalized package name (PEP 503).
    pub package: String,
    /// The version asked for or installed, when known.
    pub version: Option<String>,
    /// Why the request was rejected or held.
    pub reason: Option<String>,
    /// The id an operator approves, for `pending_approval`.
    pub approval_id: Option<String>,
    /// A sentence for people and models.
    pub message: String,
}
