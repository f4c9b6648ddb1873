//! HTTP proxies for the LLM client.
//!
//! Which proxy serves a URL is decided as curl and most tools decide it — `HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (lower case too) — by hyper-util's [`Matcher`];
//! the CONNECT handshake is hyper-util's [`Tunnel`]. This file only routes between them:
//!
//! - no proxy for the destination: a direct TCP connection;
//! - `https://` through a proxy: a CONNECT tunnel to the destination, TLS inside it end to end
//!   (the proxy sees the host name, never the API key or the conversation);
//! - `http://` through a proxy: the request goes to the proxy in absolute form (hyper does this
//!   for a connection marked as proxied), with `Proxy-Authorization` from the proxy URL's
//!   user info (see [`Proxies::authorization`]).
//!
//! Only `http://` proxy URLs are supported; a SOCKS or `https://` proxy is refused when the
//! client is built, with a message.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderValue, Uri};
use hyper_util::client::{
    legacy::connect::{Connected, Connection, HttpConnector, proxy::Tunnel},
    proxy::matcher::{Intercept, Matcher},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the LLM client's proxy settings come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxySource {
    /// No proxy (the default for settings built in code).
    #[default]
    None,
    /// The standard environment variables (what `switchboard middleware` and `up` use).
    Environment,
    /// This proxy for every destination (`http://[user:password@]host:port`).
    Url(String),
}

/// The proxy rules, shared by the connector and the request builder.
#[derive(Clone)]
pub struct Proxies {
    matcher: std::sync::Arc<Matcher>,
}

impl Proxies {
    /// The rules of `source`; an error names an unsupported proxy URL for `probe` (the LLM's
    /// base URL), so a wrong setting is found at start, not on the first chat.
    pub fn new(source: &ProxySource, probe: &str) -> Result<Self, String> {
        let matcher = match source {
            ProxySource::None => Matcher::builder().build(),
            ProxySource::Environment => Matcher::from_env(),
            ProxySource::Url(url) => Matcher::builder().all(url.clone()).build(),
        };
        if let Ok(uri) = probe.parse::<Uri>()
            && let Some(proxy) = matcher.intercept(&uri)
            && proxy.uri().scheme_str() != Some("http")
        {
            return Err(format!(
                "the proxy for {probe} is {}: only http:// proxies are supported (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY)",
                redacted(proxy.uri())
            ));
        }
        Ok(Self {
            matcher: std::sync::Arc::new(matcher),
        })
    }

    fn intercept(&self, uri: &Uri) -> Option<Intercept> {
        self.matcher
            .intercept(uri)
            .filter(|proxy| proxy.uri().scheme_str() == Some("http"))
    }

    /// The `Proxy-Authorization` a plain-HTTP request to `uri` needs (its proxy has user
    /// info); HTTPS requests authenticate in the CONNECT handshake instead.
    pub fn authorization(&self, uri: &Uri) -> Option<HeaderValue> {
        if uri.scheme_str() != Some("http") {
            return None;
        }
        self.intercept(uri)
            .and_then(|proxy| proxy.basic_auth().cloned())
    }

    /// The proxy a request to `uri` goes through, without credentials (for logs and errors).
    pub fn describe(&self, uri: &Uri) -> Option<String> {
        self.intercept(uri).map(|proxy| redacted(proxy.uri()))
    }
}

/// Marks a response that came through a proxy (in its extensions), so that an error status
/// can name the proxy as a possible source.
#[derive(Clone, Debug)]
pub struct ViaProxy(pub String);

/// A proxy URL without its user info.
fn redacted(uri: &Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("?"),
        uri.authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or_default())
            .unwrap_or_default()
    )
}

/// A TCP connector that goes through the proxy [`Proxies`] names for each destination.
#[derive(Clone)]
pub struct ProxyConnector {
    http: HttpConnector,
    proxies: Proxies,
}

impl ProxyConnector {
    pub fn new(http: HttpConnector, proxies: Proxies) -> Self {
        Self { http, proxies }
    }
}

/// A connection, direct or through a proxy; marked as proxied when requests on it must be
/// sent in absolute form.
pub struct ProxyStream {
    io: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl tower::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let proxy = self.proxies.intercept(&dst);
        Box::pin(async move {
            match proxy {
                None => Ok(ProxyStream {
                    io: http.call(dst).await?,
                    absolute_form: false,
                }),
                Some(proxy) if dst.scheme_str() == Some("https") => {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), http);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    let io = tunnel
                        .call(dst)
                        .await
                        .map_err(|e| {
                            format!(
                                "through the proxy {}: {e} (check the credentials in the proxy URL and that the proxy allows CONNECT to this port)",
                                redacted(proxy.uri())
                            )
                        })?;
                    Ok(ProxyStream {
                        io,
                        absolute_form: false,
                    })
                }
                Some(proxy) => Ok(ProxyStream {
                    io: http.call(proxy.uri().clone()).await.map_err(|e| {
                        format!("cannot reach the proxy {}: {e}", redacted(proxy.uri()))
                    })?,
                    absolute_form: true,
                }),
            }
        })
    }
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.absolute_form)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_credentials() {
        let proxies = Proxies::new(
            &ProxySource::Url("http://user:secret@127.0.0.1:3128".into()),
            "https://api.example.com/v1",
        )
        .expect("an http proxy is supported");
        let http: Uri = "http://llm.example.com/v1/chat/completions"
            .parse()
            .expect("uri");
        let https: Uri = "https://api.example.com/v1".parse().expect("uri");
        assert_eq!(
            proxies.describe(&https).as_deref(),
            Some("http://127.0.0.1:3128"),
            "no credentials in descriptions"
        );
        assert!(
            proxies.authorization(&http).is_some(),
            "plain HTTP carries them"
        );
        assert!(
            proxies.authorization(&https).is_none(),
            "HTTPS sends them in CONNECT"
        );
        let none = Proxies::new(&ProxySource::None, "https://api.example.com/v1").expect("none");
        assert!(none.describe(&https).is_none());
    }

    #[test]
    fn socks_proxies_are_refused_at_start() {
        let error = Proxies::new(
            &ProxySource::Url("socks5://127.0.0.1:1080".into()),
            "https://api.example.com/v1",
        )
        .err()
        .expect("refused");
        assert!(error.contains("only http:// proxies"), "{error}");
    }
}
