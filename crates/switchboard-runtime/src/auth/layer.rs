//! The authentication middleware and the Protected Resource Metadata document (RFC 9728)
//! that tells an MCP client where to get a token.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    Authenticator, Identity, Method, Rejection,
    limits::{Limiter, Overloaded},
};
use crate::{
    ApiError,
    audit::{Audit, Record},
    tls::Peer,
};

/// Where the metadata lives (RFC 9728 §3); also under `/mcp` appended, the path-specific form
/// MCP clients try first.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// What the middleware needs: how to check, where to record refusals, and whose.
#[derive(Clone)]
pub struct Gate {
    pub auth: Authenticator,
    pub audit: Audit,
    pub limiter: Limiter,
    pub service: &'static str,
}

/// Middleware: put the caller's [`super::Identity`] in the request's extensions, or answer 401
/// (no or a bad credential, with `WWW-Authenticate` pointing at the metadata) or 503 (the
/// JWKS cannot be reached and nothing is cached). Each refusal is an audit record.
pub async fn authenticate(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    // A verified client certificate identifies the caller unless it also sends a bearer
    // credential (which then decides).
    let certificate = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .and_then(|peer| peer.0.certificate.clone())
        .filter(|_| gate.auth.enabled() && !request.headers().contains_key(header::AUTHORIZATION));
    let checked = match certificate {
        Some(identity) => Ok(identity),
        None => gate.auth.authenticate(request.headers()).await,
    };
    match checked {
        Ok(identity) => {
            // The caller's key is only worth building when a limit is set: this runs on
            // every request.
            let admitted = if gate.limiter.enabled() {
                let key = match identity.method {
                    Method::Anonymous => source(&request),
                    _ => identity.subject.clone(),
                };
                match gate.limiter.admit(&key) {
                    Ok(admitted) => Some(admitted),
                    Err(over) => return overloaded(&gate, &request, &identity, &over),
                }
            } else {
                None
            };
            request.extensions_mut().insert(identity);
            let response = next.run(request).await;
            drop(admitted);
            response
        }
        Err(rejection) => {
            let source = source(&request);
            tracing::warn!(
                target: "audit",
                action = "authenticate",
                outcome = "denied",
                source,
                path = request.uri().path(),
                reason = %rejection,
                "request refused"
            );
            // Best effort: a refusal is refused whatever the log says.
            let _ = gate.audit.record(
                Record::new(
                    gate.service,
                    "authenticate",
                    &Identity::anonymous(),
                    "refused",
                )
                .with_source(source)
                .with_target(request.uri().path())
                .with_detail(rejection.to_string()),
            );
            rejected(&request, &rejection)
        }
    }
}

/// The caller's address, as the listener saw it.
fn source(request: &Request) -> String {
    let extensions = request.extensions();
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<ConnectInfo<Peer>>().map(|c| c.0.addr))
        .map(|addr| addr.to_string())
        .unwrap_or_default()
}

/// 429 with `Retry-After` (whole seconds, rounded up), and its audit record.
fn overloaded(gate: &Gate, request: &Request, identity: &Identity, over: &Overloaded) -> Response {
    let _ = gate.audit.record(
        Record::new(gate.service, "overload", identity, "refused")
            .with_source(source(request))
            .with_target(request.uri().path())
            .with_detail(over.why.clone()),
    );
    let seconds = over.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!("{}; retry after {seconds} s", over.why),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn rejected(request: &Request, rejection: &Rejection) -> Response {
    if let Rejection::Unavailable(_) = rejection {
        return ApiError::unavailable(rejection.to_string()).into_response();
    }
    let mut response = ApiError::unauthorized(rejection.to_string()).into_response();
    let mut challenge = format!(
        "Bearer resource_metadata=\"{}{METADATA_PATH}\"",
        base_url(request)
    );
    if let Rejection::Invalid(_) = rejection {
        challenge.push_str(", error=\"invalid_token\"");
    }
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// `scheme://host` the client used, from `X-Forwarded-Proto` (a TLS-terminating proxy) and
/// `Host`.
fn base_url(request: &Request) -> String {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['"', '/', ' ']))
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`: this resource and who issues tokens
/// for it.
pub async fn protected_resource_metadata(
    State(auth): State<Authenticator>,
    request: Request,
) -> Response {
    if !auth.enabled() {
        return ApiError::not_found("authentication is off on this service").into_response();
    }
    let resource = auth
        .audience()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}/mcp", base_url(&request)));
    let servers: Vec<&str> = auth.issuer().into_iter().collect();
    (
        StatusCode::OK,
        Json(serde_json::json!({
            "resource": resource,
            "authorization_servers": servers,
            "bearer_methods_supported": ["header"],
        })),
    )
        .into_response()
}
