//! Who made a request, as every authentication method reports it.

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A bearer JWT checked against the configured JWKS.
    Jwt,
    /// A named API key from the keys file.
    ApiKey,
    /// Nobody: authentication is off (loopback, or `--allow-unauthenticated`).
    Anonymous,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::Anonymous => "anonymous",
        }
    }
}

/// The caller of a request, put in the request's extensions by the authentication layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// A stable name: the JWT's `sub`, or the API key's name. `anonymous` when off.
    pub subject: String,
    pub method: Method,
    /// Groups and roles the caller belongs to: the JWT's `groups` and `roles` claims (strings
    /// or lists), an API key's `groups`.
    pub groups: Vec<String>,
    /// OAuth scopes: the JWT's `scope` (space-separated) or `scp` (list) claim.
    pub scopes: Vec<String>,
}

impl Identity {
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".into(),
            method: Method::Anonymous,
            groups: Vec::new(),
            scopes: Vec::new(),
        }
    }
}

/// Why a request was not let in. The message is for logs and the 401 body; it never holds the
/// token or key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No credential at all.
    #[error("no credential: send Authorization: Bearer <token or API key>")]
    Missing,
    /// A credential that does not check out (bad signature, expired, unknown key...).
    #[error("invalid credential: {0}")]
    Invalid(String),
    /// The credential is fine but cannot be checked right now (JWKS unreachable).
    #[error("cannot check the credential now: {0}")]
    Unavailable(String),
}
