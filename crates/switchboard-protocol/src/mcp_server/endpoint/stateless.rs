//! Requests of the 2026-07-28 revision (no session: each request carries its lifecycle in
//! `_meta`) answered on the HTTP request's own task, as the endpoint answers a session's.
//!
//! rmcp serves each such request by building a service around it: a peer, a one-shot
//! transport, a spawned service loop, and the message serialised back to a JSON value to
//! check its standard headers. bench/ measured the gateway spending 203 µs of CPU per 2026-07-28
//! call at c=32 against 136 µs per session call (`bench/results/2026-12-07-scenario-1-hop.md`).
//!
//! A request is answered here only when it is certain that rmcp would dispatch it to the
//! handler unchanged ([`dispatchable`]); anything else — a malformed `_meta`, a header that
//! disagrees with the body, a Base64-wrapped `Mcp-Name`, an `Mcp-Param-*` header, another
//! version — goes to rmcp, which answers or refuses it as before.
//!
//! The handler is given one peer for every such request ([`StatelessPeer`]): rmcp's own is a
//! peer whose `peer_info` says only the protocol version (from the header; default client
//! capabilities and implementation), and this one says the same. Neither can carry a request
//! to the client (rmcp refuses server-to-client requests at 2026-07-28; a handler asks in
//! `InputRequiredResult` rounds instead), and what the handler sends on the request's own
//! stream (progress, log messages) goes through the answer's sink ([`super::AnswerSink`]).

use std::{borrow::Cow, convert::Infallible};

use http::HeaderMap;
use rmcp::{
    Peer, RoleServer, ServerHandler,
    model::{
        ClientCapabilities, ClientRequest, GetMeta, Implementation, InitializeRequestParams,
        ProtocolVersion,
    },
    service::{RunningService, RxJsonRpcMessage, TxJsonRpcMessage, serve_directly_with_ct},
    transport::Transport,
};
use tokio_util::sync::CancellationToken;

use super::decode::method_and_name;

/// The only version answered here.
const VERSION: &str = "2026-07-28";
/// How a Base64-wrapped standard header value begins (SEP-2243); such values go to rmcp.
const BASE64_PREFIX: &str = "=?base64?";

/// The peer every 2026-07-28 request answered here is handled with, and the idle service
/// that owns it.
pub(super) struct StatelessPeer<S: ServerHandler> {
    peer: Peer<RoleServer>,
    /// Dropping it would close the peer.
    _service: RunningService<RoleServer, S>,
}

impl<S: ServerHandler> StatelessPeer<S> {
    pub(super) fn new(server: S, shutdown: &CancellationToken) -> Self {
        let info =
            InitializeRequestParams::new(ClientCapabilities::default(), Implementation::default())
                .with_protocol_version(ProtocolVersion::V_2026_07_28);
        let service = serve_directly_with_ct(
            server,
            Detached(shutdown.clone()),
            Some(info),
            shutdown.child_token(),
        );
        Self {
            peer: service.peer().clone(),
            _service: service,
        }
    }

    pub(super) fn peer(&self) -> Peer<RoleServer> {
        self.peer.clone()
    }
}

/// The transport of [`StatelessPeer`]'s service: nothing arrives, and what the peer sends is
/// dropped (the handler of a request answered here sends on the answer's sink instead).
struct Detached(CancellationToken);

impl Transport<RoleServer> for Detached {
    type Error = Infallible;

    fn name() -> Cow<'static, str> {
        "detached".into()
    }

    fn send(
        &mut self,
        _item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        std::future::ready(Ok(()))
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        let stop = self.0.clone();
        async move {
            stop.cancelled().await;
            None
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Whether the request headers make a POST a 2026-07-28 candidate (the body decides the rest):
/// exactly one `Mcp-Protocol-Version: 2026-07-28`, and no session.
pub(super) fn candidate(headers: &HeaderMap) -> bool {
    !headers.contains_key("mcp-session-id")
        && sole(headers, "mcp-protocol-version") == Some(VERSION)
}

/// Whether rmcp would hand `request`, POSTed with `headers`, to the handler unchanged: a
/// request the endpoint answers, with the complete 2026-07-28 `_meta` and standard headers
/// that agree with the body, and no other `Mcp-*` header.
pub(super) fn dispatchable(headers: &HeaderMap, request: &ClientRequest) -> bool {
    let Some((method, name)) = method_and_name(request) else {
        return false;
    };
    let meta = request.get_meta();
    if meta
        .protocol_version()
        .is_none_or(|v| v.as_str() != VERSION)
        || !meta
            .missing_required_keys(&ProtocolVersion::V_2026_07_28)
            .is_empty()
    {
        return false;
    }
    let only_known = headers.keys().all(|key| {
        let key = key.as_str();
        !key.starts_with("mcp-")
            || matches!(key, "mcp-protocol-version" | "mcp-method" | "mcp-name")
    });
    let name_agrees = match name {
        Some(name) => sole(headers, "mcp-name")
            .is_some_and(|value| value == name && !value.starts_with(BASE64_PREFIX)),
        None => !headers.contains_key("mcp-name"),
    };
    only_known && sole(headers, "mcp-method") == Some(method) && name_agrees
}

/// The one value of header `name`, if it has exactly one and it is text.
fn sole<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values
        .next()
        .is_none()
        .then(|| first.to_str().ok())
        .flatten()
}
