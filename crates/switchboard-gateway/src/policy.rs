//! What each caller may do: a TOML policy file of roles (which tools, by name or upstream;
//! which resources and prompts; limits on `execute_code`; which packages `install_package` may
//! ask for) and grants (which callers get which roles), plus rate limits per caller and tool;
//! reread when it changes.
//!
//! ```toml
//! [roles.reader]
//! tools = ["get_current_time", "time-client_*"]   # the gateway's tool names
//! resources = ["demo://resource/static/*"]        # resources/read, resources/subscribe
//! prompts = ["simple-prompt", "args-*"]           # prompts/get
//!
//! [roles.coder]
//! upstreams = ["code-executor"]                   # every tool of these upstreams
//! install_package = ["numpy", "pandas*"]          # names install_package may ask for
//!
//! [roles.coder.execute_code]
//! max_timeout_seconds = 30                        # largest timeout_seconds execute_code may ask for
//!
//! [[grants]]
//! roles = ["reader"]
//! subjects = ["*"]                                # every authenticated caller
//!
//! [[grants]]
//! roles = ["coder"]
//! groups = ["dev"]                                # JWT groups/roles claims, API key groups
//! # scopes = ["tools:call"]                       # JWT scope/scp claims
//!
//! [limits."execute_code"]                         # per caller and tool; the key is a tool pattern
//! rate_per_second = 2                             # token bucket: sustained rate ...
//! burst = 4                                       # ... and burst [default: 2 × the rate, at least 1]
//! max_in_flight = 2                               # calls of one caller running at once
//! ```
//!
//! Patterns match whole names; `*` stands for any run of characters. With a policy, whatever
//! no grant gives is denied: `tools/list`, `GET /api/tools` and the middleware's tool list show a
//! caller only what it may call, `resources/list`, `resources/templates/list` and `prompts/list`
//! only what it may use, and anything else is refused with the reason, which names the missing
//! permission. A role without `resources`, `prompts` or `install_package` grants none.
//! Without a policy every caller authentication let in may call every tool and use every
//! resource and prompt.
//!
//! - `resources` patterns match the URI the gateway publishes (as requested); a template is
//!   listed, and `completion/complete` for it allowed, when a pattern matches its URI template
//!   text (`demo://resource/dynamic/*` matches `demo://resource/dynamic/text/{resourceId}`).
//! - `execute_code` and `install_package` are recognised by the upstream's tool name, whatever
//!   the gateway publishes them as; their rules come from the caller's roles that may call the
//!   tool (see [`code`]).
//! - `[limits."<tool pattern>"]` apply per caller (subject) and tool; a call must pass every
//!   entry whose pattern matches the tool's gateway name (see [`limits`]).

use std::{collections::BTreeMap, path::Path, sync::Arc};

use serde::Deserialize;
use switchboard_runtime::{Error, auth::Identity, watched::Watched};

#[path = "policy_code.rs"]
pub mod code;
#[path = "policy_limits.rs"]
pub mod limits;

pub use limits::ToolPermits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    roles: BTreeMap<String, Role>,
    #[serde(default)]
    grants: Vec<Grant>,
    #[serde(default)]
    limits: BTreeMap<String, limits::RawLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Role {
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    upstreams: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    prompts: Vec<String>,
    /// Package name patterns, normalised as package names are (see [`code::package_name`]).
    #[serde(default)]
    install_package: Vec<String>,
    #[serde(default)]
    execute_code: Option<code::ExecuteLimits>,
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
    /// Their buckets start afresh whenever the file is reloaded.
    limits: limits::ToolLimits,
}

/// The policy file, reread when it changes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Policy {
    file: Arc<Watched<Rules>>,
}

/// A resource or prompt, by the name the gateway publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A resource URI, or a resource template's URI template.
    Resource(&'a str),
    /// A prompt name.
    Prompt(&'a str),
}

impl Item<'_> {
    /// The role key that grants it, and what to call it in a message.
    fn key_and_kind(&self) -> (&'static str, &'static str) {
        match self {
            Item::Resource(_) => ("resources", "resource"),
            Item::Prompt(_) => ("prompts", "prompt"),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Item::Resource(name) | Item::Prompt(name) => name,
        }
    }
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
    /// The caller's roles, as the policy defines them.
    fn roles(&self) -> impl Iterator<Item = (&str, &Role)> {
        self.roles
            .iter()
            .filter_map(|name| self.rules.roles.get(name).map(|role| (name.as_str(), role)))
    }

    /// The caller's roles that let it call `tool` (the gateway's name for it) of `upstream`.
    fn granting<'a>(
        &'a self,
        tool: &'a str,
        upstream: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Role)> {
        self.roles().filter(move |(_, role)| {
            role.tools.iter().any(|p| matches(p, tool))
                || role.upstreams.iter().any(|p| matches(p, upstream))
        })
    }

    /// Whether the caller may call `tool` (the gateway's name for it) of `upstream`.
    pub fn allows(&self, tool: &str, upstream: &str) -> bool {
        self.granting(tool, upstream).next().is_some()
    }

    /// Whether the caller may use `item` (read or subscribe to a resource, complete a
    /// template's arguments; get a prompt or complete its arguments).
    pub fn may_use(&self, item: Item<'_>) -> bool {
        self.roles().any(|(_, role)| {
            let patterns = match item {
                Item::Resource(_) => &role.resources,
                Item::Prompt(_) => &role.prompts,
            };
            patterns.iter().any(|p| matches(p, item.name()))
        })
    }

    /// "'alice' (roles a, b)": who is judged, for messages.
    fn caller(&self) -> String {
        let roles = if self.roles.is_empty() {
            "no role".to_owned()
        } else {
            format!("roles {}", self.roles.join(", "))
        };
        format!("'{}' ({roles})", self.who)
    }

    /// Why a call of `tool` is refused, naming what is missing.
    pub fn denial(&self, tool: &str) -> String {
        format!(
            "permission denied: {} may not call '{tool}'; the policy needs a role whose tools or upstreams match it, granted to this caller",
            self.caller()
        )
    }

    /// Why `item` is refused, naming the missing permission.
    pub fn denial_of(&self, item: Item<'_>) -> String {
        let (key, kind) = item.key_and_kind();
        format!(
            "permission denied: the policy grants {} no role with {kind} '{}' (a pattern in a role's `{key}` must match it)",
            self.caller(),
            item.name()
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
    let mut file: File = toml::from_str(&text).map_err(|e| at(e.to_string().replace('\n', " ")))?;
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
    for (name, role) in &mut file.roles {
        if let Some(limits) = &role.execute_code {
            limits
                .check()
                .map_err(|e| at(format!("roles.{name}.execute_code: {e}")))?;
        }
        for pattern in &mut role.install_package {
            *pattern = code::normalize_pattern(pattern);
        }
    }
    let limits = limits::ToolLimits::new(file.limits).map_err(at)?;
    Ok(Rules {
        roles: file.roles,
        grants: file.grants,
        limits,
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
#[path = "policy_rules_tests.rs"]
mod rules_tests;
#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
