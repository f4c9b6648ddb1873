//! Upstreams that are programs: the gateway starts the command, speaks MCP over its stdin and
//! stdout (rmcp's client over the pipes of [`super::stdio_lane`], which also carries the raw
//! task requests), and logs what it writes to stderr under the upstream's name.
//!
//! - The program gets `PATH` and the variables of its `env` setting, nothing else: none of the
//!   gateway's own environment (API keys, tokens) reaches it.
//! - Supervision is the supervisor's, as for HTTP upstreams: a program that exits is started
//!   again with backoff, and while it keeps failing `/ready` shows the upstream down with the
//!   reason and the last line it wrote to stderr, and how many starts failed in a row.
//! - Stopping follows the MCP specification's stdio shutdown: stdin closed, then `SIGTERM`,
//!   then `SIGKILL`, 3 s apart ([`super::stdio_lane`]).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
};

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{
    handler::Routes,
    stdio_lane::{Lane, Lines},
    tasks::Declared,
    transport::Observed,
};
use crate::config::StdioCommand;

/// Longest stderr line kept for `/ready` (the log has them whole).
const MAX_TAIL: usize = 300;

/// The last line a program wrote to stderr, shared by its successive runs.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<Option<String>>>);

impl StderrTail {
    fn set(&self, line: &str) {
        let mut line = line.trim().to_owned();
        if let Some((cut, _)) = line.char_indices().nth(MAX_TAIL) {
            line.truncate(cut);
            line.push('…');
        }
        if let Ok(mut tail) = self.0.lock() {
            *tail = Some(line);
        }
    }

    /// `reason`, followed by the last stderr line when there is one.
    pub fn explain(&self, reason: String) -> String {
        match self.0.lock().ok().and_then(|tail| tail.clone()) {
            Some(line) if !line.is_empty() => format!("{reason}; its last stderr line: {line}"),
            _ => reason,
        }
    }
}

/// `command` as a path (when it has a `/`) or found in the gateway's `PATH`; `None` when
/// there is no such executable file.
pub fn resolve(command: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let path = PathBuf::from(command);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| executable(candidate))
}

/// Start `command` for the upstream `name`: its MCP transport, observed by `routes`, and its
/// raw lane (the `initialize` answer's capabilities go to `declared`); its stderr logged line
/// by line and its last line kept in `tail`.
pub fn spawn(
    name: &Arc<str>,
    command: &StdioCommand,
    routes: Arc<Routes>,
    tail: &StderrTail,
    declared: Declared,
) -> Result<(Observed<Lines>, Lane), String> {
    let program = resolve(&command.command)
        .ok_or_else(|| format!("command '{}' is not found", command.command))?;
    let mut process = tokio::process::Command::new(program);
    process.args(&command.args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        process.env("PATH", path);
    }
    process.envs(&command.env);
    if let Some(cwd) = &command.cwd {
        process.current_dir(cwd);
    }
    // The program is stopped gracefully from a task; when the runtime itself is going away
    // that task never runs (seen: programs left behind by tests that ended without a graceful
    // stop). Killing it on drop of the child does not depend on the runtime.
    process.kill_on_drop(true);
    process
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = process
        .spawn()
        .map_err(|e| format!("cannot start '{}': {e}", command.command))?;
    tracing::debug!(upstream = %name, pid = ?child.id(), "stdio upstream started");
    if let Some(stderr) = child.stderr.take() {
        let name = name.clone();
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "switchboard_gateway::upstream::stderr", upstream = %name, "{line}");
                tail.set(&line);
            }
        });
    }
    let (lines, lane) = super::stdio_lane::attach(name, child, declared)?;
    Ok((Observed::new(lines, routes), lane))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_by_path_or_in_path() {
        assert_eq!(resolve("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert!(resolve("sh").is_some_and(|p| p.ends_with("sh")));
        assert!(resolve("/etc/hostname-not-there").is_none());
        assert!(resolve("/etc").is_none(), "a directory is not a command");
        assert!(resolve("no-such-program-here").is_none());
    }

    #[test]
    fn the_tail_is_shortened_and_explains() {
        let tail = StderrTail::default();
        assert_eq!(tail.explain("exited".into()), "exited");
        tail.set(&"x".repeat(1000));
        let text = tail.explain("exited".into());
        assert!(text.starts_with("exited; its last stderr line: xxx"));
        assert!(text.chars().count() < 400, "{text}");
    }
}
