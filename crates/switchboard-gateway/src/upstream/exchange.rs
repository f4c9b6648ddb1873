//! The direct path of an upstream request: one HTTP POST made and read by the calling task.
//!
//! rmcp's client hands every request to its service loop, which hands it to the transport
//! worker, which spawns a task for the POST and sends each message of the answer back through
//! the worker and the service loop to the caller: five tasks and four channels per call, and
//! a context switch at almost every hop. On the gateway's hot path (tools/call and friends)
//! that was most of its cost. Here the caller's own task serializes the request, POSTs it on
//! a pooled keep-alive connection (the gateway's one reqwest client, HTTPS included) with the
//! session's headers, and reads the answer:
//! plain JSON, or an SSE stream whose notifications are routed as they arrive (progress to its
//! caller, log messages to the sessions with calls in flight: [`Routes::observe`], the same
//! routing rmcp's path uses), until the response with its id.
//!
//! The rmcp session stays for everything else: `initialize`, lists, pings, the standalone GET
//! stream of notifications, cancellations (ids of this path never collide with rmcp's: they
//! start at 2^40), and re-initializing an expired session — on HTTP 404 this path gives the
//! request back to rmcp, which re-initializes and sends it itself.
//!
//! Written by hand because no library offers "one MCP request over an existing Streamable
//! HTTP session"; the pieces (reqwest's pooled client, `sse-stream`) are libraries.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use futures::StreamExt;
use http::{
    HeaderMap, HeaderName, HeaderValue, StatusCode,
    header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE},
};
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorData, JsonRpcMessage, JsonRpcRequest, RequestId,
    ServerJsonRpcMessage, ServerRequest, ServerResult,
};
use sse_stream::SseStream;

use self::parse::{Parsed, Shape, parse};
use super::{
    body::{Capped, Kind, MAX_STREAM_BYTES, drain, read_json},
    handler::Routes,
};

mod parse;

/// First id (and progress token) of this path; rmcp counts its own from 0 in 32 bits.
const FIRST_ID: i64 = 1 << 40;

/// The headers rmcp sends with each POST of the current session: `mcp-session-id` (unless
/// the upstream is stateless), `mcp-protocol-version`, and any custom headers.
#[derive(Debug)]
pub struct Link {
    session: Option<Arc<str>>,
    custom: HashMap<HeaderName, HeaderValue>,
    /// Everything a direct POST carries but its length.
    headers: HeaderMap,
}

impl Link {
    pub fn new(
        session: Option<Arc<str>>,
        custom: HashMap<HeaderName, HeaderValue>,
    ) -> Result<Self, http::header::InvalidHeaderValue> {
        let mut headers = HeaderMap::with_capacity(custom.len() + 3);
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/event-stream, application/json"),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(session) = &session {
            headers.insert("mcp-session-id", HeaderValue::from_str(session)?);
        }
        for (name, value) in &custom {
            headers.insert(name.clone(), value.clone());
        }
        Ok(Self {
            session,
            custom,
            headers,
        })
    }

    /// The upstream's `mcp-session-id` (`None`: it keeps no session, it is stateless).
    pub fn session(&self) -> Option<&Arc<str>> {
        self.session.as_ref()
    }

    /// Whether this link is what rmcp sends with `session` and `custom`.
    pub fn is_for(
        &self,
        session: &Option<Arc<str>>,
        custom: &HashMap<HeaderName, HeaderValue>,
    ) -> bool {
        self.session == *session && self.custom == *custom
    }
}

/// The body of a direct request: `request` as a JSON-RPC request with `id`. Public (hidden)
/// for `benches/hop.rs`.
#[doc(hidden)]
pub fn encode_request(
    id: &RequestId,
    request: &ClientRequest,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&JsonRpcRequest::new(id.clone(), request))
}

/// How a direct request ended.
#[expect(
    clippy::large_enum_variant,
    reason = "the answer is the common case; boxing it would add an allocation per call"
)]
pub enum Exchange {
    /// The upstream answered: a result, or its own JSON-RPC error.
    Answered(Result<ServerResult, ErrorData>),
    /// HTTP 404 on a session: the upstream no longer knows it, nothing ran. rmcp's path
    /// re-initializes and sends the request again.
    SessionExpired,
    /// Not delivered, or the answer could not be read (the message says why).
    Failed(String),
}

/// The direct path to one upstream session.
pub struct Direct {
    /// The upstream's name (for messages).
    upstream: Arc<str>,
    client: reqwest::Client,
    /// `None` for a URL that is not http(s) (then rmcp's path serves all).
    uri: Option<reqwest::Url>,
    link: Arc<arc_swap::ArcSwapOption<Link>>,
    next_id: AtomicI64,
    /// The upstream's access tokens, when it takes OAuth client credentials.
    token: Option<Arc<super::oauth::TokenSource>>,
}

impl Direct {
    /// The direct path to `url` on `client` (the gateway's shared one: one connection pool).
    pub fn new(upstream: Arc<str>, url: &str, client: reqwest::Client) -> Self {
        let uri = reqwest::Url::parse(url)
            .ok()
            .filter(|uri| matches!(uri.scheme(), "http" | "https") && uri.host().is_some());
        Self {
            upstream,
            client,
            uri,
            link: Default::default(),
            next_id: AtomicI64::new(FIRST_ID),
            token: None,
        }
    }

    /// Send `token`'s access token with every request.
    pub fn with_token(mut self, token: Option<Arc<super::oauth::TokenSource>>) -> Self {
        self.token = token;
        self
    }

    /// Where the session's transport writes its headers down.
    pub fn link_cell(&self) -> Arc<arc_swap::ArcSwapOption<Link>> {
        self.link.clone()
    }

    /// The current session's headers, if requests can go this way now.
    pub fn link(&self) -> Option<Arc<Link>> {
        self.uri.as_ref()?;
        self.link.load_full()
    }

    /// A fresh request id, also used as the request's progress token.
    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Send `request` with `id` and read its answer. Notifications on the way go to `routes`.
    pub async fn exchange(
        &self,
        link: &Arc<Link>,
        id: &RequestId,
        request: &ClientRequest,
        routes: &Routes,
    ) -> Exchange {
        let Some(uri) = &self.uri else {
            return Exchange::Failed("no direct path to this URL".to_owned());
        };
        let body = match encode_request(id, request) {
            Ok(body) => body,
            Err(error) => return Exchange::Failed(format!("cannot encode the request: {error}")),
        };
        let response = match self.post(uri, link, body).await {
            Ok(response) => response,
            Err(message) => return Exchange::Failed(message),
        };
        self.read_answer(link, id, request, response, routes).await
    }

    /// Read `response`, the upstream's HTTP answer to `request` sent with `id`: a JSON-RPC
    /// answer in plain JSON or at the end of an SSE stream (whose notifications and requests on
    /// the way go to `routes`), or why there is none. Public (hidden) for `benches/hop.rs`,
    /// which feeds it answers held in memory.
    #[doc(hidden)]
    pub async fn read_answer(
        &self,
        link: &Arc<Link>,
        id: &RequestId,
        request: &ClientRequest,
        response: http::Response<reqwest::Body>,
        routes: &Routes,
    ) -> Exchange {
        let shape = Shape::of(request);
        let status = response.status();
        if status == StatusCode::NOT_FOUND && link.session.is_some() {
            return Exchange::SessionExpired;
        }
        let kind = Kind::of(response.headers());
        let body = Capped::new(response.into_body(), MAX_STREAM_BYTES);
        if !status.is_success() {
            // A JSON-RPC error in the body is the upstream's answer; anything else a failure.
            if kind == Kind::Json
                && let Ok(bytes) = read_json(body).await
                && let Ok(JsonRpcMessage::Error(error)) =
                    serde_json::from_slice::<ServerJsonRpcMessage>(&bytes)
            {
                return Exchange::Answered(Err(error.error));
            }
            return Exchange::Failed(format!("HTTP {status}"));
        }
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Exchange::Failed(format!("HTTP {status} without an answer to a request"));
        }
        match kind {
            Kind::Json => match read_json(body).await {
                Ok(bytes) => match parse(&bytes, id, shape) {
                    Ok(Parsed::Answer(answer)) => Exchange::Answered(answer),
                    Ok(Parsed::Message(_)) => {
                        Exchange::Failed("the answer is not for this request".to_owned())
                    }
                    Err(error) => Exchange::Failed(format!("malformed JSON-RPC answer: {error}")),
                },
                Err(message) => Exchange::Failed(message),
            },
            Kind::Stream => self.read_stream(link, id, shape, body, routes).await,
            Kind::Other(content_type) => Exchange::Failed(format!(
                "answered with content type {content_type:?}, expected JSON or an SSE stream"
            )),
        }
    }

    async fn post(
        &self,
        uri: &reqwest::Url,
        link: &Link,
        body: Vec<u8>,
    ) -> Result<http::Response<reqwest::Body>, String> {
        let mut post = self.client.post(uri.clone()).headers(link.headers.clone());
        if let Some(token) = &self.token {
            post = post.header(AUTHORIZATION, token.header().await?);
        }
        let response = post
            .body(body)
            .send()
            .await
            .map(http::Response::from)
            .map_err(|error| switchboard_runtime::client::chain(&error))?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(token) = &self.token
        {
            token.refused().await;
        }
        Ok(response)
    }

    /// Read an SSE answer until the response to `id`, routing what comes before it.
    async fn read_stream(
        &self,
        link: &Arc<Link>,
        id: &RequestId,
        shape: Shape,
        body: Capped,
        routes: &Routes,
    ) -> Exchange {
        let mut events = SseStream::new(body);
        while let Some(event) = events.next().await {
            let data = match event {
                Ok(event) => match event.data {
                    Some(data) if !data.trim().is_empty() => data,
                    _ => continue, // priming events, comments
                },
                Err(error) => {
                    return Exchange::Failed(format!("reading the answer stream failed: {error}"));
                }
            };
            let message = match parse(data.as_bytes(), id, shape) {
                Ok(Parsed::Answer(answer)) => {
                    drain(events);
                    return Exchange::Answered(answer);
                }
                Ok(Parsed::Message(message)) => message,
                Err(error) => {
                    return Exchange::Failed(format!("malformed message in the stream: {error}"));
                }
            };
            match message {
                JsonRpcMessage::Notification(n) => routes.observe(&n.notification),
                JsonRpcMessage::Request(request) => {
                    self.reply(link.clone(), request, routes.caller_of(id))
                }
                _ => tracing::debug!(%id, "ignored an answer to another request on this stream"),
            }
        }
        Exchange::Failed("the upstream ended the answer stream without answering".to_owned())
    }

    /// Answer a request the upstream sent on the answer stream of a call: `ping` at once,
    /// sampling, elicitation and roots by asking `caller`'s client
    /// ([`super::client_requests`]); the answer is POSTed back on the session.
    fn reply(
        &self,
        link: Arc<Link>,
        request: JsonRpcRequest<ServerRequest>,
        caller: Option<super::handler::Caller>,
    ) {
        let Some(uri) = self.uri.clone() else { return };
        let client = self.client.clone();
        let upstream = self.upstream.clone();
        let token = self.token.clone();
        tokio::spawn(async move {
            let answer =
                super::client_requests::forward(&upstream, caller.as_ref(), request.request).await;
            let message: ClientJsonRpcMessage = match answer {
                Ok(result) => JsonRpcMessage::response(result, request.id),
                Err(error) => JsonRpcMessage::error(error, Some(request.id)),
            };
            let Ok(body) = serde_json::to_vec(&message) else {
                return;
            };
            let mut post = client.post(uri).headers(link.headers.clone()).body(body);
            if let Some(token) = &token {
                match token.header().await {
                    Ok(header) => post = post.header(AUTHORIZATION, header),
                    Err(error) => {
                        tracing::debug!(%error, "reply to an upstream request not sent");
                        return;
                    }
                }
            }
            match post.send().await {
                Ok(response) => {
                    let _ = response.bytes().await;
                }
                Err(error) => tracing::debug!(%error, "reply to an upstream request not sent"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_carry_the_session() {
        let custom = HashMap::from([(
            HeaderName::from_static("mcp-protocol-version"),
            HeaderValue::from_static("2025-11-25"),
        )]);
        let link = Link::new(Some("abc".into()), custom.clone()).expect("valid headers");
        assert_eq!(link.headers["mcp-session-id"], "abc");
        assert_eq!(link.headers["mcp-protocol-version"], "2025-11-25");
        assert_eq!(link.headers[ACCEPT], "text/event-stream, application/json");
        assert!(link.is_for(&Some("abc".into()), &custom));
        assert!(!link.is_for(&Some("other".into()), &custom));
        assert!(Link::new(Some("bad\nid".into()), custom).is_err());
    }

    #[test]
    fn http_and_https_urls_go_direct() {
        let client = reqwest::Client::new();
        for url in ["http://127.0.0.1:8003/mcp", "https://example.com/mcp"] {
            assert!(
                Direct::new("u".into(), url, client.clone()).uri.is_some(),
                "{url}"
            );
        }
        assert!(Direct::new("u".into(), "not a url", client).uri.is_none());
    }
}
