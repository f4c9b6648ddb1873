//! Who is calling: bearer JWTs checked against a JWKS, and named API keys, on every service's
//! API. The probes (`/health`, `/ready`, `/metrics`) and the Protected Resource Metadata
//! (RFC 9728) stay open.
//!
//! Settings are shared by every service (TOML section `[auth]`, flags and `SWITCHBOARD_*`
//! variables), like `[http]`. With neither a JWKS nor a keys file, authentication is off and
//! every caller is [`Identity::anonymous`]: fine on loopback (`switchboard up`), refused on any
//! other address unless `--allow-unauthenticated` says so ([`crate::HttpSettings::check_exposure`]).

pub mod api_keys;
mod identity;
pub mod jwt;
pub mod layer;
pub mod limits;
mod secret;
mod settings;

pub use identity::{Identity, Method, ON_BEHALF_OF, Rejection};
pub use layer::{authenticate, protected_resource_metadata};
pub use secret::Secret;
pub use settings::{AuthArgs, AuthSettings};

use std::sync::Arc;

use http::HeaderMap;

/// Checks a request's credential with whatever the settings configured. Cheap to clone.
#[derive(Clone, Default)]
pub struct Authenticator {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    jwt: Option<jwt::JwtVerifier>,
    keys: Option<api_keys::ApiKeys>,
    /// For the Protected Resource Metadata.
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Authenticator {
    /// Every caller is anonymous.
    pub fn off() -> Self {
        Self::default()
    }

    /// The authenticator `settings` describe, plus client certificates when `certificates`;
    /// `client` fetches the JWKS (needed only with one configured).
    pub fn new(
        settings: &AuthSettings,
        certificates: bool,
        client: Option<reqwest::Client>,
    ) -> Self {
        if !(settings.enabled() || certificates) {
            return Self::off();
        }
        let jwt = settings
            .jwt
            .clone()
            .map(|jwt| jwt::JwtVerifier::new(jwt, client.unwrap_or_default()));
        Self {
            inner: Some(Arc::new(Inner {
                jwt,
                keys: settings.api_keys.clone(),
                issuer: settings.jwt.as_ref().map(|j| j.issuer.clone()),
                audience: settings.jwt.as_ref().map(|j| j.audience.clone()),
            })),
        }
    }

    /// The authenticator of a service whose shared settings are `http`: JWKS fetched with the
    /// service's client stack (its CA file, proxies).
    /// No client is built without a JWKS to fetch: building one loads the platform's roots.
    pub fn from_http(http: &crate::HttpSettings) -> Self {
        let client = http.auth.jwt.is_some().then(|| {
            crate::client::ClientOptions::from_http(http)
                .build()
                .unwrap_or_else(|error| {
                    // Validated at start; if the CA file went away since, JWKS fetches fail
                    // and every JWT is refused (503): closed, not open.
                    tracing::error!(%error, "cannot set up the client that fetches the JWKS");
                    reqwest::Client::new()
                })
        });
        Self::new(&http.auth, http.client_certificates(), client)
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Who sent `headers`: the bearer credential checked as a JWT (three dot-separated parts)
    /// when a JWKS is configured, otherwise as an API key.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Rejection> {
        let Some(inner) = &self.inner else {
            return Ok(Identity::anonymous());
        };
        let token = bearer(headers)?;
        match (&inner.jwt, &inner.keys) {
            (Some(jwt), _) if token.split('.').count() == 3 => jwt.verify(token).await,
            (_, Some(keys)) => keys.check(token),
            (Some(jwt), None) => jwt.verify(token).await,
            (None, None) => Err(Rejection::Invalid("no method configured".into())),
        }
    }

    pub(crate) fn issuer(&self) -> Option<&str> {
        self.inner.as_ref().and_then(|i| i.issuer.as_deref())
    }

    pub(crate) fn audience(&self) -> Option<&str> {
        self.inner.as_ref().and_then(|i| i.audience.as_deref())
    }
}

/// The credential of `Authorization: Bearer <credential>` (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(Rejection::Missing);
    };
    let value = value
        .to_str()
        .map_err(|_| Rejection::Invalid("the Authorization header is not ASCII".into()))?;
    match value.split_once(' ') {
        Some((scheme, credential))
            if scheme.eq_ignore_ascii_case("bearer") && !credential.trim().is_empty() =>
        {
            Ok(credential.trim())
        }
        _ => Err(Rejection::Invalid(
            "the Authorization header is not `Bearer <credential>`".into(),
        )),
    }
}
