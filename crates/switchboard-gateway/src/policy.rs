//! What each caller may call: a TOML policy file of roles (which tools, by name or upstream)
//! and grants (which callers get which roles), reread when it changes.
//!
//! ```toml
//! [roles.reader]
//! tools = ["get_current_time", "time-client_*"]   # the gateway's tool names
//!
//! [roles.coder]
//! upstreams = ["code-executor"]                   # every tool of these upstreams
//!
//! [[grants]]
//! roles = ["reader"]
//! subjects = ["*"]                                # every authenticated caller
//!
//! [[grants]]
//! roles = ["coder"]
//! groups = ["dev"]                                # JWT groups/roles claims, API key groups
//! # scopes = ["tools:call"]                       # JWT scope/scp claims
//! ```
//!
//! Patterns match whole names; `*` stands for any run of characters. With a policy, whatever
//! no grant gives is denied: `tools/list`, `GET /api/tools` and the middleware's tool list show a
//! caller only what it may call, and a call of anything else is refused with the reason.
//! Without a policy every caller authentication let in may call every tool.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use serde::Deserialize;
use switchboard_runtime::{Error, auth::Identity, watched::Watched};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    roles: BTreeMap<String, Role>,
    #[serde(default)]
    grants: Vec<Grant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Role {
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    upstreams: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    roles: Vec<String>,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// The loaded policy; [`Policy::for_caller`] gives one caller's view.
#[derive(Debug)]
struct Rules {
    roles: BTreeMap<String, Role>,
    grants: Vec<Grant>,
}

/// The policy file, reread when it changes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Policy {
    file: Arc<Watched<Rules>>,
}

/// What one caller may call, decided once per request.
#[derive(Debug)]
pub struct Permissions {
    rules: Arc<Rules>,
    roles: Vec<String>,
    who: String,
}

impl Policy {
    /// Read `path`; a missing or malformed file stops the start with a message naming it.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Watched::load(path, "policy", read)
            .map(|file| Self {
                file: Arc::new(file),
            })
            .map_err(Error::Config)
    }

    /// The roles the policy grants `identity`, and what they allow.
    pub fn for_caller(&self, identity: &Identity) -> Permissions {
        let rules = self.file.current();
        let mut roles: Vec<String> = Vec::new();
        for grant in &rules.grants {
            let applies = grant.subjects.iter().any(|p| matches(p, &identity.subject))
                || grant
                    .groups
                    .iter()
                    .any(|p| identity.groups.iter().any(|g| matches(p, g)))
                || grant
                    .scopes
                    .iter()
                    .any(|p| identity.scopes.iter().any(|s| matches(p, s)));
            if applies {
                for role in &grant.roles {
                    if !roles.contains(role) {
                        roles.push(role.clone());
                    }
                }
            }
        }
        Permissions {
            rules,
            roles,
            who: identity.subject.clone(),
        }
    }

    /// The view of a caller nobody identified (which only a fault upstream of the handler can
    /// cause): no role, so nothing.
    pub fn for_nobody(&self) -> Permissions {
        Permissions {
            rules: self.file.current(),
            roles: Vec::new(),
            who: "an unidentified caller".into(),
        }
    }

    #[doc(hidden)]
    pub fn look_again(&self) {
        self.file.look_again();
    }
}

impl Permissions {
    /// Whether the caller may call `tool` (the gateway's name for it) of `upstream`.
    pub fn allows(&self, tool: &str, upstream: &str) -> bool {
        self.roles.iter().any(|name| {
            self.rules.roles.get(name).is_some_and(|role| {
                role.tools.iter().any(|p| matches(p, tool))
                    || role.upstreams.iter().any(|p| matches(p, upstream))
            })
        })
    }

    /// Why a call of `tool` is refused, naming what is missing.
    pub fn denial(&self, tool: &str) -> String {
        let roles = if self.roles.is_empty() {
            "no role".to_owned()
        } else {
            format!("roles {}", self.roles.join(", "))
        };
        format!(
            "permission denied: '{}' ({roles}) may not call '{tool}'; the policy needs a role whose tools or upstreams match it, granted to this caller",
            self.who
        )
    }
}

fn read(path: &Path) -> Result<Rules, String> {
    let at = |e: String| {
        format!(
            "policy (--policy / MCP_SERVER_POLICY) {}: {e}",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read: {e}")))?;
    let file: File = toml::from_str(&text).map_err(|e| at(e.to_string().replace('\n', " ")))?;
    for (index, grant) in file.grants.iter().enumerate() {
        if let Some(unknown) = grant.roles.iter().find(|r| !file.roles.contains_key(*r)) {
            return Err(at(format!(
                "grants[{index}] names role '{unknown}', which [roles] does not define"
            )));
        }
        if grant.subjects.is_empty() && grant.groups.is_empty() && grant.scopes.is_empty() {
            return Err(at(format!(
                "grants[{index}] names nobody: give subjects, groups or scopes"
            )));
        }
    }
    Ok(Rules {
        roles: file.roles,
        grants: file.grants,
    })
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (the only
/// wildcard: tool, upstream and group names have no other use for one). Greedy with
/// backtracking to the last star: linear for the patterns a policy holds.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
