//! Settings of the result cache (`crate::cache`): which tools, for how long, how much, where.
//!
//! A rule names gateway tool names by pattern (`*` for any run of characters, as in the
//! policy) and a time to live: `--cache 'get-*=60'` (repeatable; comma-separated in
//! `MCP_SERVER_CACHE`), or in the file either the same strings or one table per pattern:
//!
//! ```toml
//! [mcp-server.cache."get-*"]
//! ttl_seconds = 60
//! ```
//!
//! A rule is a wish, not an order: a matched tool is cached only when its upstream annotates
//! it `readOnlyHint: true` and `idempotentHint: true` (see `crate::cache`).

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};
use switchboard_runtime::{Error, auth::Secret, config::seconds};

/// Most entries the in-process store keeps.
pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 10_000;
/// Most bytes (of results as JSON) the in-process store keeps.
pub const DEFAULT_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Larger results are not cached: one big answer should not push out a thousand small ones.
pub const DEFAULT_CACHE_MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// Put before every key in Redis, so the gateway's keys are easy to find and cannot collide
/// with another application's on a shared server.
pub const DEFAULT_CACHE_REDIS_PREFIX: &str = "switchboard:mcp-server:cache:";

pub(super) const CACHE_SETTING: &str = "cache (--cache / MCP_SERVER_CACHE)";
const REDIS_URL_SETTING: &str = "cache_redis_url (--cache-redis-url / MCP_SERVER_CACHE_REDIS_URL)";

/// One `PATTERN=SECONDS` rule as given (validated by [`CacheSettings::from_raw`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CacheRule {
    pub pattern: String,
    pub ttl_seconds: f64,
}

/// clap value parser for `--cache`: `PATTERN=SECONDS`.
pub(super) fn parse_cache_arg(value: &str) -> Result<CacheRule, String> {
    let expected = || format!("'{value}' is not PATTERN=SECONDS, e.g. get-*=60");
    let (pattern, ttl) = value.trim().rsplit_once('=').ok_or_else(expected)?;
    let ttl_seconds = ttl.trim().parse().map_err(|_| expected())?;
    Ok(CacheRule {
        pattern: pattern.trim().to_owned(),
        ttl_seconds,
    })
}

impl Serialize for CacheRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}={}", self.pattern, self.ttl_seconds))
    }
}

/// `[mcp-server.cache."<pattern>"]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTable {
    ttl_seconds: f64,
}

/// `cache` in the file: a list of `"PATTERN=SECONDS"` strings (what the command line gives)
/// or a table of pattern tables. Hand-written so each form reports its own error.
pub(super) fn deserialize_rules<'de, D>(deserializer: D) -> Result<Option<Vec<CacheRule>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<Vec<CacheRule>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(
                "a list of \"PATTERN=SECONDS\" or tables [cache.\"PATTERN\"] ttl_seconds = N",
            )
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rules = Vec::new();
            while let Some(text) = seq.next_element::<String>()? {
                rules.push(parse_cache_arg(&text).map_err(serde::de::Error::custom)?);
            }
            Ok(Some(rules))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rules = Vec::new();
            while let Some((pattern, table)) = map.next_entry::<String, RuleTable>()? {
                rules.push(CacheRule {
                    pattern,
                    ttl_seconds: table.ttl_seconds,
                });
            }
            Ok(Some(rules))
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// Where cached results live when several gateway replicas share them.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]` or `redis+unix:///path`; may hold a password,
    /// so it is never shown (`Debug` and `/ready` show the prefix only).
    pub url: Secret,
    pub prefix: String,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Validated cache settings. `Default`: no rules, so nothing is cached.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheSettings {
    /// (gateway tool name pattern, time to live).
    pub rules: Vec<(String, Duration)>,
    pub max_entries: usize,
    pub max_bytes: usize,
    pub max_entry_bytes: usize,
    /// `None`: the in-process store.
    pub redis: Option<RedisSettings>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            max_entries: DEFAULT_CACHE_MAX_ENTRIES,
            max_bytes: DEFAULT_CACHE_MAX_BYTES,
            max_entry_bytes: DEFAULT_CACHE_MAX_ENTRY_BYTES,
            redis: None,
        }
    }
}

impl CacheSettings {
    /// Cache the tools whose gateway name matches `pattern` for `ttl` (where that is safe).
    pub fn with_rule(mut self, pattern: impl Into<String>, ttl: Duration) -> Self {
        self.rules.push((pattern.into(), ttl));
        self
    }
    /// Keep entries in the Redis server at `url` (under [`DEFAULT_CACHE_REDIS_PREFIX`]).
    pub fn with_redis(mut self, url: impl Into<String>) -> Self {
        self.redis = Some(RedisSettings {
            url: Secret::new(url.into()),
            prefix: DEFAULT_CACHE_REDIS_PREFIX.to_owned(),
        });
        self
    }
    pub fn with_limits(mut self, max_entries: usize, max_bytes: usize) -> Self {
        self.max_entries = max_entries;
        self.max_bytes = max_bytes;
        self
    }

    pub(super) fn from_raw(raw: &super::RawConfig) -> Result<Self, Error> {
        let limits = [
            (
                raw.cache_max_entries,
                DEFAULT_CACHE_MAX_ENTRIES,
                "cache_max_entries (--cache-max-entries / MCP_SERVER_CACHE_MAX_ENTRIES)",
            ),
            (
                raw.cache_max_bytes,
                DEFAULT_CACHE_MAX_BYTES,
                "cache_max_bytes (--cache-max-bytes / MCP_SERVER_CACHE_MAX_BYTES)",
            ),
            (
                raw.cache_max_entry_bytes,
                DEFAULT_CACHE_MAX_ENTRY_BYTES,
                "cache_max_entry_bytes (--cache-max-entry-bytes / MCP_SERVER_CACHE_MAX_ENTRY_BYTES)",
            ),
        ];
        let mut validated = Vec::new();
        for rule in raw.cache.iter().flatten() {
            let pattern = rule.pattern.trim();
            if pattern.is_empty() {
                return Err(Error::Config(format!(
                    "{CACHE_SETTING}: a rule has no pattern; expected PATTERN=SECONDS, e.g. get-*=60"
                )));
            }
            let ttl = seconds(&format!("{CACHE_SETTING}: '{pattern}'"), rule.ttl_seconds)?;
            validated.push((pattern.to_owned(), ttl));
        }
        let [max_entries, max_bytes, max_entry_bytes] =
            limits.map(|(value, default, setting)| match value.unwrap_or(default) {
                0 => Err(Error::Config(format!(
                    "{setting}: must be a positive whole number"
                ))),
                n => Ok(n),
            });
        let redis = match raw.cache_redis_url.as_deref() {
            None => None,
            Some(source) => {
                let url = Secret::resolve(REDIS_URL_SETTING, source.trim())?;
                // Parsed now so a wrong URL stops the start; the error never holds the URL.
                redis::Client::open(url.expose()).map_err(|e| {
                    Error::Config(format!(
                        "{REDIS_URL_SETTING}: not a usable Redis URL ({}); expected redis://[USER:PASSWORD@]HOST:PORT[/DB] or redis+unix:///PATH (rediss:// is not supported)",
                        e.detail().unwrap_or(e.category())
                    ))
                })?;
                Some(RedisSettings {
                    url,
                    prefix: raw
                        .cache_redis_prefix
                        .clone()
                        .unwrap_or_else(|| DEFAULT_CACHE_REDIS_PREFIX.to_owned()),
                })
            }
        };
        Ok(Self {
            rules: validated,
            max_entries: max_entries?,
            max_bytes: max_bytes?,
            max_entry_bytes: max_entry_bytes?,
            redis,
        })
    }
}

#[cfg(test)]
mod tests {
    use switchboard_runtime::{
        HttpSettings,
        config::{ConfigFile, layer},
    };

    use super::*;
    use crate::config::{Config, RawConfig};

    fn layered(cli: &RawConfig, toml: &str) -> Result<Config, Error> {
        let file = ConfigFile::parse(std::path::Path::new("t.toml"), toml).expect("toml");
        let raw: RawConfig = layer(cli, Some(&file), "mcp-server")?;
        Config::from_parts(raw, HttpSettings::default())
    }

    #[test]
    fn rules_come_from_tables_strings_or_the_command_line_which_wins() {
        let config = layered(
            &RawConfig::default(),
            "[mcp-server.cache.\"get-*\"]\nttl_seconds = 60\n[mcp-server.cache.echo]\nttl_seconds = 0.5\n",
        )
        .expect("tables");
        let mut rules = config.cache.rules.clone();
        rules.sort();
        assert_eq!(
            rules,
            [
                ("echo".to_owned(), Duration::from_millis(500)),
                ("get-*".to_owned(), Duration::from_secs(60))
            ]
        );
        assert!(config.cache.redis.is_none());
        assert_eq!(config.cache.max_entries, DEFAULT_CACHE_MAX_ENTRIES);

        let config = layered(
            &RawConfig::default(),
            "[mcp-server]\ncache = [\"a=1\", \"b*=2\"]\ncache_max_entries = 5\n",
        )
        .expect("strings");
        assert_eq!(config.cache.rules.len(), 2);
        assert_eq!(config.cache.max_entries, 5);

        let cli = RawConfig {
            cache: Some(vec![parse_cache_arg("x=3").expect("PATTERN=SECONDS")]),
            ..Default::default()
        };
        let config = layered(&cli, "[mcp-server]\ncache = [\"a=1\"]\n").expect("flag");
        assert_eq!(
            config.cache.rules,
            [("x".to_owned(), Duration::from_secs(3))]
        );
        let config =
            Config::from_parts(RawConfig::default(), HttpSettings::default()).expect("defaults");
        assert!(config.cache.rules.is_empty());
    }

    #[test]
    fn wrong_values_name_the_setting_and_never_show_the_redis_url() {
        for (toml, needle) in [
            (
                "cache = [\"echo=0\"]",
                "cache (--cache / MCP_SERVER_CACHE): 'echo'",
            ),
            ("cache = [\"=5\"]", "has no pattern"),
            ("cache = [\"echo\"]", "is not PATTERN=SECONDS"),
            ("cache = { echo = { ttl = 1 } }", "unknown field `ttl`"),
            ("cache_max_bytes = 0", "cache_max_bytes (--cache-max-bytes"),
            (
                "cache_redis_url = \"http://user:hunter2@127.0.0.1:1\"",
                "not a usable Redis URL",
            ),
            (
                "cache_redis_url = \"env:SWITCHBOARD_NO_SUCH_VARIABLE\"",
                "is not set",
            ),
        ] {
            let error = layered(&RawConfig::default(), &format!("[mcp-server]\n{toml}\n"))
                .expect_err(toml)
                .to_string();
            assert!(error.contains(needle), "{toml}: {error}");
            assert!(
                !error.contains("hunter2") && !error.contains('\n'),
                "{error}"
            );
        }
        let config = layered(
            &RawConfig::default(),
            "[mcp-server]\ncache_redis_url = \"redis://:hunter2@127.0.0.1:6379/2\"\n",
        )
        .expect("a Redis URL");
        let redis = config.cache.redis.as_ref().expect("redis");
        assert_eq!(redis.prefix, DEFAULT_CACHE_REDIS_PREFIX);
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
