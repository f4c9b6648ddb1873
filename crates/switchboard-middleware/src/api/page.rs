//! The chat page: plain HTML and JavaScript compiled into the binary, no build step.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

const INDEX: &str = include_str!("../../static/index.html");
const SCRIPT: &str = include_str!("../../static/chat.js");
const MARKDOWN: &str = include_str!("../../static/markdown.js");

/// The page may load only its own scripts and talk only to its own origin; pictures may be its
/// own or `data:` URLs (tool images, which an `<img>` cannot run).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /`.
pub async fn index() -> Response {
    page(INDEX, "text/html; charset=utf-8")
}

/// `GET /chat.js`.
pub async fn script() -> Response {
    page(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /markdown.js`: the page's Markdown renderer.
pub async fn markdown() -> Response {
    page(MARKDOWN, "text/javascript; charset=utf-8")
}
