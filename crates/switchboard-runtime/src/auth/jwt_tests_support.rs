//! What the JWT tests share: signing keys made once per test binary with rcgen (on aws-lc-rs,
//! as jsonwebtoken), their JWKs written out by hand as an authorization server publishes them,
//! that server's JWKS endpoint over real HTTP (counting its fetches), and token helpers.

use std::sync::{
    Mutex, OnceLock,
    atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
};
use std::time::Instant;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header, get_current_timestamp, jwk::Jwk};
use serde_json::json;

use super::*;

pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "https://mcp.example/mcp";

/// The authorization server's JWKS endpoint.
#[derive(Default)]
pub struct Idp {
    pub keys: Mutex<Vec<Value>>,
    pub fetches: AtomicUsize,
    pub failing: AtomicBool,
}

impl Idp {
    pub async fn start(keys: &[&Signer]) -> (Arc<Self>, url::Url) {
        let idp = Arc::new(Self::default());
        idp.publish(keys);
        let app = Router::new()
            .route("/jwks.json", get(serve_jwks))
            .with_state(Arc::clone(&idp));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (idp, url.parse().unwrap())
    }

    pub fn publish(&self, keys: &[&Signer]) {
        *self.keys.lock().unwrap() = keys.iter().map(|s| s.jwk.clone()).collect();
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(SeqCst)
    }
}

async fn serve_jwks(State(idp): State<Arc<Idp>>) -> (StatusCode, Json<Value>) {
    idp.fetches.fetch_add(1, SeqCst);
    if idp.failing.load(SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
    }
    let keys = idp.keys.lock().unwrap().clone();
    (StatusCode::OK, Json(json!({ "keys": keys })))
}

pub fn settings(url: &url::Url) -> JwtSettings {
    JwtSettings {
        jwks_url: url.clone(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        leeway: DEFAULT_LEEWAY,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn verifier(url: &url::Url) -> JwtVerifier {
    JwtVerifier::new(settings(url), client())
}

/// A verifier that refreshes the keys on every token, and may fetch them again at once.
pub fn eager_verifier(url: &url::Url) -> JwtVerifier {
    let timings = Timings {
        refetch_interval: Duration::ZERO,
        max_age: Duration::ZERO,
        ..Timings::default()
    };
    JwtVerifier::with_timings(settings(url), client(), timings)
}

/// What the rate limit would see once `refetch_interval` (10 s) has passed since the last fetch.
pub async fn pretend_the_interval_passed(verifier: &JwtVerifier) {
    let mut attempts = verifier.inner.jwks.fetching.lock().await;
    attempts.last = Instant::now().checked_sub(Duration::from_secs(11));
}

pub fn claims() -> Value {
    let now = get_current_timestamp();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600,
        "groups": ["dev", "ops"], "roles": "admin", "scope": "tools:read tools:call",
    })
}

/// `claims()` with `name` set to `value` (removed when null).
pub fn with(name: &str, value: Value) -> Value {
    let mut claims = claims();
    let Value::Object(map) = &mut claims else {
        unreachable!()
    };
    match value {
        Value::Null => map.remove(name),
        value => map.insert(name.into(), value),
    };
    claims
}

/// The message of `token`'s rejection as invalid, checked not to quote the token.
pub async fn refused(verifier: &JwtVerifier, token: &str) -> String {
    match verifier.verify(token).await {
        Err(Rejection::Invalid(message)) => {
            for part in token.split('.').filter(|part| part.len() > 8) {
                assert!(!message.contains(part), "{message:?} quotes the token");
            }
            message
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A key the tests sign with, and what the JWKS says about it.
#[derive(Clone)]
pub struct Signer {
    pub kid: String,
    pub algorithm: Algorithm,
    pub key: EncodingKey,
    pub jwk: Value,
    /// The public key's bytes (the P-256 point, the RSA key's DER): the "secret" of the HMAC
    /// confusion attack.
    pub public: Vec<u8>,
}

pub struct Signers {
    pub rsa: Signer,
    pub p256: Signer,
    pub ed25519: Signer,
}

/// Made once: RSA key generation takes a while.
pub fn signers() -> &'static Signers {
    static SIGNERS: OnceLock<Signers> = OnceLock::new();
    SIGNERS.get_or_init(|| Signers {
        rsa: Signer::rsa("rsa"),
        p256: Signer::p256("p256"),
        ed25519: Signer::ed25519("ed25519"),
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    fn rsa(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        // jsonwebtoken signs with a PKCS#1 key; rcgen gives PKCS#8, which wraps one.
        let key = EncodingKey::from_rsa_der(&pkcs1_of(pair.serialized_der()));
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Self {
            kid: kid.into(),
            algorithm: Algorithm::RS256,
            key,
            jwk,
            public: pair.public_key_raw().to_vec(),
        }
    }

    fn p256(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        // The uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = pair.public_key_raw();
        assert_eq!((point.len(), point[0]), (65, 4));
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        Self {
            kid: kid.into(),
            algorithm: Algorithm::ES256,
            key: EncodingKey::from_ec_der(pair.serialized_der()),
            jwk,
            public: point.to_vec(),
        }
    }

    fn ed25519(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key_raw()),
        });
        Self {
            kid: kid.into(),
            algorithm: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(pair.serialized_der()),
            jwk,
            public: pair.public_key_raw().to_vec(),
        }
    }

    /// The same key under another id (not in the JWKS unless published).
    pub fn p256_as(signer: &Signer, kid: &str) -> Self {
        let mut renamed = signer.clone();
        renamed.kid = kid.into();
        renamed.jwk["kid"] = json!(kid);
        renamed
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`:
/// SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING key }.
fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
    let (info, _) = der(pkcs8, 0x30);
    let (_, rest) = der(info, 0x02);
    let (_, rest) = der(rest, 0x30);
    let (key, _) = der(rest, 0x04);
    key.to_vec()
}

/// The content of the DER element `input` starts with (which must have `tag`), and what follows.
fn der(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag, "unexpected DER tag");
    let (len, start) = match input[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let len = input[2..2 + count]
                .iter()
                .fold(0, |len, byte| len << 8 | usize::from(*byte));
            (len, 2 + count)
        }
    };
    input[start..].split_at(len)
}
