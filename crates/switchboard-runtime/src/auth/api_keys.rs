//! Named API keys for service accounts and scripts, from a TOML file holding only their
//! SHA-256 digests:
//!
//! ```toml
//! [[key]]
//! name = "ci"                          # the caller's identity
//! sha256 = "5e884898da28047151d0e5..."  # hex digest of the key itself
//! groups = ["ops"]                     # optional
//! expires = "2027-06-01T00:00:00Z"     # optional, RFC 3339
//! ```
//!
//! The file is reread when it changes ([`Watched`]); a version that does not parse keeps the
//! previous keys and is logged. A key is looked up by its digest,
//! so comparing never touches the key material, and the file is no secret worth stealing.

use std::{collections::HashMap, path::Path, sync::Arc};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::identity::{Identity, Method, Rejection};
use crate::{Error, watched::Watched};

/// Keys this service makes start with it, so that a leaked one is easy to search for.
pub const PREFIX: &str = "sbk_";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    key: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    #[serde(default)]
    groups: Vec<String>,
    expires: Option<String>,
}

#[derive(Debug, Clone)]
struct Key {
    name: String,
    groups: Vec<String>,
    expires: Option<jiff::Timestamp>,
}

type KeyMap = HashMap<[u8; 32], Key>;

/// The keys of one file, reread when it changes, and keys added in memory (the one
/// `switchboard up` gives its own services). Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    file: Option<Arc<Watched<KeyMap>>>,
    extra: Arc<KeyMap>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("file", &self.file.as_ref().map(|f| f.path().to_owned()))
            .finish()
    }
}

impl ApiKeys {
    /// Read `path`; a missing or malformed file is an error that names it.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let file = Watched::load(path, "API keys", read).map_err(Error::Config)?;
        Ok(Self {
            file: Some(Arc::new(file)),
            extra: Arc::default(),
        })
    }

    /// `keys` (or none) plus `key` under `name`, held in memory only.
    pub fn admitting(keys: Option<Self>, name: &str, key: &str) -> Self {
        let mut this = keys.unwrap_or_else(|| Self {
            file: None,
            extra: Arc::default(),
        });
        let mut extra = (*this.extra).clone();
        extra.insert(
            Sha256::digest(key.as_bytes()).into(),
            Key {
                name: name.to_owned(),
                groups: Vec::new(),
                expires: None,
            },
        );
        this.extra = Arc::new(extra);
        this
    }

    /// The identity of the caller presenting `key`.
    pub fn check(&self, key: &str) -> Result<Identity, Rejection> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let from_file = self.file.as_ref().map(|f| f.current());
        let found = from_file
            .as_ref()
            .and_then(|keys| keys.get(&digest))
            .or_else(|| self.extra.get(&digest));
        let Some(found) = found else {
            return Err(Rejection::Invalid("unknown API key".into()));
        };
        if found.expires.is_some_and(|at| at <= jiff::Timestamp::now()) {
            return Err(Rejection::Invalid(format!(
                "API key '{}' has expired",
                found.name
            )));
        }
        Ok(Identity {
            subject: found.name.clone(),
            method: Method::ApiKey,
            groups: found.groups.clone(),
            scopes: Vec::new(),
            via: None,
        })
    }
}

fn read(path: &Path) -> Result<HashMap<[u8; 32], Key>, String> {
    let at = |e: String| {
        format!(
            "api_keys (--api-keys / SWITCHBOARD_API_KEYS) {}: {e}",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read: {e}")))?;
    let file: File = toml::from_str(&text).map_err(|e| at(e.to_string().replace('\n', " ")))?;
    let mut keys = HashMap::new();
    for entry in file.key {
        if entry.name.trim().is_empty() {
            return Err(at("a key without a name".into()));
        }
        let digest = decode_digest(&entry.sha256).ok_or_else(|| {
            at(format!(
                "key '{}': sha256 must be 64 hex digits (the SHA-256 of the key)",
                entry.name
            ))
        })?;
        let expires = entry
            .expires
            .as_deref()
            .map(|at_text| {
                at_text
                    .parse::<jiff::Timestamp>()
                    .map_err(|e| at(format!("key '{}': expires '{at_text}': {e}", entry.name)))
            })
            .transpose()?;
        let key = Key {
            name: entry.name,
            groups: entry.groups,
            expires,
        };
        if let Some(other) = keys.insert(digest, key) {
            return Err(at(format!("key '{}' appears twice", other.name)));
        }
    }
    Ok(keys)
}

fn decode_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// A new random key and the file entry that admits it (the key itself is shown once, never
/// stored). 244 random bits: two version-4 UUIDs from the operating system's generator.
pub fn new_key(name: &str) -> (String, String) {
    let key = format!(
        "{PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = Sha256::digest(key.as_bytes());
    let hex = crate::hex(&digest);
    let entry = format!("[[key]]\nname = {name:?}\nsha256 = \"{hex}\"\n");
    (key, entry)
}

/// [`new_key`] with the entry's optional fields, checked as the services will read them.
pub fn new_key_with(
    name: &str,
    groups: &[String],
    expires: Option<&str>,
) -> Result<(String, String), Error> {
    if name.trim().is_empty() {
        return Err(Error::Config("the key needs a name".into()));
    }
    let (key, mut entry) = new_key(name);
    if !groups.is_empty() {
        entry.push_str(&format!("groups = {groups:?}\n"));
    }
    if let Some(expires) = expires {
        expires.parse::<jiff::Timestamp>().map_err(|e| {
            Error::Config(format!(
                "expires '{expires}': {e}; expected e.g. 2027-06-01T00:00:00Z"
            ))
        })?;
        entry.push_str(&format!("expires = {expires:?}\n"));
    }
    Ok((key, entry))
}

#[cfg(test)]
#[path = "api_keys_tests.rs"]
mod tests;
