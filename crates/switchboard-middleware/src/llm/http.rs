//! The HTTP(S) client for LLM APIs: the workspace's one client stack
//! ([`switchboard_runtime::client`]: reqwest on rustls, the platform's roots plus
//! `SWITCHBOARD_CA_FILE`, HTTP/2 by ALPN), with the proxies of [`ProxySource`] — by default
//! the standard environment variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`;
//! `http://`, `https://` and `socks5(h)://` proxies, credentials in the proxy URL).
//!
//! Timeouts are the caller's: [`HttpClient::post`] bounds the wait for the response head, and
//! the readers bound each wait for more body, so a stalled LLM is an error, never a hang.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, header};
use http_body_util::BodyExt;
use reqwest::Body;

use switchboard_runtime::{
    client::{ClientOptions, ProxySource, chain},
    propagation,
};

use super::LlmError;

/// Longest wait for a TCP (and TLS) connection to the LLM.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an error body quoted back to the user.
const MAX_ERROR_TEXT: usize = 500;

/// Marks a response that came through a proxy (in its extensions), so that an error status
/// can name the proxy as a possible source.
#[derive(Clone, Debug)]
pub struct ViaProxy(pub String);

/// A pooled client that speaks `http://` and `https://`.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    /// The proxy every request to the LLM goes through, without credentials: all its URLs
    /// share the base URL's scheme and host, so it is looked up once, not per request.
    via: Option<String>,
}

impl HttpClient {
    /// A client whose connections go through the proxies of `proxy`, trusting `ca_file` too;
    /// `base_url` (the LLM's) is checked against them, so an unsupported proxy or URL is an
    /// error now.
    pub fn new(
        timeout: Duration,
        proxy: &ProxySource,
        ca_file: Option<&std::path::Path>,
        base_url: &str,
    ) -> Result<Self, String> {
        let options = ClientOptions {
            ca_file: ca_file.map(ToOwned::to_owned),
            proxy: proxy.clone(),
            connect_timeout: CONNECT_TIMEOUT.min(timeout),
            // The LLM's key goes per request (the OpenAI and Ollama clients set it).
            bearer: None,
        };
        switchboard_runtime::client::check_url("LLM_BASE_URL", base_url)
            .map_err(|e| e.to_string())?;
        options
            .check_proxy_for(base_url)
            .map_err(|e| e.to_string())?;
        let via = options.proxy_for(base_url);
        if let Some(via) = &via {
            tracing::info!(url = base_url, proxy = %via, "LLM requests go through a proxy");
        }
        let inner = options.build().map_err(|e| e.to_string())?;
        Ok(Self { inner, via })
    }

    /// POST `body` (JSON) to `url` and wait at most `timeout` for the response head.
    pub async fn post(
        &self,
        url: &str,
        api_key: Option<&str>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<http::Response<Body>, LlmError> {
        let request = self
            .inner
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::ACCEPT,
                "application/json, text/event-stream, application/x-ndjson",
            )
            .body(body);
        self.send(url, authorize(request, api_key, url)?, timeout)
            .await
    }

    /// GET `url`; the status and the whole (bounded) body.
    pub async fn get(
        &self,
        url: &str,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), LlmError> {
        let request = authorize(self.inner.get(url), api_key, url)?;
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
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<http::Response<Body>, LlmError> {
        let mut trace = http::HeaderMap::new();
        propagation::inject(&mut trace);
        let request = request.headers(trace);
        let via = self.via.clone();
        match tokio::time::timeout(timeout, request.send()).await {
            Ok(Ok(response)) => {
                let mut response = http::Response::from(response);
                if let Some(via) = via {
                    response.extensions_mut().insert(ViaProxy(via));
                }
                Ok(response)
            }
            Ok(Err(error)) => Err(LlmError::Unreachable {
                url: url.to_owned(),
                reason: match via {
                    Some(via) => format!(
                        "through the proxy {via}: {} (check the credentials in the proxy URL and that the proxy allows connections to this host and port)",
                        chain(&error)
                    ),
                    None => chain(&error),
                },
            }),
            Err(_) => Err(LlmError::Timeout {
                url: url.to_owned(),
                after: timeout,
            }),
        }
    }
}

fn authorize(
    request: reqwest::RequestBuilder,
    api_key: Option<&str>,
    url: &str,
) -> Result<reqwest::RequestBuilder, LlmError> {
    let Some(key) = api_key else {
        return Ok(request);
    };
    let mut value =
        HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| LlmError::Unreachable {
            url: url.to_owned(),
            reason: "LLM_API_KEY contains characters not allowed in an HTTP header".into(),
        })?;
    value.set_sensitive(true);
    Ok(request.header(header::AUTHORIZATION, value))
}

/// Read a whole body, giving up after `timeout` in total.
pub async fn read_all(url: &str, body: Body, timeout: Duration) -> Result<Bytes, LlmError> {
    match tokio::time::timeout(timeout, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) => Err(LlmError::Protocol {
            url: url.to_owned(),
            reason: format!(
                "the connection broke while reading the answer: {}",
                chain(&error)
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
    response: http::Response<Body>,
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
    body: Body,
    idle: Duration,
}

impl<'a> BodyReader<'a> {
    pub fn new(url: &'a str, body: Body, idle: Duration) -> Self {
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
                        reason: format!("the stream broke: {}", chain(&error)),
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
}
