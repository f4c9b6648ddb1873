//! The gateway's `/mcp` endpoint: the endpoint every service serves
//! (`switchboard_protocol::mcp_server::endpoint`), with what only the gateway adds.
//!
//! While an upstream offers MCP 2025-11-25 tasks, which rmcp does not model, task requests are
//! renamed before the endpoint reads them and the `initialize` and `tools/list` answers are
//! completed ([`tasks`]); the renamed requests are answered on the endpoint's own path, like a
//! tool call. When rmcp accepts a client's `DELETE` of its session, the gateway closes that
//! session's upstream sessions at once (`crate::upstream::pool`).

mod tasks;

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, extract::Request, response::Response};
use futures::future::BoxFuture;
use http::Method;
use switchboard_protocol::mcp_server::{
    McpEndpointOptions,
    endpoint::{McpEndpoint, read_body},
    sealed::SessionKeys,
};

use crate::{gateway::Gateway, server::GatewayServer};

/// The `/mcp` service: see the module documentation.
#[derive(Clone)]
pub struct Endpoint {
    mcp: McpEndpoint<GatewayServer>,
    gateway: Gateway,
    max_body_bytes: usize,
}

impl Endpoint {
    /// The endpoint of `gateway`; client sessions idle for `idle_timeout` are closed.
    /// With `keys`, session ids are sealed and any replica holding a key serves any session
    /// (`switchboard_protocol::mcp_server::sealed`).
    pub fn new(
        gateway: &Gateway,
        options: &McpEndpointOptions,
        idle_timeout: Duration,
        keys: Option<SessionKeys>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        let options = options
            .clone()
            .with_idle_timeout(idle_timeout)
            .with_session_keys(keys)
            .with_custom_methods(crate::server::tasks::METHODS);
        // The table `on_initialized` fills: the endpoint serves each known session's requests.
        let peers = gateway.sessions().peers().clone();
        Self {
            mcp: McpEndpoint::new(
                GatewayServer::new(gateway.clone()),
                peers,
                &options,
                shutdown,
            ),
            gateway: gateway.clone(),
            max_body_bytes: options.max_body_bytes,
        }
    }

    async fn handle(self, request: Request) -> Response {
        if request.method() == Method::DELETE {
            return self.end_session(request).await;
        }
        if tasks::applies(&self.gateway, request.method(), request.headers()) {
            return self.with_tasks(request).await;
        }
        self.mcp.handle(request).await
    }

    /// A POST that may concern tasks: renamed or its answer completed ([`tasks`]).
    async fn with_tasks(self, request: Request) -> Response {
        let (mut parts, body) = request.into_parts();
        let bytes = match read_body(body, self.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(refused) => return refused,
        };
        let (bytes, patch) = tasks::prepare(&self.gateway, &mut parts.headers, bytes);
        let response = self
            .mcp
            .handle(Request::from_parts(parts, Body::from(bytes)))
            .await;
        match patch {
            Some(patch) => patch.apply(response).await,
            None => response,
        }
    }

    /// A client ends its session (rmcp decides whether it may): its upstream sessions end
    /// with it (`crate::upstream::pool`).
    async fn end_session(&self, request: Request) -> Response {
        let session = crate::sessions::header_session_id(request.headers());
        let response = self.mcp.handle(request).await;
        if response.status().is_success()
            && let Some(session) = session
        {
            self.gateway.end_session(&session);
        }
        response
    }
}

impl tower::Service<Request> for Endpoint {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}
