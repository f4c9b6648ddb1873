//! Bearer JWTs checked the way the MCP authorization specification asks of a protected
//! resource: signed by a key of the authorization server's JWKS, issued by the configured
//! issuer, meant for this resource (`aud`), and within its validity period.
//!
//! Only public-key algorithms are ever accepted. HMAC (`HS*`) would need a shared secret a JWKS
//! of public keys cannot hold, and accepting it is the classic confusion attack (a token
//! "signed" with the public key as the HMAC secret); `none` is an unsigned token. The key must
//! also fit the token's algorithm: an RSA key never checks an ES256 token, a P-256 key never an
//! ES384 one, and a key whose JWK names an `alg` checks that algorithm only.
//!
//! The JWKS is fetched on first use and cached (`jwt_jwks.rs` says when it is fetched again).
//! Rejections say why (expired, wrong audience, unknown key id...) and never quote the token.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::identity::{Identity, Method, Rejection};

#[path = "jwt_jwks.rs"]
mod jwks;

use jwks::{Jwks, Key, Timings};

/// Clock skew allowed on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Every algorithm a JWKS key can verify, by its JOSE name (RFC 7518).
const ALLOWED: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// Longer tokens are refused before any decoding: real ones are a few KiB at most.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a JWT must satisfy to be let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// Where the authorization server publishes its signing keys (RFC 7517 JSON).
    pub jwks_url: url::Url,
    /// The `iss` accepted tokens carry.
    pub issuer: String,
    /// The `aud` accepted tokens must hold: this resource's identifier.
    pub audience: String,
    /// Algorithms accepted; build it with [`JwtSettings::parse_algorithms`]. Anything outside
    /// the public-key algorithms is ignored even if put here directly.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp` and `nbf` ([`DEFAULT_LEEWAY`] by default).
    pub leeway: Duration,
}

impl JwtSettings {
    /// The algorithms `names` lists (JOSE names, e.g. `RS256`, `ES256`, `EdDSA`; case is
    /// ignored, duplicates dropped). `HS*` and `none` are refused with the reason why.
    pub fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, String> {
        let allowed = ALLOWED.map(|(name, _)| name).join(", ");
        let mut algorithms = Vec::new();
        for name in names
            .iter()
            .map(|name| name.trim())
            .filter(|n| !n.is_empty())
        {
            let found = ALLOWED
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name));
            match found {
                Some((_, algorithm)) if !algorithms.contains(algorithm) => {
                    algorithms.push(*algorithm)
                }
                Some(_) => {}
                None if name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) => {
                    return Err(format!(
                        "{name:?} is refused: HMAC algorithms need a shared secret, which a JWKS of public keys cannot hold, and accepting them lets a token \"signed\" with a public key as the secret through; allowed: {allowed}"
                    ));
                }
                None if name.eq_ignore_ascii_case("none") => {
                    return Err(format!(
                        "\"none\" is refused: it means unsigned tokens, which anyone can forge; allowed: {allowed}"
                    ));
                }
                None => return Err(format!("unknown algorithm {name:?}; allowed: {allowed}")),
            }
        }
        if algorithms.is_empty() {
            return Err(format!("no algorithm given; allowed: {allowed}"));
        }
        Ok(algorithms)
    }
}

/// Checks bearer JWTs against the configured JWKS. Cheap to clone: clones share the cached keys.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    settings: JwtSettings,
    /// Issuer, audience, required claims and leeway, set once; each token's algorithm is
    /// filled in per call.
    validation: Validation,
    jwks: Arc<Jwks>,
    /// Tokens already verified, by the SHA-256 of their text: checking an ES256 signature
    /// cost the gateway ~100 µs of CPU per call (bench/run.sh scenario 1, "JWT + policy"),
    /// while a client sends the same token with every request until it expires.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], Verified>>,
}

/// A verified token's identity, usable until `until` (its `exp`, or [`REVERIFY`] after it was
/// checked, whichever comes first) and only while the JWKS still gives the same `key` for it:
/// a key set fetched again, or a key taken out, means checking the token again.
struct Verified {
    identity: Identity,
    until: std::time::Instant,
    key: Arc<Key>,
}

/// Longest a verified token is trusted before its signature and claims are checked again.
const REVERIFY: Duration = Duration::from_secs(60);
/// Past this many verified tokens remembered, the cache starts over.
const MAX_VERIFIED: usize = 10_000;

// One verifier serves every request handler of a service.
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<JwtVerifier>();
};

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("jwks_url", &self.inner.settings.jwks_url.as_str())
            .field("issuer", &self.inner.settings.issuer)
            .field("audience", &self.inner.settings.audience)
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier that fetches the JWKS with `client`: on first use (not here), with a 5 s
    /// timeout; again for a token naming an unknown key id, at most once every 10 s; and in the
    /// background once the keys at hand are 5 minutes old.
    pub fn new(settings: JwtSettings, client: reqwest::Client) -> Self {
        Self::with_timings(settings, client, Timings::default())
    }

    /// [`JwtVerifier::new`] with other fetch timings, for tests.
    fn with_timings(mut settings: JwtSettings, client: reqwest::Client, timings: Timings) -> Self {
        // The public fields could hold an HMAC algorithm; it never gets through.
        settings
            .algorithms
            .retain(|algorithm| ALLOWED.iter().any(|(_, a)| a == algorithm));
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let jwks = Arc::new(Jwks::new(settings.jwks_url.clone(), client, timings));
        Self {
            inner: Arc::new(Inner {
                settings,
                validation,
                jwks,
                verified: std::sync::Mutex::default(),
            }),
        }
    }

    /// Who `token` says the caller is, once its signature, issuer, audience and validity
    /// period check out. `Unavailable` only when the JWKS cannot be had at all.
    pub async fn verify(&self, token: &str) -> Result<Identity, Rejection> {
        use sha2::{Digest, Sha256};
        let (algorithm, kid) = self.read_header(token)?;
        let key = self.inner.jwks.key_for(algorithm, kid.as_deref()).await?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = std::time::Instant::now();
        if let Some(known) = self
            .verified()
            .get(&digest)
            .filter(|v| now < v.until && Arc::ptr_eq(&v.key, &key))
        {
            return Ok(known.identity.clone());
        }
        let claims = self.decode(token, algorithm, &key)?;
        let identity = identity(&claims, &self.inner.settings.issuer)?;
        // Until `exp` (no leeway: a cached answer never outlives the token) or REVERIFY.
        let left = claims
            .get("exp")
            .and_then(Value::as_u64)
            .and_then(|exp| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_secs();
                exp.checked_sub(now)
            })
            .map_or(Duration::ZERO, Duration::from_secs);
        if !left.is_zero() {
            let mut verified = self.verified();
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(
                digest,
                Verified {
                    identity: identity.clone(),
                    until: now + left.min(REVERIFY),
                    key,
                },
            );
        }
        Ok(identity)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Verified>> {
        self.inner
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The token's algorithm, if allowed, and key id. Read here rather than by jsonwebtoken so
    /// that `none` or `HS256` is reported as a refused algorithm, not as a malformed token.
    fn read_header(&self, token: &str) -> Result<(Algorithm, Option<String>), Rejection> {
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            kid: Option<String>,
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed("longer than any real token"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a JWT is three dot-separated parts"));
        };
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| malformed("the header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header)
            .map_err(|_| malformed("the header is not a JSON object with an `alg`"))?;
        let allowed = &self.inner.settings.algorithms;
        let algorithm = ALLOWED
            .iter()
            .find(|(name, algorithm)| *name == header.alg && allowed.contains(algorithm))
            .map(|(_, algorithm)| *algorithm)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|a| name(*a)).collect();
                Rejection::Invalid(format!(
                    "algorithm not allowed: {} (allowed: {})",
                    quoted(&header.alg),
                    names.join(", ")
                ))
            })?;
        Ok((algorithm, header.kid))
    }

    /// The claims of `token`, once the signature checks out with `key` for `algorithm` and
    /// `exp`, `nbf`, `iss` and `aud` pass.
    fn decode(
        &self,
        token: &str,
        algorithm: Algorithm,
        key: &Key,
    ) -> Result<Map<String, Value>, Rejection> {
        let mut validation = self.inner.validation.clone();
        // Exactly the header's algorithm: jsonwebtoken also refuses a key of another family.
        validation.algorithms = vec![algorithm];
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|error| Rejection::Invalid(self.describe(error.kind())))
    }

    /// Why jsonwebtoken refused a token, in words that quote nothing from it.
    fn describe(&self, kind: &ErrorKind) -> String {
        let settings = &self.inner.settings;
        match kind {
            ErrorKind::ExpiredSignature => "token expired (`exp` is past)".into(),
            ErrorKind::ImmatureSignature => "token not valid yet (`nbf` is ahead)".into(),
            ErrorKind::InvalidAudience => {
                format!(
                    "wrong audience: `aud` does not hold {:?}",
                    settings.audience
                )
            }
            ErrorKind::InvalidIssuer => format!("wrong issuer: `iss` is not {:?}", settings.issuer),
            ErrorKind::InvalidSignature => "bad signature".into(),
            ErrorKind::InvalidAlgorithm => "the algorithm does not fit the key".into(),
            ErrorKind::MissingRequiredClaim(claim) => format!("malformed token: no `{claim}`"),
            ErrorKind::InvalidClaimFormat(claim) => {
                format!("malformed token: `{claim}` has the wrong type")
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => "the JWKS key cannot check this algorithm".into(),
            _ => "malformed token".into(),
        }
    }
}

/// The caller a verified token describes.
fn identity(claims: &Map<String, Value>, issuer: &str) -> Result<Identity, Rejection> {
    // jsonwebtoken lets through an `iss` list that holds ours; RFC 7519 makes it one string.
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(Rejection::Invalid(format!(
            "wrong issuer: `iss` is not {issuer:?}"
        )));
    }
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => return Err(malformed("`sub` is not a non-empty string")),
    };
    let mut groups = Vec::new();
    for claim in ["groups", "roles"] {
        strings(&mut groups, claims, claim, false)?;
    }
    let mut scopes = Vec::new();
    for claim in ["scope", "scp"] {
        strings(&mut scopes, claims, claim, true)?;
    }
    Ok(Identity {
        subject,
        method: Method::Jwt,
        groups,
        scopes,
        via: None,
    })
}

/// Adds the strings of `claim` (one string, or a list of them) to `out`, without repeats. A
/// string is split at spaces when `split` (OAuth's `scope`, RFC 8693 §4.2). A claim of another
/// shape refuses the token rather than silently granting less than the issuer meant.
fn strings(
    out: &mut Vec<String>,
    claims: &Map<String, Value>,
    claim: &str,
    split: bool,
) -> Result<(), Rejection> {
    let mut add = |value: &str| {
        if !value.is_empty() && !out.iter().any(|v| v == value) {
            out.push(value.to_owned());
        }
    };
    match claims.get(claim) {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if split => text.split_whitespace().for_each(add),
        Some(Value::String(text)) => add(text),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).for_each(add)
        }
        Some(_) => {
            return Err(malformed(&format!(
                "`{claim}` is not a string or a list of strings"
            )));
        }
    }
    Ok(())
}

fn malformed(why: &str) -> Rejection {
    Rejection::Invalid(format!("malformed token: {why}"))
}

/// The JOSE name of an algorithm of [`ALLOWED`].
fn name(algorithm: Algorithm) -> &'static str {
    ALLOWED
        .iter()
        .find(|(_, a)| *a == algorithm)
        .map_or("?", |(name, _)| name)
}

/// A value from a token (its `alg`, its `kid`) fit for a message: short, escaped, quoted.
fn quoted(value: &str) -> String {
    let short: String = value.chars().take(64).collect();
    format!("{short:?}")
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
