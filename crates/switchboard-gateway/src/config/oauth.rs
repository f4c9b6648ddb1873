//! OAuth 2.0 client credentials of an upstream, as configured (the fetching and refreshing is
//! `crate::upstream::oauth`):
//!
//! ```toml
//! { name = "remote", url = "https://mcp.example.com/mcp",
//!   oauth = { token_url = "https://idp.example.com/oauth/token", client_id = "switchboard",
//!             client_secret = "file:/run/secrets/remote-client-secret", scope = "mcp:tools" } }
//! ```
//!
//! `client_secret` is `env:NAME`, `file:PATH` or the value itself, read at start and never
//! shown. `resource` defaults to the upstream's URL (RFC 8707, as the MCP authorization
//! specification asks); `resource = ""` sends none, for servers that refuse it.

use serde::{Deserialize, Serialize};
use switchboard_runtime::{Error, auth::Secret};

/// The `oauth` table of an upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthTable {
    pub token_url: String,
    pub client_id: String,
    /// `env:NAME`, `file:PATH` or the value.
    pub client_secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
}

/// Validated client credentials; `Debug` hides the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthSettings {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    /// Send the id and secret in the form instead of HTTP Basic.
    pub client_secret_post: bool,
}

impl OAuthSettings {
    /// Check `table` and read its secret now, for the upstream at `url`.
    pub fn from_table(setting: &str, table: &OAuthTable, url: &str) -> Result<Self, Error> {
        let setting = format!("{setting}: oauth");
        let token_url = reqwest::Url::parse(&table.token_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                Error::Config(format!(
                    "{setting}: token_url '{}' is not an http(s) URL",
                    table.token_url
                ))
            })?;
        if token_url.scheme() == "http" && !is_loopback(&token_url) {
            // The client secret would cross the network in the clear.
            return Err(Error::Config(format!(
                "{setting}: token_url must be https (plain http only on loopback)"
            )));
        }
        if table.client_id.trim().is_empty() {
            return Err(Error::Config(format!("{setting}: client_id is empty")));
        }
        let client_secret =
            Secret::resolve(&format!("{setting}: client_secret"), &table.client_secret)?;
        let client_secret_post = match table.client_auth.as_deref() {
            None | Some("client_secret_basic") => false,
            Some("client_secret_post") => true,
            Some(other) => {
                return Err(Error::Config(format!(
                    "{setting}: client_auth '{other}' is not client_secret_basic or client_secret_post"
                )));
            }
        };
        let resource = match table.resource.as_deref() {
            None => Some(url.to_owned()),
            Some("") => None,
            Some(resource) => Some(resource.to_owned()),
        };
        Ok(Self {
            token_url: table.token_url.clone(),
            client_id: table.client_id.clone(),
            client_secret,
            scope: table.scope.clone().filter(|s| !s.is_empty()),
            audience: table.audience.clone().filter(|s| !s.is_empty()),
            resource,
            client_secret_post,
        })
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> OAuthTable {
        OAuthTable {
            token_url: "https://idp.example.com/token".into(),
            client_id: "gw".into(),
            client_secret: "s3cret-value".into(),
            scope: Some("mcp".into()),
            audience: None,
            resource: None,
            client_auth: None,
        }
    }

    #[test]
    fn the_resource_is_the_upstream_and_the_secret_stays_hidden() {
        let settings =
            OAuthSettings::from_table("u", &table(), "https://mcp.example.com/mcp").expect("valid");
        assert_eq!(
            settings.resource.as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert!(!settings.client_secret_post);
        assert!(!format!("{settings:?}").contains("s3cret-value"));
        let none = OAuthSettings::from_table(
            "u",
            &OAuthTable {
                resource: Some(String::new()),
                ..table()
            },
            "https://x/mcp",
        )
        .expect("valid");
        assert_eq!(none.resource, None);
    }

    #[test]
    fn unsafe_or_malformed_settings_are_refused() {
        for (bad, needle) in [
            (
                OAuthTable {
                    token_url: "http://idp.example.com/token".into(),
                    ..table()
                },
                "must be https",
            ),
            (
                OAuthTable {
                    token_url: "idp/token".into(),
                    ..table()
                },
                "not an http(s) URL",
            ),
            (
                OAuthTable {
                    client_secret: "env:SWITCHBOARD_NO_SUCH_SECRET".into(),
                    ..table()
                },
                "is not set",
            ),
            (
                OAuthTable {
                    client_auth: Some("private_key_jwt".into()),
                    ..table()
                },
                "client_auth",
            ),
        ] {
            let error = OAuthSettings::from_table("u", &bad, "https://x/mcp")
                .expect_err(needle)
                .to_string();
            assert!(error.contains(needle), "{error}");
            assert!(!error.contains("s3cret-value"), "{error}");
        }
        OAuthSettings::from_table(
            "u",
            &OAuthTable {
                token_url: "http://127.0.0.1:9/token".into(),
                ..table()
            },
            "http://127.0.0.1/mcp",
        )
        .expect("plain http on loopback");
    }
}
