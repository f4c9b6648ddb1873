//! Whose upstream state a request uses: the key of the upstream sessions of
//! [`super::pool`].
//!
//! - A client on protocol 2025-11-25 or earlier has a session of the gateway
//!   (`Mcp-Session-Id`): its requests go on upstream sessions of its own, one per stateful
//!   upstream, whoever it is authenticated as.
//! - A request without a session (protocol 2026-07-28, REST) goes on the upstream sessions of
//!   the caller the authentication layer recorded (the user a delegate acts for, when it names
//!   one): one per identity, shared by all its sessionless requests.
//! - Unauthenticated requests without a session (authentication off) share one upstream
//!   session per upstream: nothing tells such callers apart.

use std::sync::Arc;

use switchboard_runtime::auth::{Identity, Method};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A client session of the gateway, by its `mcp-session-id`.
    Session(Arc<str>),
    /// An authenticated caller without a session: its subject (and its delegate's).
    Identity(Arc<str>),
    /// Unauthenticated callers without a session.
    Anonymous,
}

impl Owner {
    /// The owner of a request of client session `session` (if it has one) made by `identity`.
    pub fn of(session: Option<&Arc<str>>, identity: Option<&Identity>) -> Self {
        if let Some(session) = session {
            return Owner::Session(session.clone());
        }
        match identity {
            Some(identity) if identity.method != Method::Anonymous => {
                Owner::Identity(Arc::from(match &identity.via {
                    Some(delegate) => format!("{} via {delegate}", identity.subject),
                    None => identity.subject.clone(),
                }))
            }
            _ => Owner::Anonymous,
        }
    }

    /// What kind of owner, for logs (never the session id or the subject).
    pub fn kind(&self) -> &'static str {
        match self {
            Owner::Session(_) => "client session",
            Owner::Identity(_) => "caller",
            Owner::Anonymous => "anonymous callers",
        }
    }

    /// The client session, for an owner that is one.
    pub fn session(&self) -> Option<&Arc<str>> {
        match self {
            Owner::Session(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(subject: &str, method: Method, via: Option<&str>) -> Identity {
        let mut identity = Identity::anonymous();
        identity.subject = subject.to_owned();
        identity.method = method;
        identity.via = via.map(str::to_owned);
        identity
    }

    #[test]
    fn sessions_first_then_identities_then_nobody() {
        let alice = caller("alice", Method::ApiKey, None);
        let session: Arc<str> = Arc::from("s1");
        assert_eq!(
            Owner::of(Some(&session), Some(&alice)),
            Owner::Session(session.clone())
        );
        assert_eq!(
            Owner::of(None, Some(&alice)),
            Owner::Identity(Arc::from("alice"))
        );
        let delegated = caller("alice", Method::ApiKey, Some("middleware"));
        assert_eq!(
            Owner::of(None, Some(&delegated)),
            Owner::Identity(Arc::from("alice via middleware"))
        );
        assert_eq!(
            Owner::of(None, Some(&Identity::anonymous())),
            Owner::Anonymous
        );
        assert_eq!(Owner::of(None, None), Owner::Anonymous);
    }
}
