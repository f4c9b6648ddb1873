//! The authorization server's signing keys (a JWKS, RFC 7517), fetched over HTTP and cached.
//!
//! - Fetched on first use, with a timeout; one fetch at a time (callers that wait for it then
//!   take its result rather than fetching again).
//! - Fetched again when a token names a key id the set lacks (key rotation), but at most once
//!   per [`Timings::refetch_interval`]: tokens with made-up key ids cannot make us hammer the
//!   server.
//! - Refreshed in the background once older than [`Timings::max_age`], tokens meanwhile checked
//!   with the keys at hand.
//! - A failed fetch keeps the keys at hand; with none at all, tokens cannot be checked
//!   (`Rejection::Unavailable`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse},
};
use serde::Deserialize;
use serde_json::Value;

use super::{name, quoted};
use crate::auth::identity::Rejection;

/// A JWKS larger than this is refused: real ones hold a handful of keys.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

#[derive(Debug, Clone, Copy)]
pub(super) struct Timings {
    /// Longest wait for the JWKS response, body included.
    pub fetch_timeout: Duration,
    /// Least time between two fetches (an unknown key id asks for one).
    pub refetch_interval: Duration,
    /// Age after which the keys are refreshed.
    pub max_age: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_secs(5),
            refetch_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(300),
        }
    }
}

/// One signature key of the set.
pub(super) struct Key {
    pub kid: Option<String>,
    /// For messages: `RSA`, `EC P-256`...
    kind: &'static str,
    /// What the key's type can check: the RSA algorithms for an RSA key, ES256 alone for a
    /// P-256 key...
    fits: &'static [Algorithm],
    /// The JWK's own `alg`, when it names one: then only that.
    alg: Option<Algorithm>,
    pub decoding: DecodingKey,
}

impl Key {
    /// The key `value` describes, or why it cannot check signatures here.
    pub(super) fn parse(value: Value) -> Result<Self, String> {
        let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a JWK we know")?;
        if jwk.common.public_key_use.is_some()
            && jwk.common.public_key_use != Some(PublicKeyUse::Signature)
        {
            return Err("`use` is not `sig`".into());
        }
        if let Some(operations) = &jwk.common.key_operations
            && !operations.contains(&KeyOperations::Verify)
        {
            return Err("`key_ops` lacks `verify`".into());
        }
        let (kind, fits): (_, &'static [Algorithm]) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => ("RSA", RSA),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => ("EC P-256", &[Algorithm::ES256]),
                EllipticCurve::P384 => ("EC P-384", &[Algorithm::ES384]),
                _ => return Err("an elliptic curve without a JWT algorithm here".into()),
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                ("OKP Ed25519", &[Algorithm::EdDSA])
            }
            // A shared secret (`oct`) checks nothing here, whatever the set says.
            _ => return Err("not a public signature key".into()),
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(alg) => match Algorithm::try_from(alg) {
                Ok(alg) if fits.contains(&alg) => Some(alg),
                _ => return Err(format!("`alg` {alg:?} does not fit a {kind} key")),
            },
        };
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable: {e}"))?;
        Ok(Self {
            kid: jwk.common.key_id,
            kind,
            fits,
            alg,
            decoding,
        })
    }

    fn fits(&self, algorithm: Algorithm) -> bool {
        self.fits.contains(&algorithm) && self.alg.is_none_or(|alg| alg == algorithm)
    }
}

/// The keys of one successful fetch.
pub(super) struct KeySet {
    pub keys: Vec<Arc<Key>>,
    pub fetched: Instant,
}

impl KeySet {
    /// The key that checks a token of `algorithm` naming `kid`; `None` when the set has no key
    /// of that id (or no key at all), which is worth fetching the set again for.
    fn select(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Option<Arc<Key>>, Rejection> {
        let named: Vec<&Arc<Key>> = match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            // Without a `kid` the key is unambiguous only when the set holds one.
            None if self.keys.len() <= 1 => self.keys.iter().collect(),
            None => {
                return Err(Rejection::Invalid(format!(
                    "the token names no key id (`kid`), and the JWKS has {} keys",
                    self.keys.len()
                )));
            }
        };
        let Some(first) = named.first() else {
            return Ok(None);
        };
        match named.iter().find(|key| key.fits(algorithm)) {
            Some(key) => Ok(Some(Arc::clone(key))),
            None => Err(Rejection::Invalid(format!(
                "algorithm {} does not fit the key ({}{})",
                name(algorithm),
                first.kind,
                first
                    .alg
                    .map(|a| format!(", for {}", name(a)))
                    .unwrap_or_default()
            ))),
        }
    }
}

/// The cached set and how to fetch it.
pub(super) struct Jwks {
    url: url::Url,
    client: reqwest::Client,
    timings: Timings,
    /// Read on every token without waiting for a fetch under way.
    pub current: ArcSwapOption<KeySet>,
    /// Held for the whole of a fetch: one at a time.
    pub fetching: tokio::sync::Mutex<Attempts>,
}

/// When the last fetch was tried, and why it failed if it did.
#[derive(Default)]
pub(super) struct Attempts {
    pub last: Option<Instant>,
    pub error: Option<String>,
}

impl Attempts {
    fn due(&self, interval: Duration) -> bool {
        self.last.is_none_or(|last| last.elapsed() >= interval)
    }
}

impl Jwks {
    pub fn new(url: url::Url, client: reqwest::Client, timings: Timings) -> Self {
        Self {
            url,
            client,
            timings,
            current: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(Attempts::default()),
        }
    }

    /// The key to check a token of `algorithm` naming `kid` with.
    pub async fn key_for(
        self: &Arc<Self>,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<Arc<Key>, Rejection> {
        let set = match self.current.load_full() {
            Some(set) => set,
            None => self.refresh(None).await.map_err(Rejection::Unavailable)?,
        };
        if set.fetched.elapsed() >= self.timings.max_age {
            self.refresh_in_background(&set);
        }
        if let Some(key) = set.select(algorithm, kid)? {
            return Ok(key);
        }
        // An unknown key id: the server may have rotated its keys since.
        let set = self
            .refresh(Some(&set))
            .await
            .map_err(Rejection::Unavailable)?;
        match (set.select(algorithm, kid)?, kid) {
            (Some(key), _) => Ok(key),
            (None, Some(kid)) => Err(Rejection::Invalid(format!(
                "unknown key id {}: not in the JWKS",
                quoted(kid)
            ))),
            (None, None) => Err(Rejection::Invalid("the JWKS holds no usable key".into())),
        }
    }

    /// A set newer than `seen`: the one another caller just fetched, or a fresh fetch unless
    /// the last was tried less than `refetch_interval` ago, or else the set at hand. An error
    /// only when no set was ever fetched.
    async fn refresh(&self, seen: Option<&Arc<KeySet>>) -> Result<Arc<KeySet>, String> {
        let mut attempts = self.fetching.lock().await;
        let current = self.current.load_full();
        if let Some(current) = &current
            && seen.is_none_or(|seen| !Arc::ptr_eq(seen, current))
        {
            return Ok(Arc::clone(current));
        }
        if !attempts.due(self.timings.refetch_interval) {
            return current.ok_or_else(|| {
                let error = attempts.error.as_deref().unwrap_or("no JWKS fetched yet");
                format!(
                    "{error}; next try within {:?}",
                    self.timings.refetch_interval
                )
            });
        }
        attempts.last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                attempts.error = None;
                let set = Arc::new(KeySet {
                    keys,
                    fetched: Instant::now(),
                });
                self.current.store(Some(Arc::clone(&set)));
                Ok(set)
            }
            Err(error) => {
                tracing::warn!(%error, cached = current.is_some(), "cannot fetch the JWKS");
                attempts.error = Some(error.clone());
                current.ok_or(error)
            }
        }
    }

    /// Starts a refresh of `seen` unless one is under way or not due yet.
    fn refresh_in_background(self: &Arc<Self>, seen: &Arc<KeySet>) {
        match self.fetching.try_lock() {
            Ok(attempts) if attempts.due(self.timings.refetch_interval) => {}
            _ => return,
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (jwks, seen) = (Arc::clone(self), Arc::clone(seen));
        runtime.spawn(async move {
            // Failures are logged in `refresh`; the keys at hand stay in use.
            let _ = jwks.refresh(Some(&seen)).await;
        });
    }

    /// The signature keys the server publishes now.
    async fn fetch(&self) -> Result<Vec<Arc<Key>>, String> {
        let url = &self.url;
        let failed = |error: reqwest::Error| {
            let error = crate::client::chain(&error.without_url());
            format!("cannot fetch the JWKS from {url}: {error}")
        };
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timings.fetch_timeout)
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(format!("the JWKS at {url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!(
                    "the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        parse(&body).map_err(|error| format!("the JWKS at {url} {error}"))
    }
}

/// The usable keys of a JWKS document. A key that cannot check signatures here (an encryption
/// key, a curve without a JWT algorithm) is skipped, not a reason to refuse the others.
fn parse(body: &[u8]) -> Result<Vec<Arc<Key>>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set =
        serde_json::from_slice(body).map_err(|e| format!("is not a JWK set (RFC 7517): {e}"))?;
    let mut keys = Vec::new();
    for value in set.keys {
        let kid = value.get("kid").and_then(Value::as_str).map(quoted);
        match Key::parse(value) {
            Ok(key) => keys.push(Arc::new(key)),
            Err(why) => tracing::debug!(kid = kid.as_deref(), %why, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        tracing::warn!("the JWKS holds no key that can check JWT signatures");
    }
    Ok(keys)
}
