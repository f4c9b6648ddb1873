//! The cache key of one call: SHA-256 over the upstream, the tool's upstream name, whose
//! answer it is (see [`Partition`]) and the arguments as canonical JSON (object keys sorted at
//! every depth, no whitespace), so `{"a":1,"b":2}` and `{ "b": 2, "a": 1 }` are one entry.
//!
//! Hashed so that a key has a fixed size whatever the arguments, and so that neither the
//! arguments nor a session id ever appear in the store (Redis keys are visible to whoever can
//! run `KEYS`).

use std::fmt::Write as _;

use rmcp::model::JsonObject;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Bumped whenever what goes into a key or a stored value changes, so replicas of different
/// versions sharing a Redis never read each other's entries.
const FORMAT: &[u8] = b"switchboard-cache-v1";

/// A call's cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Whose answer an entry is, when the upstream could tell callers apart (see `crate::cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition<'a> {
    /// Everyone's: the upstream sees every caller alike.
    Shared,
    /// One owner of upstream sessions (`Owner`, rendered), and/or the user a delegate named.
    Of(&'a str),
}

impl Key {
    pub fn new(
        upstream: &str,
        tool: &str,
        partition: Partition<'_>,
        arguments: Option<&JsonObject>,
    ) -> Self {
        let mut canonical = Vec::with_capacity(64);
        match arguments {
            Some(arguments) => write_object(arguments, &mut canonical),
            // No arguments and `{}` ask the same.
            None => canonical.extend_from_slice(b"{}"),
        }
        let mut hasher = Sha256::new();
        for part in [FORMAT, upstream.as_bytes(), tool.as_bytes()] {
            // Lengths first: no choice of names can make two different triples hash alike.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        match partition {
            Partition::Shared => hasher.update([0]),
            Partition::Of(owner) => {
                hasher.update([1]);
                hasher.update((owner.len() as u64).to_be_bytes());
                hasher.update(owner.as_bytes());
            }
        }
        hasher.update(&canonical);
        Self(hasher.finalize().into())
    }

    /// Lowercase hex, as it is stored in Redis after the prefix.
    pub fn hex(&self) -> String {
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

/// Canonical JSON of `value` into `out`: sorted object keys, no whitespace. Strings and numbers
/// are written as serde_json writes them (numbers keep their spelling: `1` and `1.0` differ,
/// which costs at most a miss).
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // A scalar always serializes; the writer is a Vec.
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

fn write_object(map: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    // serde_json's map is sorted unless some crate in the build turns on `preserve_order`;
    // sorting here does not depend on that.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        write_canonical(value, out);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn canonical(value: Value) -> String {
        let mut out = Vec::new();
        write_canonical(&value, &mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    fn key(upstream: &str, tool: &str, partition: Partition<'_>, arguments: Value) -> Key {
        Key::new(upstream, tool, partition, arguments.as_object())
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_has_no_whitespace() {
        assert_eq!(
            canonical(json!({"b": [ {"z": 1, "a": "x y"} ], "a": null, "é": 1.5})),
            r#"{"a":null,"b":[{"a":"x y","z":1}],"é":1.5}"#
        );
        assert_eq!(canonical(json!("quote\"")), r#""quote\"""#);
    }

    #[test]
    fn keys_differ_by_upstream_tool_partition_and_arguments_only() {
        let base = key("u", "t", Partition::Shared, json!({"a": 1, "b": 2}));
        let reordered: Value = serde_json::from_str(r#"{ "b": 2, "a": 1 }"#).expect("JSON");
        assert_eq!(base, key("u", "t", Partition::Shared, reordered));
        assert_eq!(
            key("u", "t", Partition::Shared, json!({})),
            Key::new("u", "t", Partition::Shared, None)
        );
        for other in [
            key("v", "t", Partition::Shared, json!({"a": 1, "b": 2})),
            key("u", "s", Partition::Shared, json!({"a": 1, "b": 2})),
            key("u", "t", Partition::Of("alice"), json!({"a": 1, "b": 2})),
            key("u", "t", Partition::Shared, json!({"a": 1, "b": 3})),
            // Names cannot run into each other.
            key("ut", "", Partition::Shared, json!({"a": 1, "b": 2})),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(
            key("u", "t", Partition::Of("alice"), json!({})),
            key("u", "t", Partition::Of("bob"), json!({}))
        );
        assert_eq!(base.hex().len(), 64);
    }
}
