//! The transport of an upstream session: rmcp's Streamable HTTP client, with every arriving
//! notification shown to [`Routes::observe`] first, in arrival order, and every POST's session
//! headers written down for the direct path ([`super::exchange`]).
//!
//! Why a wrapper and not only the `ClientHandler`: rmcp delivers a request's answer to the
//! waiting caller directly from its receive loop, but runs notification handlers in tasks of
//! their own. A progress or log message sent just before the answer could then be handled
//! after the caller has finished and left the routing table. Seen here, it is routed while
//! its request is certainly still in flight.
//!
//! Why the HTTP client is wrapped too ([`SessionClient`]): rmcp keeps the session id and the
//! negotiated protocol version inside its transport worker. The direct path needs both to
//! send its own POSTs on the same session; the wrapper sees them on every POST rmcp makes
//! (the first one after `initialize` is `notifications/initialized`, before the supervisor
//! publishes the session) and after rmcp re-initializes an expired session.

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwapOption;
use futures::{StreamExt, stream::BoxStream};
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::{
    RoleClient,
    model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{
        StreamableHttpClientTransport, Transport,
        streamable_http_client::{
            SseError, StreamableHttpClient, StreamableHttpClientTransportConfig,
            StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
        },
    },
};
use sse_stream::Sse;

use super::{exchange::Link, handler::Routes, oauth::TokenSource, tasks::Declared};

pub struct Observed<T> {
    inner: T,
    routes: Arc<Routes>,
}

impl<T> Observed<T> {
    pub fn new(inner: T, routes: Arc<Routes>) -> Self {
        Self { inner, routes }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Observed<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await;
        if let Some(JsonRpcMessage::Notification(n)) = &message {
            self.routes.observe(&n.notification);
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

/// reqwest as rmcp's HTTP client, writing down the session headers of each POST in `link`.
#[derive(Clone)]
pub struct SessionClient {
    http: reqwest::Client,
    link: Arc<ArcSwapOption<Link>>,
    /// The upstream's access tokens (OAuth client credentials): given to rmcp as the bearer
    /// token of each request in place of the (unset) one of its configuration.
    token: Option<Arc<TokenSource>>,
    /// Where the upstream's `capabilities` go when its `initialize` answer is an SSE stream:
    /// rmcp's types drop `capabilities.tasks` (see `super::tasks`).
    declared: Declared,
}

type HttpError = StreamableHttpError<reqwest::Error>;

impl SessionClient {
    /// The bearer token for the next request.
    async fn auth(&self, given: Option<String>) -> Result<Option<String>, HttpError> {
        match &self.token {
            None => Ok(given),
            Some(token) => token
                .token()
                .await
                .map(Some)
                .map_err(|reason| StreamableHttpError::Io(std::io::Error::other(reason))),
        }
    }

    /// The upstream answered 401: its token goes.
    async fn refused<T>(&self, result: Result<T, HttpError>) -> Result<T, HttpError> {
        if let (Err(StreamableHttpError::AuthRequired(_)), Some(token)) = (&result, &self.token) {
            token.refused().await;
        }
        result
    }

    /// Remember what rmcp sends with its POSTs once the protocol version is negotiated (the
    /// `mcp-protocol-version` header is then among the custom headers).
    fn record(&self, session_id: &Option<Arc<str>>, headers: &HashMap<HeaderName, HeaderValue>) {
        // Looked up by `HeaderName`: its `Hash` is not that of the `str` it borrows as.
        let Some(version) = headers.get(&HeaderName::from_static("mcp-protocol-version")) else {
            return; // `initialize` itself: nothing negotiated yet
        };
        if version.as_bytes() >= b"2026-07-28".as_slice() {
            // No session, and each request carries its own `_meta` and `Mcp-Method`/`Mcp-Name`
            // headers, which only rmcp's path writes: no direct requests.
            self.link.store(None);
            return;
        }
        let current = self.link.load();
        if current
            .as_deref()
            .is_some_and(|link| link.is_for(session_id, headers))
        {
            return;
        }
        match Link::new(session_id.clone(), headers.clone()) {
            Ok(link) => self.link.store(Some(Arc::new(link))),
            Err(error) => {
                // Then every request takes rmcp's path, which sends the same headers itself.
                tracing::debug!(%error, "session headers not usable for direct requests");
                self.link.store(None);
            }
        }
    }
}

impl SessionClient {
    /// Show the SSE events of an `initialize` answer to [`super::tasks::capture`] as they
    /// pass to rmcp.
    fn observe_initialize(
        &self,
        initialize: bool,
        response: Result<StreamableHttpPostResponse, HttpError>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        match response {
            Ok(StreamableHttpPostResponse::Sse(events, session)) if initialize => {
                let declared = self.declared.clone();
                let events = events
                    .inspect(move |event| {
                        if let Some(data) = event.as_ref().ok().and_then(|e| e.data.as_deref()) {
                            super::tasks::capture(data, &declared);
                        }
                    })
                    .boxed();
                Ok(StreamableHttpPostResponse::Sse(events, session))
            }
            other => other,
        }
    }
}

fn is_initialize(message: &ClientJsonRpcMessage) -> bool {
    matches!(message, JsonRpcMessage::Request(request) if matches!(request.request, ClientRequest::InitializeRequest(_)))
}

impl StreamableHttpClient for SessionClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.record(&session_id, &custom_headers);
        let initialize = is_initialize(&message);
        let auth_header = self.auth(auth_header).await?;
        let response = self
            .refused(
                self.http
                    .post_message(uri, message, session_id, auth_header, custom_headers)
                    .await,
            )
            .await;
        self.observe_initialize(initialize, response)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.record(&session_id, &custom_headers);
        let initialize = is_initialize(&message);
        let auth_header = self.auth(auth_header).await?;
        let response = self
            .refused(
                self.http
                    .post_message_with_max_sse_event_size(
                        uri,
                        message,
                        session_id,
                        auth_header,
                        custom_headers,
                        max_sse_event_size,
                    )
                    .await,
            )
            .await;
        self.observe_initialize(initialize, response)
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.record(&session_id, &custom_headers);
        let initialize = is_initialize(&message);
        let auth_header = self.auth(auth_header).await?;
        let response = self
            .refused(
                self.http
                    .post_message_with_response_limits(
                        uri,
                        message,
                        session_id,
                        auth_header,
                        custom_headers,
                        limits,
                    )
                    .await,
            )
            .await;
        self.observe_initialize(initialize, response)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.link.store(None);
        let auth_header = self.auth(auth_header).await?;
        self.http
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let auth_header = self.auth(auth_header).await?;
        self.refused(
            self.http
                .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
                .await,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let auth_header = self.auth(auth_header).await?;
        self.http
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

/// The Streamable HTTP transport to `url` on the gateway's shared client `http`, observed,
/// writing the session headers to `link`, with `token`'s access tokens if given.
pub fn streamable_http(
    url: &str,
    http: reqwest::Client,
    max_concurrent_requests: usize,
    routes: Arc<Routes>,
    link: Arc<ArcSwapOption<Link>>,
    declared: Declared,
    token: Option<Arc<TokenSource>>,
) -> Observed<StreamableHttpClientTransport<SessionClient>> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .max_concurrent_requests(max_concurrent_requests);
    Observed {
        inner: StreamableHttpClientTransport::with_client(
            SessionClient {
                http,
                link,
                declared,
                token,
            },
            config,
        ),
        routes,
    }
}
