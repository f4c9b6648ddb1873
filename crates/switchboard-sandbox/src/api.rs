//! The REST API: `POST /execute`, `POST /packages`, `GET /packages`, `GET /packages/pending`,
//! `POST /packages/pending/{id}/approve` and `/reject` (admin token).

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::json;
use switchboard_protocol::sandbox::{
    ExecuteRequest, ExecutionResult, InstallRequest, InstallStatus,
};
use switchboard_runtime::ApiError;

use crate::{Sandbox, error::ExecuteError, packages::AdminError};

/// The REST routes, with their state.
pub fn routes(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/execute", post(execute))
        .route("/packages", post(install).get(installed))
        .route("/packages/pending", get(pending))
        .route("/packages/pending/{id}/approve", post(approve))
        .route("/packages/pending/{id}/reject", post(reject))
        .with_state(sandbox)
}

impl From<ExecuteError> for ApiError {
    fn from(error: ExecuteError) -> Self {
        match error {
            ExecuteError::BadRequest(m) => ApiError::bad_request(m),
            ExecuteError::Busy(m) | ExecuteError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        let message = error.to_string();
        match error {
            AdminError::NotConfigured => ApiError::forbidden(message),
            AdminError::Unauthorized => ApiError::unauthorized(message),
            AdminError::NotFound(_) => ApiError::not_found(message),
        }
    }
}

/// Run a program. 200 with the result whether or not the program succeeded.
async fn execute(
    State(sandbox): State<Sandbox>,
    Json(request): Json<ExecuteRequest>,
) -> Result<Json<ExecutionResult>, ApiError> {
    Ok(Json(sandbox.execute(request).await?))
}

/// Ask for a package. 200 with the decision; 202 when it is held for approval.
async fn install(
    State(sandbox): State<Sandbox>,
    Json(request): Json<InstallRequest>,
) -> impl IntoResponse {
    let outcome = sandbox.install(&request).await;
    let status = if outcome.status == InstallStatus::PendingApproval {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (status, Json(outcome))
}

async fn installed(State(sandbox): State<Sandbox>) -> impl IntoResponse {
    Json(json!({ "packages": sandbox.installed() }))
}

async fn pending(State(sandbox): State<Sandbox>) -> impl IntoResponse {
    Json(json!({ "pending": sandbox.pending() }))
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn approve(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.approve(&id, bearer(&headers)).await?))
}

async fn reject(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(sandbox.reject(&id, bearer(&headers))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            "bearer  xyz ".parse().expect("header"),
        );
        assert_eq!(bearer(&headers), Some("xyz"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(bearer(&headers), None);
    }
}
