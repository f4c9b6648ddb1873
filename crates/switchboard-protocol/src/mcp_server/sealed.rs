//! Sealed session ids: a Streamable HTTP session that any replica sharing the key can serve,
//! with no shared store and no sticky load balancer.
//!
//! The session id *is* the session's state: the client's `initialize` parameters and an expiry,
//! sealed with AES-256-GCM (`s1.` + base64url of nonce and ciphertext). A replica that receives
//! a request for a session it does not hold opens the id and lets rmcp restore the session
//! (rmcp's `SessionStore` hook: a fresh session worker with the same id, the `initialize`
//! handshake replayed), so the client never sees a 404 while any replica lives.
//!
//! What a replica keeps only in memory is lost when it dies: requests in flight there, its
//! server→client requests, the session's log level and resource subscriptions, and the
//! upstream sessions it opened for the client (a new replica opens new ones). A `DELETE`
//! closes the session where it lands; another replica would reopen the id until it expires,
//! because revoking it needs shared state.
//!
//! [`SealedSessions`] issues the ids: the endpoint runs rmcp's handling of an `initialize`
//! inside [`SealedSessions::scope`], and `create_session` seals what it finds there.

use std::{sync::Arc, time::Duration};

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use base64::Engine;
use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, InitializeRequestParams, ServerJsonRpcMessage},
    transport::streamable_http_server::{
        SessionId,
        session::{
            RestoreOutcome, ServerSseMessage, SessionManager,
            local::{LocalSessionManager, LocalSessionManagerError},
            store::{SessionState, SessionStore, SessionStoreError},
        },
    },
};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "s1.";
/// Longest accepted id: a client's capabilities and info sealed, with room to spare; anything
/// longer is not ours and not worth decrypting.
const MAX_ID_BYTES: usize = 16 * 1024;

tokio::task_local! {
    /// The `initialize` parameters of the request being handled (see [`SealedSessions::scope`]).
    static INITIALIZE: InitializeRequestParams;
}

/// The keys replicas share: the first seals, every one opens (rotation: add the new key
/// second, roll out, swap the order, roll out, drop the old one).
#[derive(Clone)]
pub struct SessionKeys {
    keys: Arc<Vec<LessSafeKey>>,
    lifetime: Duration,
    random: SystemRandom,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys({} keys)", self.keys.len())
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
    init: InitializeRequestParams,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SessionKeys {
    /// Keys from raw 32-byte secrets; ids stay valid for `lifetime` after `initialize`.
    pub fn new(secrets: &[Vec<u8>], lifetime: Duration) -> Result<Self, String> {
        if secrets.is_empty() {
            return Err("no session key given".into());
        }
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, secret)| {
                if secret.len() != 32 {
                    return Err(format!(
                        "session key {} is {} bytes; it must be exactly 32 random bytes (head -c 32 /dev/urandom)",
                        i + 1,
                        secret.len()
                    ));
                }
                UnboundKey::new(&AES_256_GCM, secret)
                    .map(LessSafeKey::new)
                    .map_err(|_| format!("session key {} is not usable", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys: Arc::new(keys),
            lifetime,
            random: SystemRandom::new(),
        })
    }

    /// A new id carrying `init`.
    pub fn seal(&self, init: &InitializeRequestParams) -> Result<String, String> {
        let sealed = Sealed {
            exp: now() + self.lifetime.as_secs(),
            init: init.clone(),
        };
        let mut data = serde_json::to_vec(&sealed).map_err(|e| e.to_string())?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| "no randomness for a session id".to_owned())?;
        self.keys[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PREFIX.as_bytes()),
                &mut data,
            )
            .map_err(|_| "sealing a session id failed".to_owned())?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&data);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// The `initialize` parameters `id` carries, if one of our keys sealed it and it has not
    /// expired.
    pub fn open(&self, id: &str) -> Option<InitializeRequestParams> {
        if id.len() > MAX_ID_BYTES {
            return None;
        }
        let blob = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id.strip_prefix(PREFIX)?)
            .ok()?;
        if blob.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        for key in self.keys.iter() {
            let mut data = sealed.to_vec();
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(PREFIX.as_bytes()), &mut data) {
                let sealed: Sealed = serde_json::from_slice(plain).ok()?;
                return (sealed.exp > now()).then_some(sealed.init);
            }
        }
        None
    }
}

/// rmcp's session store over sealed ids: loading opens the id; nothing is stored.
pub struct SealedStore(pub SessionKeys);

#[async_trait::async_trait]
impl SessionStore for SealedStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(self.0.open(session_id).map(SessionState::new))
    }
    async fn store(&self, _: &str, _: &SessionState) -> Result<(), SessionStoreError> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> Result<(), SessionStoreError> {
        Ok(())
    }
}

/// rmcp's in-process session manager, issuing sealed ids for sessions started inside
/// [`SealedSessions::scope`] (and random ones otherwise, as before).
pub struct SealedSessions {
    /// The sessions this process holds.
    pub local: LocalSessionManager,
    /// `None`: random ids, as rmcp issues them.
    keys: Option<SessionKeys>,
}

impl SealedSessions {
    pub fn new(local: LocalSessionManager, keys: Option<SessionKeys>) -> Self {
        Self { local, keys }
    }

    /// Whether ids are sealed.
    pub fn sealing(&self) -> bool {
        self.keys.is_some()
    }

    /// The store to give rmcp, so that ids sealed by any replica are restored here.
    pub fn store(&self) -> Option<Arc<dyn SessionStore>> {
        self.keys
            .clone()
            .map(|keys| Arc::new(SealedStore(keys)) as Arc<dyn SessionStore>)
    }

    /// Run `handling` (rmcp's handling of an `initialize`) so that the session it creates
    /// gets an id sealing `init`.
    pub async fn scope<F: Future>(init: InitializeRequestParams, handling: F) -> F::Output {
        INITIALIZE.scope(init, handling).await
    }
}

impl SessionManager for SealedSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let sealed = self
            .keys
            .as_ref()
            .and_then(|keys| INITIALIZE.try_with(|init| keys.seal(init)).ok())
            .and_then(|sealed| {
                sealed
                    .inspect_err(|error| tracing::error!(%error, "cannot seal a session id"))
                    .ok()
            });
        let Some(id) = sealed else {
            return self.local.create_session().await;
        };
        let id: SessionId = id.into();
        match self.local.restore_session(id.clone()).await? {
            RestoreOutcome::Restored(transport) => Ok((id, transport)),
            // A fresh random nonce makes a clash impossible; fall back rather than fail.
            _ => self.local.create_session().await,
        }
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.local.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.local.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.local.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.local.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.local.restore_session(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> InitializeRequestParams {
        serde_json::from_value(serde_json::json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "t", "version": "1"}
        }))
        .expect("initialize params")
    }

    #[test]
    fn ids_open_with_any_shared_key_and_nothing_else() {
        let (a, b) = (vec![1u8; 32], vec![2u8; 32]);
        let old =
            SessionKeys::new(std::slice::from_ref(&a), Duration::from_secs(60)).expect("a key");
        let rotated = SessionKeys::new(&[b.clone(), a], Duration::from_secs(60)).expect("keys");
        let other = SessionKeys::new(&[b], Duration::from_secs(60)).expect("a key");
        let id = old.seal(&init()).expect("sealed");
        assert!(id.starts_with("s1.") && id.is_ascii());
        let opened = rotated.open(&id).expect("the second key opens it");
        assert_eq!(opened.client_info.name, "t");
        assert!(other.open(&id).is_none());
        let mut forged = id.clone();
        forged.pop();
        forged.push(if id.ends_with('A') { 'B' } else { 'A' });
        assert!(old.open(&forged).is_none());
        assert!(old.open("s1.").is_none() && old.open("not-ours").is_none());
    }

    #[test]
    fn expired_ids_and_bad_keys_are_refused() {
        let keys = SessionKeys::new(&[vec![3u8; 32]], Duration::ZERO).expect("a key");
        let id = keys.seal(&init()).expect("sealed");
        assert!(keys.open(&id).is_none());
        assert!(SessionKeys::new(&[vec![0u8; 16]], Duration::ZERO).is_err());
        assert!(SessionKeys::new(&[], Duration::ZERO).is_err());
    }
}
