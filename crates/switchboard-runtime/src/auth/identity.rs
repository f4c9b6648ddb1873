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
    /// A client certificate signed by the configured CA (mutual TLS).
    Certificate,
    /// Named by a caller allowed to act for its own users (the middleware for the person
    /// behind a chat); [`Identity::via`] says which.
    Delegated,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::Anonymous => "anonymous",
            Self::Delegated => "delegated",
            Self::Certificate => "certificate",
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
    /// For a delegated identity, the subject of the caller that vouched for it.
    pub via: Option<String>,
}

/// `_meta` key under which a delegate names the user it acts for:
/// `{"subject": "...", "groups": [...], "scopes": [...]}`.
pub const ON_BEHALF_OF: &str = "io.switchboard/on-behalf-of";

impl Identity {
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".into(),
            method: Method::Anonymous,
            groups: Vec::new(),
            scopes: Vec::new(),
            via: None,
        }
    }

    /// What a delegate sends as [`ON_BEHALF_OF`] for this identity.
    pub fn on_behalf_of(&self) -> serde_json::Value {
        serde_json::json!({
            "subject": self.subject,
            "groups": self.groups,
            "scopes": self.scopes,
        })
    }

    /// The user `value` (an [`ON_BEHALF_OF`] entry) names, vouched for by `delegate`.
    pub fn delegated(value: &serde_json::Value, delegate: &Identity) -> Result<Self, String> {
        let strings = |key: &str| -> Result<Vec<String>, String> {
            match value.get(key) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| format!("{ON_BEHALF_OF}.{key} must be a list of strings")),
                Some(_) => Err(format!("{ON_BEHALF_OF}.{key} must be a list of strings")),
            }
        };
        let subject = value
            .get("subject")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{ON_BEHALF_OF}.subject must be a non-empty string"))?;
        Ok(Self {
            subject: subject.to_owned(),
            method: Method::Delegated,
            groups: strings("groups")?,
            scopes: strings("scopes")?,
            via: Some(delegate.subject.clone()),
        })
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
