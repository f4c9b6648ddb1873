//! The code-executor's tools under the policy: a role's limit on `execute_code`'s timeout and
//! the package names `install_package` may ask for.
//!
//! Both tools are recognised by the name their upstream gives them (`execute_code`,
//! `install_package`), whatever the gateway publishes them as, and judged by the caller's roles
//! that may call that tool (by `tools` or `upstreams`); with several, the most generous wins.
//!
//! - `[roles.X.execute_code] max_timeout_seconds = 30`: the largest `timeout_seconds` a call
//!   may ask for. A role that may call `execute_code` without this table sets no limit (the
//!   sandbox's own maximum still applies). Memory has no per-call setting in `execute_code`'s
//!   arguments: it is the sandbox's per-execution limit (`[sandbox] memory_mib`).
//! - `install_package = ["numpy", "pandas*"]`: package names (PEP 503-normalised, as are the
//!   patterns: `Scikit_Learn` and `scikit-learn` are one name) the caller may request. A role
//!   without the key lets no package through, even if it may call the tool. Approving a held
//!   package stays an operator action on the sandbox (its admin token), not a gateway
//!   permission.

use serde::Deserialize;

use super::{Permissions, matches};

/// `[roles.X.execute_code]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecuteLimits {
    max_timeout_seconds: f64,
}

impl ExecuteLimits {
    pub(super) fn check(&self) -> Result<(), String> {
        let seconds = self.max_timeout_seconds;
        if seconds.is_finite() && seconds > 0.0 {
            Ok(())
        } else {
            Err(format!(
                "max_timeout_seconds = {seconds} is not a positive number of seconds"
            ))
        }
    }
}

/// The most a caller's `execute_code` call may ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeoutLimit {
    pub max_seconds: f64,
    /// The role that allows the most.
    pub role: String,
}

impl Permissions {
    /// The limit on `timeout_seconds` of a call of `tool` (of `upstream`, the upstream's
    /// `execute_code`): the most generous of the caller's roles that may call it; `None` when
    /// one of them sets no limit (or none may call it: the call is denied anyway).
    pub fn timeout_limit(&self, tool: &str, upstream: &str) -> Option<TimeoutLimit> {
        let mut most: Option<TimeoutLimit> = None;
        for (name, role) in self.granting(tool, upstream) {
            let limits = role.execute_code.as_ref()?;
            if most
                .as_ref()
                .is_none_or(|m| limits.max_timeout_seconds > m.max_seconds)
            {
                most = Some(TimeoutLimit {
                    max_seconds: limits.max_timeout_seconds,
                    role: name.to_owned(),
                });
            }
        }
        most
    }

    /// Whether the caller may ask `tool` (of `upstream`, the upstream's `install_package`)
    /// for `package` (the tool's `package` argument: `name` or `name==version`).
    pub fn may_install(&self, tool: &str, upstream: &str, package: &str) -> bool {
        let name = package_name(package);
        self.granting(tool, upstream).any(|(_, role)| {
            role.install_package
                .iter()
                .any(|pattern| matches(pattern, &name))
        })
    }

    /// Why `package` may not be installed, naming the missing permission.
    pub fn install_denial(&self, tool: &str, package: &str) -> String {
        format!(
            "permission denied: the policy grants {} no role that may install package '{}' (a pattern in the `install_package` list of a role that may call '{tool}' must match it)",
            self.caller(),
            package_name(package)
        )
    }
}

/// The package name a request's `package` argument names, PEP 503-normalised: its leading run
/// of letters, digits, `.`, `_` and `-` (what follows, such as `==1.2.3`, is the sandbox's to
/// judge), lowercased, each run of `.`, `_`, `-` one `-`. Empty when it does not start with a
/// letter or digit; only a pattern of stars matches that (the sandbox then refuses it).
pub fn package_name(package: &str) -> String {
    let package = package.trim();
    if !package.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return String::new();
    }
    let end = package
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(package.len());
    normalize_pattern(&package[..end])
}

/// A package name or name pattern, normalised as [`package_name`] does (stars kept).
pub(super) fn normalize_pattern(pattern: &str) -> String {
    let mut normalized = String::with_capacity(pattern.len());
    let mut separator = false;
    for c in pattern.trim().chars() {
        if matches!(c, '.' | '_' | '-') {
            separator = true;
            continue;
        }
        if separator {
            normalized.push('-');
            separator = false;
        }
        normalized.push(c.to_ascii_lowercase());
    }
    if separator {
        normalized.push('-');
    }
    normalized
}
