//! Errors: the runtime's own [`Error`] and the REST error body [`ApiError`].
//!
//! Every REST error of every service is `{"error": {"code": "...", "message": "..."}}` with the
//! right HTTP status. Handlers return [`ApiError`]; responses that axum produces by itself
//! (unknown route, wrong method, body too large, malformed JSON) are rewritten into the same
//! shape by [`json_errors`]. 5xx bodies never carry internal details: the cause is logged.

use axum::{
    Json,
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

/// Errors of the runtime itself (serving, configuration, telemetry set-up).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is wrong; the message names the setting and the accepted form.
    #[error("{0}")]
    Config(String),
    /// The HTTP server failed while serving.
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// Logging could not be set up (for example, a subscriber was already installed).
    #[error("telemetry set-up failed: {0}")]
    Telemetry(String),
}

/// The JSON body of every REST error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `code` is a stable machine-readable word (`bad_request`, `not_found`, ...); `message` is for
/// people.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// A REST error: status, stable code and a human message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "bad_gateway", message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }
    /// An internal error: the cause is logged here, the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error; the cause is in the service log",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// The stable code for an HTTP status, used when axum produced the error itself.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::BAD_GATEWAY => "bad_gateway",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Largest plain-text error body that is carried over into the JSON message.
const MAX_CARRIED_MESSAGE: usize = 4096;

/// Middleware: give every error response that is not JSON already the [`ErrorBody`] shape.
///
/// axum's extractors reject bad input with plain-text bodies (for example "Failed to
/// deserialize the JSON body into the target type: missing field `code`"); this keeps their
/// text as the message for 4xx, and hides it for 5xx.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_CARRIED_MESSAGE).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if status.is_server_error() {
        if !text.is_empty() {
            tracing::error!(%status, body = %text, "server error response");
        }
        status
            .canonical_reason()
            .unwrap_or("server error")
            .to_owned()
    } else if text.is_empty() {
        match status {
            StatusCode::NOT_FOUND => format!("no route for {}", parts_path(&parts)),
            StatusCode::METHOD_NOT_ALLOWED => {
                format!("method not allowed on {}", parts_path(&parts))
            }
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        }
    } else {
        text
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: code_for(status).to_owned(),
            message,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// The request path, remembered by [`remember_path`] for error messages.
fn parts_path(parts: &http::response::Parts) -> String {
    parts
        .extensions
        .get::<RequestPath>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| "this path".to_owned())
}

#[derive(Clone)]
struct RequestPath(String);

/// Middleware: copy the request path into the response extensions, for [`json_errors`].
pub async fn remember_path(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    response.extensions_mut().insert(RequestPath(path));
    response
}
