//! The HTTP(S) client for LLM APIs: hyper with rustls and the ring crypto provider.
//!
//! Why not reqwest, which the rest of the workspace uses for plain HTTP: its TLS features
//! either pull in aws-lc (`rustls`) or, without a provider (`rustls-no-provider`), make *every*
//! reqwest client in a build panic unless a rustls provider was installed process-wide first —
//! and cargo's feature unification would spread that to every crate built together with this
//! one. hyper-rustls takes the provider explicitly, so nothing global changes.
//!
//! Proxies (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, ...) are honoured: see [`super::proxy`].
//!
//! Timeouts are the caller's: [`HttpClient::post`] bounds the wait for the response head, and
//! the readers bound each wait for more body, so a stalled LLM is an error, never a hang.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use switchboard_runtime::propagation;

use super::{
    LlmError,
    proxy::{Proxies, ProxyConnector, ProxySource, ViaProxy},
};

/// Longest wait for a TCP (and TLS) connection to the LLM.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an error body quoted back to the user.
const MAX_ERROR_TEXT: usize = 500;

/// A pooled HTTP/1.1 client that speaks `http://` and `https://` (public CA roots: the
/// system's when it has any, Mozilla's otherwise).
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<ProxyConnector>, Full<Bytes>>,
    proxies: Proxies,
}

impl HttpClient {
    /// A client whose connections go through the proxies of `proxy`; `base_url` (the LLM's)
    /// is checked against them, so an unsupported proxy is an error now.
    pub fn new(timeout: Duration, proxy: &ProxySource, base_url: &str) -> Result<Self, String> {
        let proxies = Proxies::new(proxy, base_url)?;
        if let Some(via) = base_url.parse().ok().and_then(|uri| proxies.describe(&uri)) {
            tracing::info!(url = base_url, proxy = %via, "LLM requests go through a proxy");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT.min(timeout)));
        let builder =
            match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
                Ok(builder) => builder,
                Err(_) => HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(provider)
                    .map_err(|e| format!("TLS set-up failed: {e}"))?,
            };
        let https = builder
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector::new(http, proxies.clone()));
        let inner = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { inner, proxies })
    }

    /// POST `body` (JSON) to `url` and wait at most `timeout` for the response head.
    pub async fn post(
        &self,
        url: &str,
        api_key: Option<&str>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, LlmError> {
        let mut request = Request::post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::ACCEPT,
                "application/json, text/event-stream, application/x-ndjson",
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| LlmError::Unreachable {
                url: url.to_owned(),
                reason: format!("not a valid request URL ({e})"),
            })?;
        authorize(&mut request, api_key, url)?;
        self.send(url, request, timeout).await
    }

    /// GET `url`; the status and the whole (bounded) body.
    pub async fn get(
        &self,
        url: &str,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), LlmError> {
        let mut request = Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| LlmError::Unreachable {
                url: url.to_owned(),
                reason: format!("not a valid request URL ({e})"),
            })?;
        authorize(&mut request, api_key, url)?;
        let response = self.send(url, request, timeout).await?;
        let status = response.status().as_u16();
        let body = read_all(url, response.into_body(), timeout).await?;
        Ok((status, body))
    }

    /// Send `request` with the current span's W3C trace context (`traceparent`), so an LLM
    /// server or proxy that traces joins the chat's trace.
    async fn send(
        &self,
        url: &str,
        mut request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, LlmError> {
        propagation::inject(request.headers_mut());
        if let Some(auth) = self.proxies.authorization(request.uri()) {
            request
                .headers_mut()
                .insert(header::PROXY_AUTHORIZATION, auth);
        }
        let via = self.proxies.describe(request.uri());
        match tokio::time::timeout(timeout, self.inner.request(request)).await {
            Ok(Ok(mut response)) => {
                if let Some(via) = via {
                    response.extensions_mut().insert(ViaProxy(via));
                }
                Ok(response)
            }
            Ok(Err(error)) => Err(LlmError::Unreachable {
                url: url.to_owned(),
                reason: error_chain(&error),
            }),
            Err(_) => Err(LlmError::Timeout {
                url: url.to_owned(),
                after: timeout,
            }),
        }
    }
}

fn authorize(
    request: &mut Request<Full<Bytes>>,
    api_key: Option<&str>,
    url: &str,
) -> Result<(), LlmError> {
    if let Some(key) = api_key {
        let value =
            HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| LlmError::Unreachable {
                url: url.to_owned(),
                reason: "LLM_API_KEY contains characters not allowed in an HTTP header".into(),
            })?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    Ok(())
}

/// An error and its causes on one line ("client error (Connect): tcp connect error:
/// Connection refused (os error 111)").
fn error_chain(error: &dyn std::error::Error) -> String {
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

/// Read a whole body, giving up after `timeout` in total.
pub async fn read_all(url: &str, body: Incoming, timeout: Duration) -> Result<Bytes, LlmError> {
    match tokio::time::timeout(timeout, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) => Err(LlmError::Protocol {
            url: url.to_owned(),
            reason: format!(
                "the connection broke while reading the answer: {}",
                error_chain(&error)
            ),
        }),
        Err(_) => Err(LlmError::Timeout {
            url: url.to_owned(),
            after: timeout,
        }),
    }
}

/// Turn a non-2xx response into [`LlmError::Status`], quoting the API's error message.
pub async fn status_error(
    url: &str,
    response: http::Response<Incoming>,
    timeout: Duration,
) -> LlmError {
    let status = response.status().as_u16();
    let via = response.extensions().get::<ViaProxy>().cloned();
    let message = match read_all(url, response.into_body(), timeout).await {
        Ok(body) => error_message(&body),
        Err(error) => error.to_string(),
    };
    match via {
        // A proxy's refusal looks like the LLM's: say which it may be.
        Some(ViaProxy(proxy)) if matches!(status, 401 | 403 | 407) => LlmError::Status {
            url: url.to_owned(),
            status,
            message: format!(
                "{message} (through the proxy {proxy}: check LLM_API_KEY, and the credentials in the proxy URL)"
            ),
            hint: "",
        },
        _ => LlmError::Status {
            url: url.to_owned(),
            status,
            message,
            hint: LlmError::hint_for(status),
        },
    }
}

/// The human part of an error body: `{"error":{"message":...}}` (OpenAI), `{"error":"..."}`
/// (Ollama), or the text itself, shortened.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = &value["error"];
        let message = error["message"]
            .as_str()
            .or_else(|| error.as_str())
            .or_else(|| value["message"].as_str())
            .or_else(|| value["detail"].as_str());
        if let Some(message) = message {
            return shorten(message);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no error message)".to_owned()
    } else {
        shorten(text)
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Reads a streamed body frame by frame, each wait bounded by `idle`.
pub struct BodyReader<'a> {
    url: &'a str,
    body: Incoming,
    idle: Duration,
}

impl<'a> BodyReader<'a> {
    pub fn new(url: &'a str, body: Incoming, idle: Duration) -> Self {
        Self { url, body, idle }
    }

    /// The next data bytes, or `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<Bytes>, LlmError> {
        loop {
            let frame = match tokio::time::timeout(self.idle, self.body.frame()).await {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        url: self.url.to_owned(),
                        after: self.idle,
                    });
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(error))) => {
                    return Err(LlmError::Protocol {
                        url: self.url.to_owned(),
                        reason: format!("the stream broke: {}", error_chain(&error)),
                    });
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_found_in_every_shape() {
        assert_eq!(
            error_message(br#"{"error":{"message":"Incorrect API key","type":"x"}}"#),
            "Incorrect API key"
        );
        assert_eq!(
            error_message(br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message(b"  Bad Gateway \n"), "Bad Gateway");
        assert_eq!(error_message(b""), "(no error message)");
        let long = "x".repeat(2000);
        assert_eq!(
            error_message(long.as_bytes()).chars().count(),
            MAX_ERROR_TEXT + 1
        );
    }

    /// `https://` goes through rustls with the ring provider (no process-wide provider is
    /// installed, and none is needed): a peer that does not speak TLS is a clear error.
    #[tokio::test]
    async fn https_uses_rustls_without_a_global_provider() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let client = HttpClient::new(
            Duration::from_secs(5),
            &ProxySource::None,
            "http://127.0.0.1/",
        )
        .expect("TLS set-up");
        let url = format!("https://{addr}/v1/models");
        let error = client
            .get(&url, None, Duration::from_secs(5))
            .await
            .expect_err("not a TLS server");
        let text = error.to_string();
        // rustls read the plain-text answer as a TLS record and refused it.
        assert!(
            text.contains("cannot reach the LLM") && text.contains("corrupt message"),
            "{text}"
        );
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    }
}
