//! The REST face of code-interpreter sessions:
//!
//! - `POST /sessions` (body optional) → 201 and the session; `GET /sessions` → the caller's;
//!   `GET /sessions/{id}`; `DELETE /sessions/{id}`.
//! - `PUT /sessions/{id}/files/{*name}` with the bytes as body → 201; `GET /sessions/{id}/files`
//!   → the listing; `GET /sessions/{id}/files/{*name}` → the bytes.
//!
//! Programs run in a session through `POST /execute` with `session_id`. Every route answers
//! only the session's owner ([`crate::owner`]); another caller's session is a 404 like one
//! that never existed. Uploads are bounded by `max_file_bytes` and the body limit.

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use switchboard_protocol::sandbox::{ClosedSession, CreateSessionRequest};
use switchboard_runtime::{ApiError, auth::Identity};

use crate::{Sandbox, owner};

type Caller = Option<Extension<Identity>>;

/// The session routes, with their state.
pub(crate) fn routes(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/sessions", get(list).post(create))
        .route("/sessions/{id}", get(describe).delete(close))
        .route("/sessions/{id}/files", get(files))
        .route("/sessions/{id}/files/{*name}", put(upload).get(download))
        .with_state(sandbox)
}

fn owner_of(caller: &Caller, headers: &HeaderMap) -> String {
    owner::of_request(caller.as_ref().map(|c| &c.0), headers)
}

async fn create(
    State(sandbox): State<Sandbox>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // An empty body is the same as `{}`.
    let request: CreateSessionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateSessionRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let info = sandbox
        .sessions()
        .create(&owner_of(&caller, &headers), &request)
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list(
    State(sandbox): State<Sandbox>,
    caller: Caller,
    headers: HeaderMap,
) -> impl IntoResponse {
    let sessions = sandbox.sessions().list(&owner_of(&caller, &headers));
    Json(serde_json::json!({ "sessions": sessions }))
}

async fn describe(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let info = sandbox
        .sessions()
        .get(&owner_of(&caller, &headers), &id)
        .await?;
    Ok(Json(info))
}

async fn close(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let closed = sandbox
        .sessions()
        .close(&owner_of(&caller, &headers), &id)
        .await?;
    Ok(Json(closed_session(id, closed)))
}

/// The answer to a close, on both faces.
pub(crate) fn closed_session(session_id: String, closed: bool) -> ClosedSession {
    let message = if closed {
        format!("Session {session_id} is closed; its interpreter and files are gone.")
    } else {
        format!("Session {session_id} had already ended.")
    };
    ClosedSession {
        session_id,
        closed,
        message,
    }
}

async fn files(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let listing = sandbox
        .sessions()
        .files(&owner_of(&caller, &headers), &id)
        .await?;
    Ok(Json(listing))
}

async fn upload(
    State(sandbox): State<Sandbox>,
    Path((id, name)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let file = sandbox
        .sessions()
        .put(&owner_of(&caller, &headers), &id, &name, &body)
        .await?;
    Ok((StatusCode::CREATED, Json(file)))
}

async fn download(
    State(sandbox): State<Sandbox>,
    Path((id, name)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (bytes, mime) = sandbox
        .sessions()
        .read(&owner_of(&caller, &headers), &id, &name)
        .await?;
    // Always a download, never rendered by a browser as a page of ours.
    let base = name.rsplit('/').next().unwrap_or("file");
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        base.replace(['"', '\\'], "_")
    ))
    .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response())
}
