//! The kinds of request a worker sends. Each worker owns one [`Operation`] value, so state
//! such as an MCP session or an HTTP connection is never shared between workers.

pub mod http;
pub mod mcp;
pub mod process;
pub mod raw_mcp;

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use futures::future::try_join_all;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

use crate::{Error, args::McpArgs};

/// One kind of request, sent again and again by one worker.
pub trait Operation: Send + 'static {
    /// Send one request and wait for its complete answer. `Err` carries a short description
    /// of what went wrong (transport failure, error status, tool error, unexpected content).
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Check an answer against `--expect`.
pub(crate) fn check_expected(expect: Option<&str>, answer: &str) -> Result<(), String> {
    match expect {
        Some(needle) if !answer.contains(needle) => Err(format!(
            "answer does not contain {needle:?}: {}",
            shorten(answer)
        )),
        _ => Ok(()),
    }
}

/// `--arguments`, which must be a JSON object (checked once, before any session opens).
pub(crate) fn tool_arguments(args: &McpArgs) -> Result<Map<String, Value>, Error> {
    serde_json::from_str(&args.arguments).map_err(|e| {
        Error::usage(format!(
            "--arguments {}: expected a JSON object: {e}",
            args.arguments
        ))
    })
}

/// The workers' sessions: one for all (`shared`) or one each, opened concurrently by
/// `open(worker)`.
pub(crate) async fn sessions<S, Fut>(
    shared: bool,
    concurrency: usize,
    open: impl Fn(usize) -> Fut,
) -> Result<Vec<Arc<S>>, Error>
where
    Fut: Future<Output = Result<S, Error>>,
{
    if shared {
        let session = Arc::new(open(0).await?);
        return Ok(vec![session; concurrency]);
    }
    let opened = try_join_all((0..concurrency).map(open)).await?;
    Ok(opened.into_iter().map(Arc::new).collect())
}

/// Send a POST and read its whole answer: the headers and body of a success, else what went
/// wrong (the request failed, the answer could not be read, or its status and body).
pub(crate) async fn post(request: reqwest::RequestBuilder) -> Result<(HeaderMap, Bytes), String> {
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("POST failed: {e}"))?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            shorten(&String::from_utf8_lossy(&body))
        ));
    }
    Ok((headers, body))
}

/// At most 300 characters of `text`, for error messages.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_is_a_substring_check() {
        assert!(check_expected(None, "anything").is_ok());
        assert!(check_expected(Some("hello"), "{\"stdout\":\"hello\\n\"}").is_ok());
        let error = check_expected(Some("hello"), "bye").unwrap_err();
        assert!(
            error.contains("\"hello\"") && error.contains("bye"),
            "{error}"
        );
    }

    #[test]
    fn long_answers_are_shortened_on_a_char_boundary() {
        let long = "é".repeat(400);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), 301);
        assert!(short.ends_with('…'));
    }
}
