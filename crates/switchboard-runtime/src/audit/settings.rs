//! Where audit records go: the settings and their validation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::writer::open_append;
use crate::Error;

/// Where records go.
#[derive(Debug, Clone)]
pub enum Sink {
    Stdout,
    /// Rotated when a write would make it pass `max_bytes`: `path` -> `path.1` -> ... ->
    /// `path.<keep>`, the oldest deleted.
    File {
        path: PathBuf,
        max_bytes: u64,
        keep: usize,
    },
}

/// Command-line/env/TOML form of [`AuditSettings`].
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditArgs {
    /// Write the audit log (one JSON line per tool call, execution, package request, approval,
    /// failed authentication or denial) to FILE, or to stdout with `-`. Off when unset.
    #[arg(long, env = "SWITCHBOARD_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Rotate the audit log file when a write would make it pass this size [default: 104857600].
    #[arg(long, env = "SWITCHBOARD_AUDIT_LOG_MAX_BYTES", value_name = "BYTES")]
    pub audit_log_max_bytes: Option<u64>,
    /// Rotated audit log files kept (FILE.1 ... FILE.N) [default: 5].
    #[arg(long, env = "SWITCHBOARD_AUDIT_LOG_KEEP", value_name = "N")]
    pub audit_log_keep: Option<usize>,
    /// Refuse audited calls while the audit log cannot be written (its last write failed, or
    /// its queue is full) instead of serving them unrecorded.
    #[arg(
        long,
        env = "SWITCHBOARD_AUDIT_FAIL_CLOSED",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub audit_fail_closed: Option<bool>,
}

/// Validated audit settings; `sink: None` is off.
#[derive(Debug, Clone, Default)]
pub struct AuditSettings {
    pub sink: Option<Sink>,
    pub fail_closed: bool,
}

impl TryFrom<AuditArgs> for AuditSettings {
    type Error = Error;

    fn try_from(args: AuditArgs) -> Result<Self, Error> {
        const LOG: &str = "audit_log (--audit-log / SWITCHBOARD_AUDIT_LOG)";
        let max_bytes = args.audit_log_max_bytes.unwrap_or(100 * 1024 * 1024);
        if max_bytes == 0 {
            return Err(Error::Config(
                "audit_log_max_bytes (--audit-log-max-bytes / SWITCHBOARD_AUDIT_LOG_MAX_BYTES): must be at least 1 (a size in bytes)".into(),
            ));
        }
        let sink = match args.audit_log {
            None => None,
            Some(path) if path.as_os_str() == "-" => Some(Sink::Stdout),
            Some(path) if path.as_os_str().is_empty() => {
                return Err(Error::Config(format!(
                    "{LOG}: empty; give a file path, or '-' for stdout"
                )));
            }
            Some(path) => {
                // Checked now, so that a bad path stops the start instead of losing records.
                let dir = match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir,
                    _ => Path::new("."),
                };
                if !dir.is_dir() {
                    return Err(Error::Config(format!(
                        "{LOG}: directory {} does not exist",
                        dir.display()
                    )));
                }
                open_append(&path).map_err(|e| {
                    Error::Config(format!(
                        "{LOG}: cannot open {} for append: {e}",
                        path.display()
                    ))
                })?;
                Some(Sink::File {
                    path,
                    max_bytes,
                    keep: args.audit_log_keep.unwrap_or(5),
                })
            }
        };
        Ok(Self {
            sink,
            fail_closed: args.audit_fail_closed.unwrap_or(false),
        })
    }
}
