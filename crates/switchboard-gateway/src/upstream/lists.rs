//! Listing an upstream session: everything it offers (for the catalog), whether it announces
//! changes, and following the lists of a client's own session.

use std::{sync::Arc, time::Duration};

use rmcp::{
    Peer, RoleClient,
    model::{ClientRequest, PingRequest},
    service::{PeerRequestOptions, ServiceError},
};
use tokio::sync::mpsc;

use super::{Listing, Owner, Session};

/// Follow the lists of `owner`'s own upstream session: list it at once (a server may offer a
/// client other things than it offers the gateway, such as tools that need a capability the
/// client lacks, and say nothing) and again whenever it announces a change; keep the listing
/// in the session and tell the gateway (`tell`) whose lists changed. Ends when the session is
/// closed. The gateway compares the listing with the shared session's and lists the
/// difference to that client alone.
pub(super) fn follow(
    session: &Session,
    owner: Owner,
    timeout: Duration,
    tell: mpsc::UnboundedSender<Owner>,
) {
    let peer = session.client.peer().clone();
    let routes = session.routes.clone();
    let own = session.own_listing.clone();
    let closed = session.closed.clone();
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(timeout, list(&peer)).await {
                Ok(Ok(listing)) => {
                    if own.load().as_deref() != Some(&listing) {
                        own.store(Some(Arc::new(listing)));
                        let _ = tell.send(owner.clone());
                    }
                }
                Ok(Err(error)) => tracing::debug!(%error, "a client's upstream session not listed"),
                Err(_) => tracing::debug!("a client's upstream session not listed in time"),
            }
            tokio::select! {
                () = closed.cancelled() => return,
                () = routes.refresh.notified() => {}
            }
        }
    });
}

/// Whether the upstream declared `listChanged` for every list it has.
pub(super) fn announces_changes(peer: &Peer<RoleClient>) -> bool {
    let Some(info) = peer.peer_info() else {
        return false;
    };
    // On 2026-07-28 changes come only to a `subscriptions/listen` stream, which the
    // supervisor does not hold: it lists again on every health tick instead.
    if !info.protocol_version.has_initialize() {
        return false;
    }
    let caps = &info.capabilities;
    caps.tools
        .as_ref()
        .is_none_or(|c| c.list_changed == Some(true))
        && caps
            .resources
            .as_ref()
            .is_none_or(|c| c.list_changed == Some(true))
        && caps
            .prompts
            .as_ref()
            .is_none_or(|c| c.list_changed == Some(true))
}

/// `ping`; an error answer still proves the upstream is alive.
pub(super) async fn ping(peer: &Peer<RoleClient>) -> Result<(), ServiceError> {
    let request = ClientRequest::PingRequest(PingRequest::default());
    match peer
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await?
        .await_response()
        .await
    {
        Ok(_) | Err(ServiceError::McpError(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Everything the upstream offers, by the capabilities it declared.
pub(super) async fn list(peer: &Peer<RoleClient>) -> Result<Listing, String> {
    let capabilities = peer
        .peer_info()
        .map(|info| info.capabilities.clone())
        .unwrap_or_default();
    let mut listing = Listing::default();
    let fail = |what: &str, e: ServiceError| format!("{what} failed: {e}");
    if capabilities.tools.is_some() {
        listing.tools = peer
            .list_all_tools()
            .await
            .map_err(|e| fail("tools/list", e))?;
    }
    if capabilities.resources.is_some() {
        listing.resources = peer
            .list_all_resources()
            .await
            .map_err(|e| fail("resources/list", e))?;
        // Templates are optional even for servers with resources.
        listing.resource_templates = peer.list_all_resource_templates().await.unwrap_or_default();
    }
    if capabilities.prompts.is_some() {
        listing.prompts = peer
            .list_all_prompts()
            .await
            .map_err(|e| fail("prompts/list", e))?;
    }
    Ok(listing)
}
