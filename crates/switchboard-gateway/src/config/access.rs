//! How the gateway proves who it is to a remote HTTPS upstream, per upstream: a CA file to
//! trust its certificate, a client certificate for mutual TLS, and static headers (an API key, a
//! bearer token) whose values come from an environment variable or a file.
//!
//! ```toml
//! { name = "remote", url = "https://mcp.example.com/mcp",
//!   ca_file = "/etc/switchboard/remote-ca.pem",
//!   client_cert = "/run/secrets/gw.crt", client_key = "/run/secrets/gw.key",
//!   headers = { Authorization = "env:REMOTE_MCP_AUTH", X-Team = "file:/run/secrets/team" } }
//! ```
//!
//! A header value is `env:NAME` (that variable), `file:PATH` (the file, without its final line
//! break) or the value itself. Values are read at start, marked sensitive (never in logs,
//! `/ready`, errors or traces), and a missing variable or file stops the start naming the
//! header and its source, never the value.

use std::{fmt, path::PathBuf};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use switchboard_runtime::{Error, auth::Secret, client::ClientOptions};

/// Headers the MCP transport sets itself: not configurable.
const RESERVED: [&str; 6] = [
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
];

/// Per-upstream TLS and headers. `Default` is "nothing special": the gateway's shared client.
#[derive(Clone, Default, PartialEq)]
pub struct UpstreamAccess {
    pub ca_file: Option<PathBuf>,
    /// Client certificate and private key (PEM files) for mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Sent with every request to the upstream; values sensitive.
    pub headers: HeaderMap,
}

impl fmt::Debug for UpstreamAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamAccess")
            .field("ca_file", &self.ca_file)
            .field("client_identity", &self.client_identity)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl UpstreamAccess {
    /// Whether the upstream needs a client of its own.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Read the table's settings now: files must exist, variables must be set.
    pub fn from_settings(
        setting: &str,
        ca_file: Option<PathBuf>,
        client_cert: Option<PathBuf>,
        client_key: Option<PathBuf>,
        headers: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Result<Self, Error> {
        let client_identity = match (client_cert, client_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(Error::Config(format!(
                    "{setting}: client_cert and client_key go together (the certificate and its private key, PEM)"
                )));
            }
        };
        let mut map = HeaderMap::new();
        for (name, source) in headers.into_iter().flatten() {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::Config(format!("{setting}: '{name}' is not an HTTP header name"))
            })?;
            if RESERVED.contains(&header.as_str()) {
                return Err(Error::Config(format!(
                    "{setting}: header '{name}' is set by the MCP transport itself"
                )));
            }
            let value = Secret::resolve(&format!("{setting}: header '{name}'"), source)?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                Error::Config(format!(
                    "{setting}: header '{name}': the value has characters not allowed in a header"
                ))
            })?;
            value.set_sensitive(true);
            map.insert(header, value);
        }
        let access = Self {
            ca_file,
            client_identity,
            headers: map,
        };
        access.check_files(setting)?;
        Ok(access)
    }

    fn check_files(&self, setting: &str) -> Result<(), Error> {
        let files = self.ca_file.iter().chain(
            self.client_identity
                .iter()
                .flat_map(|(cert, key)| [cert, key]),
        );
        for file in files {
            std::fs::metadata(file).map_err(|e| {
                Error::Config(format!("{setting}: cannot read {}: {e}", file.display()))
            })?;
        }
        Ok(())
    }

    /// A client for this upstream on the gateway's stack (`base`), or `None` when the shared
    /// one serves.
    pub fn client(
        &self,
        setting: &str,
        base: &ClientOptions,
    ) -> Result<Option<reqwest::Client>, Error> {
        if self.is_default() {
            return Ok(None);
        }
        let mut builder = base.builder()?;
        if let Some(path) = &self.ca_file {
            let pem = read(setting, path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Config(format!(
                    "{setting}: {} is not a PEM certificate bundle: {e}",
                    path.display()
                ))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        if let Some((cert, key)) = &self.client_identity {
            let mut pem = read(setting, cert)?;
            pem.push(b'\n');
            pem.extend(read(setting, key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "{setting}: client_cert {} and client_key {} are not a PEM certificate and key: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        if !self.headers.is_empty() {
            builder = builder.default_headers(self.headers.clone());
        }
        builder.build().map(Some).map_err(|e| {
            Error::Config(format!(
                "{setting}: {}",
                switchboard_runtime::client::chain(&e)
            ))
        })
    }
}

fn read(setting: &str, path: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("{setting}: cannot read {}: {e}", path.display())))
}

/// `env:NAME`, `file:PATH` or the value itself.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_come_from_files_variables_or_themselves_and_stay_out_of_debug() {
        let dir = tempfile::tempdir().expect("temp dir");
        let token = dir.path().join("token");
        std::fs::write(&token, "Bearer from-a-file\n").expect("write");
        let headers = [
            (
                "Authorization".to_owned(),
                format!("file:{}", token.display()),
            ),
            ("X-Path".to_owned(), "env:PATH".to_owned()),
            ("X-Plain".to_owned(), "plain-value".to_owned()),
        ]
        .into_iter()
        .collect();
        let access =
            UpstreamAccess::from_settings("u", None, None, None, Some(&headers)).expect("valid");
        assert_eq!(access.headers["authorization"], "Bearer from-a-file");
        assert_eq!(
            access.headers["x-path"],
            std::env::var("PATH").expect("PATH")
        );
        assert!(access.headers["authorization"].is_sensitive());
        let debug = format!("{access:?}");
        assert!(
            !debug.contains("from-a-file") && !debug.contains("plain-value"),
            "{debug}"
        );
    }

    #[test]
    fn missing_sources_and_reserved_names_are_refused_without_the_value() {
        for (name, source, needle) in [
            ("X-Key", "env:SWITCHBOARD_NO_SUCH_VARIABLE", "is not set"),
            ("X-Key", "file:/no/such/file", "cannot read"),
            ("Mcp-Session-Id", "x", "set by the MCP transport"),
            ("bad header", "x", "not an HTTP header name"),
        ] {
            let headers = [(name.to_owned(), source.to_owned())].into_iter().collect();
            let error = UpstreamAccess::from_settings("u", None, None, None, Some(&headers))
                .expect_err(name)
                .to_string();
            assert!(error.contains(needle), "{error}");
        }
        let error = UpstreamAccess::from_settings("u", None, Some("c.pem".into()), None, None)
            .expect_err("cert without key")
            .to_string();
        assert!(error.contains("go together"), "{error}");
    }
}
