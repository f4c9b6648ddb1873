//! The REST API: `POST /execute`, `POST /packages`, `GET /packages`, `GET /packages/pending`,
//! `POST /packages/pending/{id}/approve` and `/reject` (admin token). Executions, package
//! requests and decisions are audit records (`[audit]`), with the caller's identity.

use axum::{
    Extension, Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::json;
use switchboard_protocol::sandbox::{
    ExecuteRequest, ExecutionResult, InstallRequest, InstallStatus,
};
use switchboard_runtime::{ApiError, audit::Record, auth::Identity};

use crate::{Sandbox, error::ExecuteError, packages::AdminError};

/// The REST routes, with their state.
pub fn routes(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/execute", post(execute))
        .route("/packages", post(install).get(installed))
        .route("/packages/pending", get(pending))
        .route("/packages/pending/{id}/approve", post(approve))
        .route("/packages/pending/{id}/reject", post(reject))
        .with_state(sandbox.clone())
        .merge(crate::session_api::routes(sandbox))
}

impl From<ExecuteError> for ApiError {
    fn from(error: ExecuteError) -> Self {
        match error {
            ExecuteError::BadRequest(m) => ApiError::bad_request(m),
            ExecuteError::NoSession(m) | ExecuteError::NotFound(m) => ApiError::not_found(m),
            ExecuteError::SessionEnded(m) => ApiError::new(StatusCode::GONE, "gone", m),
            ExecuteError::TooMany(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many", m),
            ExecuteError::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m)
            }
            ExecuteError::Busy(m) | ExecuteError::Unavailable(m) => ApiError::unavailable(m),
            ExecuteError::Lost(m) => {
                ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "lost", m)
            }
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

type Caller = Option<Extension<Identity>>;

/// The audit record of `action` by `caller` on `target` (the program's digest, a package).
fn record(caller: &Caller, action: &'static str, outcome: &'static str) -> Record {
    let nobody = Identity::anonymous();
    Record::new(
        crate::SERVICE,
        action,
        caller.as_ref().map_or(&nobody, |c| &c.0),
        outcome,
    )
    .with_trace_id_of_current_span()
}

/// Run a program. 200 with the result whether or not the program succeeded.
async fn execute(
    State(sandbox): State<Sandbox>,
    caller: Caller,
    headers: HeaderMap,
    Json(request): Json<ExecuteRequest>,
) -> Result<Json<ExecutionResult>, ApiError> {
    let started = std::time::Instant::now();
    let audit = sandbox.audit();
    if let Err(unavailable) = audit.available() {
        let _ = audit.record(
            record(&caller, "execute", "refused")
                .with_arguments(&request.code)
                .with_detail(unavailable.to_string()),
        );
        return Err(ApiError::unavailable(unavailable.to_string()));
    }
    // Hashed before the program moves into the run, and only when there is a log: this is
    // every execution's path.
    let code_digest = audit
        .enabled()
        .then(|| switchboard_runtime::audit::digest(&request.code));
    let owner = crate::owner::of_request(caller.as_ref().map(|c| &c.0), &headers);
    let result = sandbox.execute(request, &owner).await;
    if let Some(code_digest) = code_digest {
        let mut entry = record(&caller, "execute", "ok").with_duration(started.elapsed());
        entry.arguments_sha256 = Some(code_digest);
        match &result {
            Ok(done) if done.success => {}
            Ok(done) => {
                entry = entry.with_detail(match (done.exit_code, &done.signal) {
                    _ if done.timed_out => "timed out".to_owned(),
                    _ if done.memory_exceeded => "memory limit".to_owned(),
                    (Some(code), _) => format!("exit {code}"),
                    (None, Some(signal)) => format!("killed by {signal}"),
                    (None, None) => "failed".to_owned(),
                });
                entry.outcome = "error";
            }
            Err(error) => {
                entry = entry.with_detail(error.to_string());
                entry.outcome = "error";
            }
        }
        let _ = audit.record(entry);
    }
    Ok(Json(result?))
}

/// Ask for a package. 200 with the decision; 202 when it is held for approval.
async fn install(
    State(sandbox): State<Sandbox>,
    caller: Caller,
    Json(request): Json<InstallRequest>,
) -> impl IntoResponse {
    let outcome = sandbox.install(&request).await;
    let mut entry = record(&caller, "package_request", "ok").with_target(match &request.version {
        Some(version) => format!("{}=={version}", request.package),
        None => request.package.clone(),
    });
    entry.outcome = match outcome.status {
        InstallStatus::Installed => "ok",
        InstallStatus::PendingApproval => "pending",
        InstallStatus::Rejected => "denied",
        InstallStatus::Failed => "error",
    };
    if let Some(reason) = &outcome.reason {
        entry = entry.with_detail(reason.clone());
    }
    let _ = sandbox.audit().record(entry);
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

/// The admin token: `X-Admin-Token`, or the bearer token of `Authorization` (which, with
/// authentication on, carries the caller's own credential instead).
fn admin_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers.get(ADMIN_TOKEN).and_then(|v| v.to_str().ok()) {
        return Some(token.trim());
    }
    bearer(headers)
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

const ADMIN_TOKEN: &str = "x-admin-token";

/// An approval or a rejection, and its audit record.
fn decided<T>(
    sandbox: &Sandbox,
    caller: &Caller,
    action: &'static str,
    id: &str,
    result: Result<T, AdminError>,
) -> Result<Json<T>, ApiError>
where
    T: serde::Serialize,
{
    let mut entry = record(caller, action, "ok").with_target(id.to_owned());
    if let Err(error) = &result {
        entry.outcome = "denied";
        entry = entry.with_detail(error.to_string());
    }
    let _ = sandbox.audit().record(entry);
    Ok(Json(result?))
}

async fn approve(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let result = sandbox.approve(&id, admin_token(&headers)).await;
    decided(&sandbox, &caller, "approval", &id, result)
}

async fn reject(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let result = sandbox.reject(&id, admin_token(&headers));
    decided(&sandbox, &caller, "rejection", &id, result)
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
