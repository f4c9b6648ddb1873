//! Public names of federated tools and prompts, and public URIs of resources.
//!
//! The rule is deterministic and depends only on the upstreams' (configured order, name) and
//! the names they offer, so every gateway replica and every restart agrees:
//!
//! - a valid name (at most 64 characters of `[A-Za-z0-9_-]`) stays as it is for the first
//!   upstream in configuration order that offers it;
//! - the same name offered by an upstream later in the configuration (or a name that is not
//!   valid) becomes `<upstream>_<name>`, with other characters replaced by `_`; when that is
//!   longer than 64 characters it is cut and ends in `_` plus 8 hex digits of a SHA-256 of
//!   upstream and original name;
//! - if a prefixed name then equals another public name, the hashed form is used for it.
//!
//! So adding an upstream at the end of the configuration never renames a tool that clients
//! already call by its bare name: the newcomer's colliding tools get the prefix. (While the
//! gateway starts, an upstream earlier in the configuration that has not answered yet cannot
//! claim its names: a later one's tool is published bare until the earlier one is listed.)
//!
//! Resources are addressed by URI, and URIs are usually unique. A URI offered by several
//! upstreams is published as `switchboard://<upstream>/<original uri>`.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

/// Longest tool name (MCP SEP-986: 1 to 64 characters of `[A-Za-z0-9_-]`).
pub const MAX_NAME_LEN: usize = 64;
/// Scheme of rewritten resource URIs: `switchboard://<upstream>/<original uri>`.
pub const URI_PREFIX: &str = "switchboard://";

/// Whether `b` may appear in a tool name.
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether `name` is a valid tool name as it stands.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.bytes().all(is_name_byte)
}

/// One renamed item, for the log line that reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Renamed {
    pub upstream: String,
    pub original: String,
    pub public: String,
}

/// Assign public names. `offers[i]` is `(upstream name, names it offers)`, in configured
/// order. Returns the public name of every offered name, in the same shape, and the renames.
pub fn assign(offers: &[(&str, Vec<&str>)]) -> (Vec<Vec<String>>, Vec<Renamed>) {
    // Each name belongs to the first upstream (in configured order) that offers it.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, (_, names)) in offers.iter().enumerate() {
        for name in names {
            owner.entry(name).or_insert(i);
        }
    }
    let mut public: Vec<Vec<String>> = offers
        .iter()
        .enumerate()
        .map(|(i, (upstream, names))| {
            names
                .iter()
                .map(|name| {
                    if owner.get(name) == Some(&i) && is_valid_name(name) {
                        (*name).to_owned()
                    } else {
                        prefixed(upstream, name)
                    }
                })
                .collect()
        })
        .collect();
    // A prefixed name can equal another public name (`a_b` offered by upstream `x`, and `b`
    // offered by two upstreams, one named `a`): names kept as offered win, and a prefixed one
    // that meets a name already taken gets the hashed form.
    let mut seen: HashSet<String> = HashSet::new();
    for (i, (_, names)) in offers.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            if public[i][j] == *name {
                seen.insert(public[i][j].clone());
            }
        }
    }
    for (i, (upstream, names)) in offers.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            if public[i][j] == *name {
                continue;
            }
            let mut salt = 0u32;
            while !seen.insert(public[i][j].clone()) {
                public[i][j] = hashed(upstream, name, salt);
                salt += 1;
            }
        }
    }
    let renamed = offers
        .iter()
        .zip(&public)
        .flat_map(|((upstream, names), public)| {
            names
                .iter()
                .zip(public)
                .filter(|(original, public)| *original != public)
                .map(|(original, public)| Renamed {
                    upstream: (*upstream).to_owned(),
                    original: (*original).to_owned(),
                    public: public.clone(),
                })
        })
        .collect();
    (public, renamed)
}

/// `<upstream>_<name>`, sanitized, hashed when too long.
fn prefixed(upstream: &str, name: &str) -> String {
    let mut out = String::with_capacity(upstream.len() + 1 + name.len());
    out.push_str(upstream);
    out.push('_');
    out.extend(
        name.bytes()
            .map(|b| if is_name_byte(b) { b as char } else { '_' }),
    );
    if out.len() <= MAX_NAME_LEN {
        out
    } else {
        hashed(upstream, name, 0)
    }
}

/// `<upstream>_<name>` cut to leave room for `_` + 8 hex digits of a hash.
fn hashed(upstream: &str, name: &str, salt: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(upstream.as_bytes());
    hasher.update([0]);
    hasher.update(name.as_bytes());
    if salt > 0 {
        hasher.update(salt.to_be_bytes());
    }
    let digest = hasher.finalize();
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut head: String = format!("{upstream}_{name}")
        .bytes()
        .map(|b| if is_name_byte(b) { b as char } else { '_' })
        .collect();
    head.truncate(MAX_NAME_LEN - 1 - suffix.len());
    format!("{head}_{suffix}")
}

/// Public URIs: unique URIs stay; one offered by several upstreams becomes
/// `switchboard://<upstream>/<uri>`. Same shapes as [`assign`].
pub fn assign_uris(offers: &[(&str, Vec<&str>)]) -> Vec<Vec<String>> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, uris) in offers {
        let unique: HashSet<&str> = uris.iter().copied().collect();
        for uri in unique {
            *count.entry(uri).or_default() += 1;
        }
    }
    offers
        .iter()
        .map(|(upstream, uris)| {
            uris.iter()
                .map(|uri| {
                    if count.get(uri) == Some(&1) && !uri.starts_with(URI_PREFIX) {
                        (*uri).to_owned()
                    } else {
                        format!("{URI_PREFIX}{upstream}/{uri}")
                    }
                })
                .collect()
        })
        .collect()
}

/// Split a rewritten URI into (upstream, original URI).
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix(URI_PREFIX)?.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_configured_upstream_keeps_a_name_and_later_ones_are_prefixed() {
        let (public, renamed) = assign(&[
            ("time-client", vec!["get_current_time", "convert_time"]),
            ("ts", vec!["get_current_time", "echo"]),
        ]);
        assert_eq!(public[0], ["get_current_time", "convert_time"]);
        assert_eq!(public[1], ["ts_get_current_time", "echo"]);
        assert_eq!(renamed.len(), 1);
        // Adding an upstream at the end renames none of the names published before.
        let (more, _) = assign(&[
            ("time-client", vec!["get_current_time", "convert_time"]),
            ("ts", vec!["get_current_time", "echo"]),
            ("new", vec!["echo", "get_current_time", "fresh"]),
        ]);
        assert_eq!(more[..2], public[..]);
        assert_eq!(more[2], ["new_echo", "new_get_current_time", "fresh"]);
    }

    #[test]
    fn long_and_invalid_names_are_cut_with_a_stable_hash() {
        let long = "x".repeat(60);
        let (public, _) = assign(&[("alpha", vec![&long]), ("beta", vec![&long, "has space"])]);
        for name in public.iter().flatten() {
            assert!(is_valid_name(name), "{name}");
        }
        assert_eq!(
            public[0][0], long,
            "the first upstream keeps its valid name"
        );
        assert_eq!(
            public[1][0].len(),
            MAX_NAME_LEN,
            "beta_ + 60 characters is cut"
        );
        assert_ne!(public[0][0], public[1][0]);
        assert_eq!(public[1][1], "beta_has_space");
        let (again, _) = assign(&[("alpha", vec![&long]), ("beta", vec![&long, "has space"])]);
        assert_eq!(public, again, "deterministic");
    }

    #[test]
    fn a_prefixed_name_never_equals_another_public_name() {
        let (public, _) = assign(&[("a", vec!["b"]), ("x", vec!["a_b"]), ("y", vec!["b"])]);
        let all: HashSet<_> = public.iter().flatten().collect();
        assert_eq!(all.len(), 3, "{public:?}");
        assert_eq!(public[1][0], "a_b");
    }

    #[test]
    fn colliding_uris_are_rewritten_and_split_back() {
        let public = assign_uris(&[
            ("a", vec!["file:///x", "mem://1"]),
            ("b", vec!["file:///x"]),
        ]);
        assert_eq!(public[0], ["switchboard://a/file:///x", "mem://1"]);
        assert_eq!(split_uri(&public[1][0]), Some(("b", "file:///x")));
    }
}
