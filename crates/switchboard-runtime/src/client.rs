//! The one client stack for every outgoing HTTP request: the LLM, upstream MCP servers, the
//! sandbox, OTLP export.
//!
//! reqwest on rustls with aws-lc-rs, rustls's default provider: a client works without any
//! process-wide set-up, so no crate built in the same workspace can make another's client
//! panic (what reqwest's `rustls-no-provider` would do). What every client gets here:
//!
//! - the platform's trusted roots (rustls-platform-verifier), plus the CA certificates of
//!   `[http] ca_file` / `SWITCHBOARD_CA_FILE` for a private CA;
//! - HTTP/2 where the peer offers it in TLS (ALPN), HTTP/1.1 otherwise;
//! - proxies from the environment as curl reads them (`HTTPS_PROXY`, `HTTP_PROXY`,
//!   `ALL_PROXY`, `NO_PROXY`, lower case too), `http://`, `https://` and `socks5(h)://`, with
//!   credentials in the proxy URL;
//! - a connect timeout; request timeouts are each caller's, as its waits differ.
//!
//! [`check_url`] refuses at start a URL this stack cannot reach, so a wrong scheme is a
//! message on the first line of the log, never a silent failure on the first call.

use std::{path::Path, time::Duration};

use crate::Error;

/// Longest wait for a TCP (and TLS) connection, unless a caller sets its own.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a client's proxy settings come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxySource {
    /// The standard environment variables (what every service uses unless told otherwise).
    #[default]
    Environment,
    /// No proxy at all, whatever the environment says.
    None,
    /// This proxy for every destination: `http://`, `https://` or `socks5(h)://`, with
    /// optional `user:password@`.
    Url(String),
}

/// What a client is built from.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Extra trusted CA certificates (PEM), besides the platform's roots.
    pub ca_file: Option<std::path::PathBuf>,
    pub proxy: ProxySource,
    pub connect_timeout: Duration,
    /// Sent as `Authorization: Bearer` on every request (a service's credential towards
    /// another: code-executor → sandbox, middleware → gateway).
    pub bearer: Option<crate::auth::Secret>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            proxy: ProxySource::Environment,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            bearer: None,
        }
    }
}

impl ClientOptions {
    /// The options of a service whose shared settings are `http`.
    pub fn from_http(http: &crate::HttpSettings) -> Self {
        Self {
            ca_file: http.ca_file.clone(),
            ..Self::default()
        }
    }

    pub fn with_proxy(mut self, proxy: ProxySource) -> Self {
        self.proxy = proxy;
        self
    }

    /// Authenticate every request with this bearer credential.
    pub fn with_bearer(mut self, bearer: Option<crate::auth::Secret>) -> Self {
        self.bearer = bearer;
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A builder with these options; the caller adds its timeouts and builds.
    pub fn builder(&self) -> Result<reqwest::ClientBuilder, Error> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(path) = &self.ca_file {
            builder = builder.tls_certs_merge(load_ca_file(path)?);
        }
        if let Some(bearer) = &self.bearer {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, bearer.bearer_header()?);
            builder = builder.default_headers(headers);
        }
        Ok(match self.proxy()? {
            Proxy::Environment => builder,
            Proxy::None => builder.no_proxy(),
            Proxy::All(proxy) => builder.proxy(*proxy),
        })
    }

    /// A client with these options and no request timeout.
    pub fn build(&self) -> Result<reqwest::Client, Error> {
        self.builder()?
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {}", chain(&e))))
    }

    /// The blocking flavour (OTLP export runs on its own thread): the same roots and proxies.
    pub fn blocking_builder(&self) -> Result<reqwest::blocking::ClientBuilder, Error> {
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(path) = &self.ca_file {
            builder = builder.tls_certs_merge(load_ca_file(path)?);
        }
        Ok(match self.proxy()? {
            Proxy::Environment => builder,
            Proxy::None => builder.no_proxy(),
            Proxy::All(proxy) => builder.proxy(*proxy),
        })
    }

    fn proxy(&self) -> Result<Proxy, Error> {
        Ok(match &self.proxy {
            ProxySource::Environment => Proxy::Environment,
            ProxySource::None => Proxy::None,
            ProxySource::Url(url) => {
                check_proxy_url(url)?;
                Proxy::All(Box::new(reqwest::Proxy::all(url).map_err(|e| {
                    Error::Config(format!("the proxy {}: {e}", redact(url)))
                })?))
            }
        })
    }

    /// The proxy a request to `url` goes through, without its credentials (for logs and
    /// errors), or `None` when it goes direct.
    pub fn proxy_for(&self, url: &str) -> Option<String> {
        let uri: http::Uri = url.parse().ok()?;
        let matcher = match &self.proxy {
            ProxySource::None => return None,
            ProxySource::Url(proxy) => return Some(redact(proxy)),
            ProxySource::Environment => hyper_util::client::proxy::matcher::Matcher::from_env(),
        };
        matcher
            .intercept(&uri)
            .map(|proxy| redact(&proxy.uri().to_string()))
    }

    /// Refuse at start a proxy in the environment that this stack cannot use for `url`.
    pub fn check_proxy_for(&self, url: &str) -> Result<(), Error> {
        if let ProxySource::Environment = self.proxy
            && let Ok(uri) = url.parse::<http::Uri>()
            && let Some(proxy) =
                hyper_util::client::proxy::matcher::Matcher::from_env().intercept(&uri)
        {
            check_proxy_url(&proxy.uri().to_string())?;
        }
        Ok(())
    }
}

enum Proxy {
    Environment,
    None,
    All(Box<reqwest::Proxy>),
}

/// The certificates of a PEM file; an error when it cannot be read or holds none.
pub fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let setting = "ca_file (--ca-file / SWITCHBOARD_CA_FILE)";
    let pem = std::fs::read(path)
        .map_err(|e| Error::Config(format!("{setting}: cannot read {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::Config(format!(
            "{setting}: {} is not a PEM certificate bundle: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{setting}: {} holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        )));
    }
    Ok(certs)
}

/// Refuse a URL this stack cannot reach: only `http://` and `https://` with a host.
/// `setting` names where the URL came from, for the message.
pub fn check_url(setting: &str, url: &str) -> Result<(), Error> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::Config(format!("{setting}: '{url}' is not a URL ({e})")))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "http" | "https" => Err(Error::Config(format!(
            "{setting}: '{url}' has no host; expected e.g. https://host:port/path"
        ))),
        other => Err(Error::Config(format!(
            "{setting}: '{url}' uses {other}://, which is not supported; use http:// or https://"
        ))),
    }
}

fn check_proxy_url(url: &str) -> Result<(), Error> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("http" | "https" | "socks5" | "socks5h") => Ok(()),
        _ => Err(Error::Config(format!(
            "the proxy {} is not supported: use an http://, https://, socks5:// or socks5h:// proxy URL",
            redact(url)
        ))),
    }
}

/// A URL without the user info (`scheme://user:password@host` becomes `scheme://host`).
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let path = path.trim_end_matches('/');
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// An error and its causes on one line ("error sending request: client error (Connect): tcp
/// connect error: Connection refused (os error 111)"), leaving out causes already quoted.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_this_stack_cannot_reach_are_refused() {
        assert!(check_url("x", "http://127.0.0.1:8000/mcp").is_ok());
        assert!(check_url("x", "https://api.example.com/v1").is_ok());
        for bad in ["ftp://host/", "unix:///tmp/s", "127.0.0.1:8000", "https://"] {
            let error = check_url("upstream", bad).expect_err(bad).to_string();
            assert!(error.contains("upstream"), "{error}");
        }
    }

    #[test]
    fn proxies_are_named_without_credentials() {
        assert_eq!(
            redact("http://user:secret@127.0.0.1:3128"),
            "http://127.0.0.1:3128"
        );
        assert_eq!(redact("socks5h://u:p@proxy:1080/"), "socks5h://proxy:1080");
        let options = ClientOptions::default()
            .with_proxy(ProxySource::Url("socks5://u:p@127.0.0.1:1080".into()));
        assert_eq!(
            options.proxy_for("https://api.example.com").as_deref(),
            Some("socks5://127.0.0.1:1080")
        );
        assert!(options.build().is_ok(), "SOCKS5 is supported");
        let error = ClientOptions::default()
            .with_proxy(ProxySource::Url("socks4://127.0.0.1:1080".into()))
            .build()
            .expect_err("socks4 is not offered")
            .to_string();
        assert!(error.contains("not supported"), "{error}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").expect("write");
        let error = load_ca_file(&path).expect_err("no certificate").to_string();
        assert!(error.contains("SWITCHBOARD_CA_FILE"), "{error}");
        let missing = load_ca_file(&dir.path().join("missing.pem"))
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
