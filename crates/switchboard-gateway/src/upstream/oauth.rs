//! OAuth 2.0 client credentials for an upstream (RFC 6749 §4.4): the gateway fetches an access
//! token from the upstream's authorization server, sends it as `Authorization: Bearer` on every
//! request to that upstream (rmcp's path and the direct path alike), and fetches the next one
//! before the current one expires.
//!
//! - **When.** On first use, then again once 80 % of the token's `expires_in` has passed (at
//!   least 5 s before it ends), so a request never leaves with a token about to expire. A token
//!   without `expires_in` is refreshed after [`DEFAULT_LIFETIME`]. An upstream's 401 drops the
//!   token, so the next request fetches a new one (revoked, or the server's clock is ahead).
//! - **One fetch at a time.** Callers that find no valid token wait on one lock while one of
//!   them fetches; they then share its token. A failed fetch is not retried for
//!   [`RETRY_AFTER`]: calls fail at once with the reason instead of hammering a server that is
//!   down (the supervisor's reconnection tries again after that).
//! - **What is sent.** `grant_type=client_credentials`, `scope`, `audience` (Auth0, Okta) and
//!   `resource` (RFC 8707; the MCP authorization specification asks clients to name the MCP
//!   server they want a token for: the upstream's URL unless configured otherwise). The client
//!   authenticates with HTTP Basic (`client_secret_basic`, the default every server must
//!   support) or in the form (`client_secret_post`).
//! - **Never shown.** The secret and the tokens are marked sensitive; errors name the token URL
//!   and the server's `error`/`error_description`, never a credential.
//!
//! The token request goes through the gateway's shared HTTP client (its proxy and CA settings),
//! not the upstream's own client: the upstream's static headers are for the upstream, not for
//! its authorization server.

use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::OAuthSettings;

/// Refresh interval of a token whose answer has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// After a failed fetch, how long calls fail at once with its reason.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// Longest wait for the token endpoint.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The access tokens of one upstream.
pub struct TokenSource {
    settings: OAuthSettings,
    http: reqwest::Client,
    state: Mutex<State>,
}

#[derive(Default)]
enum State {
    #[default]
    Empty,
    Valid {
        header: HeaderValue,
        refresh_at: Instant,
    },
    Failed {
        reason: String,
        until: Instant,
    },
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    expires_in: Option<f64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    error_description: Option<String>,
}

impl TokenSource {
    pub fn new(settings: OAuthSettings, http: reqwest::Client) -> Self {
        Self {
            settings,
            http,
            state: Mutex::new(State::Empty),
        }
    }

    /// `Bearer <token>` for the next request, fetching a token first when there is no valid
    /// one; the error says why there is none.
    pub async fn header(&self) -> Result<HeaderValue, String> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        match &*state {
            State::Valid { header, refresh_at } if now < *refresh_at => return Ok(header.clone()),
            State::Failed { reason, until } if now < *until => return Err(reason.clone()),
            _ => {}
        }
        match self.fetch().await {
            Ok((header, lifetime)) => {
                *state = State::Valid {
                    header: header.clone(),
                    refresh_at: Instant::now() + refresh_after(lifetime),
                };
                Ok(header)
            }
            Err(reason) => {
                let reason = format!(
                    "no OAuth access token from {}: {reason}",
                    self.settings.token_url
                );
                tracing::warn!(error = %reason, "upstream token");
                *state = State::Failed {
                    reason: reason.clone(),
                    until: Instant::now() + RETRY_AFTER,
                };
                Err(reason)
            }
        }
    }

    /// The token without `Bearer `, as rmcp's transport wants it.
    pub async fn token(&self) -> Result<String, String> {
        let header = self.header().await?;
        let text = header.to_str().map_err(|e| e.to_string())?;
        Ok(text.strip_prefix("Bearer ").unwrap_or(text).to_owned())
    }

    /// The upstream refused the token (401): fetch a new one next time.
    pub async fn refused(&self) {
        let mut state = self.state.lock().await;
        if matches!(*state, State::Valid { .. }) {
            tracing::info!(token_url = %self.settings.token_url, "the upstream refused its access token; fetching a new one");
            *state = State::Empty;
        }
    }

    async fn fetch(&self) -> Result<(HeaderValue, Duration), String> {
        let s = &self.settings;
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &s.scope {
            form.push(("scope", scope));
        }
        if let Some(audience) = &s.audience {
            form.push(("audience", audience));
        }
        if let Some(resource) = &s.resource {
            form.push(("resource", resource));
        }
        let mut request = self
            .http
            .post(&s.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(FETCH_TIMEOUT);
        if s.client_secret_post {
            form.push(("client_id", &s.client_id));
            form.push(("client_secret", s.client_secret.expose()));
        } else {
            // RFC 6749 §2.3.1: both form-urlencoded before they are joined.
            let encode =
                |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            request =
                request.basic_auth(encode(&s.client_id), Some(encode(s.client_secret.expose())));
        }
        // reqwest's `form` feature would add serde_urlencoded for this one body.
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish();
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| switchboard_runtime::client::chain(&e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| switchboard_runtime::client::chain(&e))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorAnswer>(&body) {
                Ok(e) => format!(
                    "HTTP {status}: {}{}",
                    e.error,
                    e.error_description
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                Err(_) => format!("HTTP {status}"),
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| format!("not a token answer (access_token, token_type): {e}"))?;
        if !answer.token_type.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "token_type is {:?}; only Bearer tokens can be sent",
                answer.token_type
            ));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| "the access token has characters not allowed in a header".to_owned())?;
        header.set_sensitive(true);
        let lifetime = answer
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_LIFETIME);
        Ok((header, lifetime))
    }
}

/// When to fetch the next token: after 80 % of its lifetime, and at least 5 s before it ends
/// when it lasts longer than that.
fn refresh_after(lifetime: Duration) -> Duration {
    let early = lifetime.mul_f64(0.8);
    match lifetime.checked_sub(Duration::from_secs(5)) {
        Some(margin) if !margin.is_zero() => early.min(margin),
        _ => early,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(20)),
            Duration::from_secs(15)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(4)),
            Duration::from_millis(3200)
        );
    }
}
