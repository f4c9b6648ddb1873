//! The `[auth]` settings every service shares.

use std::{path::PathBuf, time::Duration};

use super::api_keys::ApiKeys;

use serde::{Deserialize, Serialize};

use super::jwt::JwtSettings;
use crate::Error;

/// Command-line/env/TOML form of [`AuthSettings`]; TOML section `[auth]`. The environment
/// variables are process-wide, so under `switchboard up` they apply to every service.
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthArgs {
    /// URL of the JSON Web Key Set that signs accepted bearer JWTs (turns JWT authentication
    /// on; needs --jwt-issuer and --jwt-audience).
    #[arg(long, env = "SWITCHBOARD_JWKS_URL", value_name = "URL")]
    pub jwks_url: Option<String>,
    /// The `iss` accepted JWTs must carry.
    #[arg(long, env = "SWITCHBOARD_JWT_ISSUER", value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` accepted JWTs must carry: this resource's identifier, e.g. its public URL.
    #[arg(long, env = "SWITCHBOARD_JWT_AUDIENCE", value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Signature algorithms accepted, comma-separated [default: RS256,ES256]. HS* and `none`
    /// are refused.
    #[arg(
        long,
        env = "SWITCHBOARD_JWT_ALGORITHMS",
        value_delimiter = ',',
        value_name = "ALGS"
    )]
    pub jwt_algorithms: Option<Vec<String>>,
    /// Seconds of clock skew allowed on `exp` and `nbf` [default: 30].
    #[arg(long, env = "SWITCHBOARD_JWT_LEEWAY_SECONDS", value_name = "SECONDS")]
    pub jwt_leeway_seconds: Option<u64>,
    /// A TOML file of named, hashed API keys (turns API-key authentication on); reread when
    /// it changes. `switchboard auth new-key NAME` makes an entry.
    #[arg(long, env = "SWITCHBOARD_API_KEYS", value_name = "FILE")]
    pub api_keys: Option<PathBuf>,
    /// Requests per second each caller may make, sustained (token bucket; 429 with
    /// Retry-After above it) [default: unlimited].
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PER_SECOND", value_name = "N")]
    pub rate_limit_per_second: Option<f64>,
    /// Requests a caller may make at once above its rate [default: 2 × the rate, at least 1].
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,
    /// Requests each caller may have in flight at once (429 above it) [default: unlimited].
    #[arg(long, env = "SWITCHBOARD_MAX_CONCURRENT_PER_CALLER", value_name = "N")]
    pub max_concurrent_per_caller: Option<usize>,
    /// Serve without authentication on an address other than loopback (otherwise refused).
    #[arg(
        long,
        env = "SWITCHBOARD_ALLOW_UNAUTHENTICATED",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub allow_unauthenticated: Option<bool>,
}

/// Validated authentication settings.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub jwt: Option<JwtSettings>,
    /// Loaded at validation, so a missing or malformed file stops the start.
    pub api_keys: Option<ApiKeys>,
    pub allow_unauthenticated: bool,
    /// Overload limits per caller.
    pub limits: super::limits::LimitSettings,
}

impl AuthSettings {
    /// Whether a bearer method is configured. Client certificates (`[http] client_ca`) are
    /// the other way in: see [`crate::HttpSettings::authenticates`].
    pub fn enabled(&self) -> bool {
        self.jwt.is_some() || self.api_keys.is_some()
    }

    /// API keys from `path` only.
    pub fn with_api_keys(path: &std::path::Path) -> Result<Self, Error> {
        Ok(Self {
            api_keys: Some(ApiKeys::load(path)?),
            ..Self::default()
        })
    }

    /// JWTs only.
    pub fn with_jwt(jwt: JwtSettings) -> Self {
        Self {
            jwt: Some(jwt),
            ..Self::default()
        }
    }
}

impl TryFrom<AuthArgs> for AuthSettings {
    type Error = Error;

    fn try_from(args: AuthArgs) -> Result<Self, Error> {
        let jwt = match (args.jwks_url, args.jwt_issuer, args.jwt_audience) {
            (None, None, None) => None,
            (Some(url), Some(issuer), Some(audience)) => {
                let jwks_url = url::Url::parse(&url).map_err(|e| {
                    Error::Config(format!(
                        "jwks_url (--jwks-url / SWITCHBOARD_JWKS_URL): '{url}' is not a URL: {e}"
                    ))
                })?;
                crate::client::check_url("jwks_url (--jwks-url / SWITCHBOARD_JWKS_URL)", &url)?;
                let names = args
                    .jwt_algorithms
                    .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
                let algorithms = JwtSettings::parse_algorithms(&names).map_err(|e| {
                    Error::Config(format!(
                        "jwt_algorithms (--jwt-algorithms / SWITCHBOARD_JWT_ALGORITHMS): {e}"
                    ))
                })?;
                Some(JwtSettings {
                    jwks_url,
                    issuer,
                    audience,
                    algorithms,
                    leeway: Duration::from_secs(args.jwt_leeway_seconds.unwrap_or(30)),
                })
            }
            _ => {
                return Err(Error::Config(
                    "jwks_url, jwt_issuer and jwt_audience (--jwks-url, --jwt-issuer, --jwt-audience) go together: set all three or none".into(),
                ));
            }
        };
        let rate = match (args.rate_limit_per_second, args.rate_limit_burst) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Error::Config(
                    "rate_limit_burst (--rate-limit-burst / SWITCHBOARD_RATE_LIMIT_BURST) needs rate_limit_per_second".into(),
                ));
            }
            (Some(rate), burst) => {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(Error::Config(format!(
                        "rate_limit_per_second (--rate-limit-per-second / SWITCHBOARD_RATE_LIMIT_PER_SECOND): {rate} is not a positive number"
                    )));
                }
                let burst = burst.unwrap_or_else(|| ((rate * 2.0).ceil() as u32).max(1));
                if burst == 0 {
                    return Err(Error::Config(
                        "rate_limit_burst (--rate-limit-burst / SWITCHBOARD_RATE_LIMIT_BURST): must be at least 1".into(),
                    ));
                }
                Some((rate, burst))
            }
        };
        if args.max_concurrent_per_caller == Some(0) {
            return Err(Error::Config(
                "max_concurrent_per_caller (--max-concurrent-per-caller / SWITCHBOARD_MAX_CONCURRENT_PER_CALLER): must be at least 1".into(),
            ));
        }
        Ok(Self {
            limits: super::limits::LimitSettings {
                rate,
                concurrent: args.max_concurrent_per_caller,
            },
            jwt,
            api_keys: args.api_keys.as_deref().map(ApiKeys::load).transpose()?,
            allow_unauthenticated: args.allow_unauthenticated.unwrap_or(false),
        })
    }
}
