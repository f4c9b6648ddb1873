//! Requests an upstream sends to its client — sampling (`sampling/createMessage`), elicitation
//! (`elicitation/create`, form and URL) and `roots/list` — forwarded to the client whose call
//! caused them, and its answer sent back.
//!
//! An upstream session of one client session ([`super::pool`]) declares that client's own
//! capabilities ([`declared`]), so the upstream offers that client what it would offer it
//! directly. The gateway's shared session and the sessions of callers without a session
//! declare all three (so servers offer the tools that need them). Either way a request is
//! forwarded only to a client that declared the capability itself; otherwise the upstream gets
//! an error that says so, never a made-up answer (an empty roots list would mislead it).
//!
//! Which client a request is for: on a Streamable HTTP upstream a request that arrives on the
//! answer stream of a call names the caller. Any other request on a client's own upstream
//! session is for that client. On the shared session (stdio upstreams, stateless ones) nothing
//! else names a caller, so the request goes to the caller when exactly one client session has
//! calls in flight to that upstream, and is refused otherwise.
//!
//! A client on protocol 2026-07-28 has no channel for requests from its server: its call
//! carries an [`InputSink`] instead, and the request becomes one of the `inputRequests` of an
//! `InputRequiredResult` the gateway answers the call with (`crate::server::input_rounds`);
//! the client's `inputResponses` on its retry are the answer.
#![allow(deprecated)] // Sampling and roots are deprecated by SEP-2577 but still served.

use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        ClientCapabilities, ClientResult, CreateMessageResult, ElicitResult, ElicitationCapability,
        ErrorCode, FormElicitationCapability, InputRequest, ListRootsResult, RootsCapabilities,
        SamplingCapability, ServerRequest, UrlElicitationCapability,
    },
    service::ServiceError,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::handler::Caller;

/// The client capabilities the gateway declares to every upstream.
pub fn capabilities() -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::default();
    capabilities.sampling = Some(SamplingCapability::default());
    capabilities.roots = Some(RootsCapabilities::default());
    let mut elicitation = ElicitationCapability::default();
    elicitation.form = Some(FormElicitationCapability::default());
    elicitation.url = Some(UrlElicitationCapability::default());
    capabilities.elicitation = Some(elicitation);
    capabilities
}

/// What a client session declared of the capabilities the gateway forwards: the capabilities
/// its own upstream sessions declare.
pub fn declared(peer: &Peer<RoleServer>) -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::default();
    if let Some(info) = peer.peer_info() {
        let theirs = &info.capabilities;
        capabilities.sampling.clone_from(&theirs.sampling);
        capabilities.roots.clone_from(&theirs.roots);
        capabilities.elicitation.clone_from(&theirs.elicitation);
    }
    capabilities
}

/// A request of the upstream for a 2026-07-28 client, and where its answer goes.
pub struct Ask {
    pub request: InputRequest,
    pub answer: oneshot::Sender<Value>,
}

/// Where the requests an upstream makes during one call of a 2026-07-28 client go (to
/// become `inputRequests`), with the capabilities that client declared in the call's
/// `_meta`.
#[derive(Clone)]
pub struct InputSink {
    asks: mpsc::UnboundedSender<Ask>,
    capabilities: ClientCapabilities,
}

impl InputSink {
    pub fn new(capabilities: ClientCapabilities) -> (Self, mpsc::UnboundedReceiver<Ask>) {
        let (asks, received) = mpsc::unbounded_channel();
        (Self { asks, capabilities }, received)
    }
}

/// Whether `capabilities` include any of the requests the gateway forwards to a client: if
/// not, every one an upstream makes is refused ([`forward`]).
pub fn declares_any(capabilities: &ClientCapabilities) -> bool {
    ["sampling", "elicitation", "roots"]
        .into_iter()
        .any(|kind| declares(capabilities, kind))
}

/// Whether `capabilities` include `kind` ("sampling", "elicitation", "roots").
fn declares(capabilities: &ClientCapabilities, kind: &str) -> bool {
    match kind {
        "sampling" => capabilities.sampling.is_some(),
        "elicitation" => capabilities.elicitation.is_some(),
        _ => capabilities.roots.is_some(),
    }
}

/// Ask a 2026-07-28 client through its call's `sink`: the answer is its `inputResponses`
/// entry, read as the result `request` expects.
async fn ask(
    sink: &InputSink,
    kind: &str,
    request: ServerRequest,
) -> Result<ClientResult, ErrorData> {
    let request = match request {
        ServerRequest::CreateMessageRequest(r) => InputRequest::CreateMessage(r),
        ServerRequest::ElicitRequest(r) => InputRequest::Elicitation(r),
        ServerRequest::ListRootsRequest(r) => InputRequest::ListRoots(r),
        _ => return Err(ErrorData::internal_error("not an input request", None)),
    };
    let (answer, answered) = oneshot::channel();
    let gone = || {
        ErrorData::internal_error(
            format!(
                "the client did not answer the {kind} request (its call ended or its requestState expired)"
            ),
            None,
        )
    };
    sink.asks
        .send(Ask { request, answer })
        .map_err(|_| gone())?;
    let value = answered.await.map_err(|_| gone())?;
    let unreadable = |e: serde_json::Error| {
        ErrorData::invalid_params(
            format!("the client's answer to the {kind} request is not one ({e})"),
            None,
        )
    };
    Ok(match kind {
        "sampling" => ClientResult::CreateMessageResult(Box::new(
            serde_json::from_value::<CreateMessageResult>(value).map_err(unreadable)?,
        )),
        "elicitation" => ClientResult::ElicitResult(
            serde_json::from_value::<ElicitResult>(value).map_err(unreadable)?,
        ),
        _ => ClientResult::ListRootsResult(
            serde_json::from_value::<ListRootsResult>(value).map_err(unreadable)?,
        ),
    })
}

/// Send `request` to `caller`'s client and return its answer; `None` as caller: nobody to
/// ask (an error for the upstream).
pub async fn forward(
    upstream: &str,
    caller: Option<&Caller>,
    request: ServerRequest,
) -> Result<ClientResult, ErrorData> {
    let kind = match &request {
        ServerRequest::PingRequest(_) => return Ok(ClientResult::empty(())),
        ServerRequest::CreateMessageRequest(_) => "sampling",
        ServerRequest::ElicitRequest(_) => "elicitation",
        ServerRequest::ListRootsRequest(_) => "roots",
        _ => {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                "the gateway does not forward this request to its clients",
                None,
            ));
        }
    };
    let Some(caller) = caller else {
        return Err(ErrorData::new(
            ErrorCode::INVALID_REQUEST,
            format!(
                "the gateway cannot tell which of its clients this {kind} request is for (no single call to '{upstream}' is in flight)"
            ),
            None,
        ));
    };
    let declared = match &caller.input {
        Some(sink) => declares(&sink.capabilities, kind),
        None => caller
            .peer
            .peer_info()
            .is_some_and(|info| declares(&info.capabilities, kind)),
    };
    if !declared {
        return Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("the client of this call does not support {kind}"),
            None,
        ));
    }
    if let Some(sink) = &caller.input {
        return ask(sink, kind, request).await;
    }
    match caller.peer.send_request(request).await {
        Ok(result) => Ok(result),
        Err(ServiceError::McpError(error)) => Err(error),
        Err(error) => Err(ErrorData::internal_error(
            format!("the client did not answer the {kind} request: {error}"),
            None,
        )),
    }
}
