//! Resource subscriptions of one upstream (`resources/subscribe`, protocol 2025-11-25): which
//! client sessions asked to hear about which of its resources, under which public URI.
//!
//! A subscription is made on the upstream session the client's requests go on
//! ([`super::pool`]): on a stateful upstream its own, which it alone hears; on the shared
//! session of a stateless or stdio upstream the gateway subscribes upstream once per resource
//! (on the first client's request) and unsubscribes when the last client left.
//! `notifications/resources/updated` from an upstream session goes to each session subscribed
//! on it, under the URI that session used. After a reconnect the supervisor subscribes the new
//! shared session again to every resource that still has subscribers; the sessions of
//! clients went with the upstream, and their subscriptions with them (as they would have for
//! a client connected to it directly).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use rmcp::{
    Peer, RoleServer,
    model::{ClientRequest, ResourceUpdatedNotificationParam},
};
use tokio_util::sync::CancellationToken;

use super::{Owner, Session, Upstream};
use crate::error::CallError;

/// One client session's interest in a resource.
#[derive(Clone)]
pub struct Subscriber {
    pub peer: Peer<RoleServer>,
    /// Its `mcp-session-id` (a subscription belongs to a session).
    pub session: Option<Arc<str>>,
    /// The URI it subscribed with (the gateway's public one).
    pub public: String,
}

#[derive(Default)]
pub struct Subscriptions {
    /// Original (upstream) URI to its subscribers.
    by_uri: Mutex<HashMap<String, Vec<Subscriber>>>,
}

impl Subscriptions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Subscriber>>> {
        self.by_uri.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add `subscriber` to `uri` (once per session); true when it is the first one, so the
    /// gateway must subscribe upstream.
    pub fn add(&self, uri: &str, subscriber: Subscriber) -> bool {
        let mut by_uri = self.lock();
        let list = by_uri.entry(uri.to_owned()).or_default();
        list.retain(|s| !s.peer.is_transport_closed());
        let first = list.is_empty();
        let same = |s: &Subscriber| s.session.is_some() && s.session == subscriber.session;
        if !list.iter().any(same) {
            list.push(subscriber);
        }
        first
    }

    /// Remove `session`'s subscription to `uri`; true when nobody is left, so the gateway
    /// should unsubscribe upstream.
    pub fn remove(&self, uri: &str, session: Option<&Arc<str>>) -> bool {
        let mut by_uri = self.lock();
        let Some(list) = by_uri.get_mut(uri) else {
            return false;
        };
        list.retain(|s| !s.peer.is_transport_closed() && s.session.as_ref() != session);
        let empty = list.is_empty();
        if empty {
            by_uri.remove(uri);
        }
        empty
    }

    /// Undo [`Subscriptions::add`] when the upstream refused the subscription.
    pub fn forget(&self, uri: &str) {
        self.lock().remove(uri);
    }

    /// Every URI with subscribers (to subscribe again on a new upstream session).
    pub fn uris(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Tell every session subscribed to the updated resource, each under its own URI.
    pub fn forward(&self, upstream: &Arc<str>, params: &ResourceUpdatedNotificationParam) {
        let subscribers: Vec<Subscriber> = match self.lock().get_mut(&params.uri) {
            Some(list) => {
                list.retain(|s| !s.peer.is_transport_closed());
                list.clone()
            }
            None => return,
        };
        for subscriber in subscribers {
            let mut params = params.clone();
            params.uri = subscriber.public;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Err(error) = subscriber.peer.notify_resource_updated(params).await {
                    tracing::debug!(%upstream, %error, "resource update not delivered; the session ended");
                }
            });
        }
    }
}

impl Upstream {
    /// Subscribe `subscriber` to this upstream's resource `uri`, on `owner`'s session (the
    /// upstream hears of it on the first subscriber of that session only).
    #[allow(deprecated)] // resources/subscribe is the 2025-11-25 way, still served.
    pub async fn subscribe_resource(
        &self,
        uri: String,
        subscriber: Subscriber,
        owner: &Owner,
        ct: &CancellationToken,
    ) -> Result<(), CallError> {
        let session = self.session_of(owner, Some(&subscriber.peer), ct).await?;
        if !session.routes.subscriptions.add(&uri, subscriber) {
            return Ok(());
        }
        let request = ClientRequest::SubscribeRequest(rmcp::model::SubscribeRequest::new(
            rmcp::model::SubscribeRequestParams::new(uri.clone()),
        ));
        match self.request_on(&session, request, ct).await {
            Ok(_) => Ok(()),
            Err(error) => {
                session.routes.subscriptions.forget(&uri);
                Err(error)
            }
        }
    }

    /// End `session`'s subscription to `uri`, made on `owner`'s session (the upstream hears of
    /// it when nobody is left there).
    #[allow(deprecated)] // resources/unsubscribe is the 2025-11-25 way, still served.
    pub async fn unsubscribe_resource(
        &self,
        uri: String,
        session: Option<&Arc<str>>,
        owner: &Owner,
        ct: &CancellationToken,
    ) -> Result<(), CallError> {
        let Some(upstream_session) = self.current_session(owner) else {
            return Ok(()); // Its session is gone, and the subscription with it.
        };
        if !upstream_session.routes.subscriptions.remove(&uri, session) {
            return Ok(());
        }
        let request = ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(
            rmcp::model::UnsubscribeRequestParams::new(uri),
        ));
        self.request_on(&upstream_session, request, ct)
            .await
            .map(drop)
    }

    /// Subscribe the new session to every resource clients are subscribed to (a new upstream
    /// session knows none of the old one's subscriptions).
    #[allow(deprecated)] // resources/subscribe is the 2025-11-25 way, still served.
    pub(super) fn resubscribe(&self, session: &Session) {
        for uri in self.routes.subscriptions.uris() {
            let peer = session.client.peer().clone();
            let upstream = self.name.clone();
            tokio::spawn(async move {
                let params = rmcp::model::SubscribeRequestParams::new(uri.clone());
                if let Err(error) = peer.subscribe(params).await {
                    tracing::warn!(%upstream, %uri, %error, "resource subscription not renewed");
                }
            });
        }
    }
}
