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

use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        ClientCapabilities, ClientResult, ElicitationCapability, ErrorCode,
        FormElicitationCapability, RootsCapabilities, SamplingCapability, ServerRequest,
        UrlElicitationCapability,
    },
    service::ServiceError,
};

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
    let declared = caller.peer.peer_info().is_some_and(|info| {
        let c = &info.capabilities;
        match kind {
            "sampling" => c.sampling.is_some(),
            "elicitation" => c.elicitation.is_some(),
            _ => c.roots.is_some(),
        }
    });
    if !declared {
        return Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("the client of this call does not support {kind}"),
            None,
        ));
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
