//! MCP `tools/list` or `tools/call` as raw JSON-RPC (`--raw`): over a 2025-11-25 session the
//! load generator opens itself (`initialize`, `notifications/initialized`), or as 2026-07-28
//! stateless requests (`server/discover` once, then each request with its lifecycle `_meta`
//! and `Mcp-Method`/`Mcp-Name` headers, as rmcp's client sends them). It POSTs each request and
//! reads the answer only as far as to know it is a result for that request (the JSON-RPC
//! envelope, a tool's `isError`, `--expect`).
//!
//! Why: the load generator runs on the same cores as the server it measures. rmcp's client
//! decodes every answer into its types; for the sandbox's 14 KB tool list that cost ~160 µs
//! of the load generator's CPU per list against ~50 µs of the server's (`/proc` CPU time, c=32,
//! one shared session), so a run measured the client's decoding more than the server. The
//! typed client stays the default: it is what a real client does. The two revisions cost the
//! raw client the same but for the bytes of `_meta`, so a comparison of the two measures the
//! servers; rmcp's client spends ~9 µs more of CPU on a 2026-07-28 call than on a session call
//! (`/proc` CPU time at c=32 through the gateway, 62 → 71 µs), which on two shared cores lowers
//! the server's measured rate by itself.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};

use super::{Operation, check_expected, post, sessions, shorten, tool_arguments};
use crate::{
    Error,
    args::{McpArgs, Protocol},
};

/// The lifecycle a 2026-07-28 request carries in its `_meta` (rmcp's client sends the same
/// three keys, and a progress token, which the 2025-11-25 requests here do not carry either).
const LIFECYCLE_2026: &str = concat!(
    r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","#,
    r#""io.modelcontextprotocol/clientInfo":{"name":"switchboard-loadgen","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""},"io.modelcontextprotocol/clientCapabilities":{}}"#
);

/// One session's HTTP client and headers; workers of a shared session hold the same one.
struct Session {
    http: reqwest::Client,
    url: String,
    /// Content type, accept, protocol version, the session id (if the server gave one) and
    /// the credential.
    headers: HeaderMap,
    /// Request ids, unique within the session.
    next_id: AtomicU64,
}

/// One worker's session (its own, or a handle on the shared one) and the request it repeats.
pub struct RawMcpCall {
    session: Arc<Session>,
    /// The request after its id: method and params, as JSON text (`"method":…`).
    request: Arc<str>,
    /// `tools/call` (its result is a tool's); else `tools/list`.
    is_call: bool,
    expect: Option<String>,
}

/// What is read of an answer: its id and whether it is a result.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// What is read of a tool call's result.
#[derive(Deserialize)]
struct CallResult {
    #[serde(default, rename = "isError")]
    is_error: Option<bool>,
}

/// Open the sessions (one per worker, concurrently; or one for all).
pub async fn connect_all(args: &McpArgs, concurrency: usize) -> Result<Vec<RawMcpCall>, Error> {
    let modern = args.protocol == Protocol::V2026_07_28;
    let params = match &args.tool {
        None => modern.then(|| format!("{{{LIFECYCLE_2026}}}")),
        Some(tool) => {
            let arguments = tool_arguments(args)?;
            let params = json!({"name": tool, "arguments": arguments}).to_string();
            Some(match modern {
                // `{"name":…}` becomes `{"_meta":{…},"name":…}`.
                true => format!("{{{LIFECYCLE_2026},{}", &params[1..]),
                false => params,
            })
        }
    };
    let method = if args.tool.is_some() {
        "tools/call"
    } else {
        "tools/list"
    };
    let request: Arc<str> = match params {
        Some(params) => format!(r#""method":"{method}","params":{params}}}"#),
        None => format!(r#""method":"{method}"}}"#),
    }
    .into();
    let opened = sessions(args.shared_session, concurrency, |worker| {
        open(args, worker)
    })
    .await?;
    Ok(opened
        .into_iter()
        .map(|session| RawMcpCall {
            session,
            request: request.clone(),
            is_call: args.tool.is_some(),
            expect: args.load.expect.clone(),
        })
        .collect())
}

/// Everything a request of the run carries but its body: content type, accept, the
/// credential and the protocol version; for 2026-07-28 the standard `Mcp-Method` and
/// `Mcp-Name` headers too.
fn base_headers(args: &McpArgs) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if let Some(token) = &args.bearer {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::usage("--bearer: not a valid header value".to_owned()))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// A 2026-07-28 "session": no state on the server, only the headers of every request, after
/// a `server/discover` that shows the server speaks the revision.
async fn discover(args: &McpArgs, worker: usize) -> Result<Session, Error> {
    let failed = |message: String| Error::RawConnect { worker, message };
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let mut headers = base_headers(args)?;
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2026-07-28"),
    );
    let discover = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"server/discover","params":{{{LIFECYCLE_2026}}}}}"#
    );
    let mut discover_headers = headers.clone();
    discover_headers.insert("mcp-method", HeaderValue::from_static("server/discover"));
    opening(
        &http,
        &args.url,
        discover_headers,
        discover,
        "server/discover",
    )
    .await
    .map_err(failed)?;
    match &args.tool {
        Some(tool) => {
            headers.insert("mcp-method", HeaderValue::from_static("tools/call"));
            let name = HeaderValue::from_str(tool).map_err(|_| {
                Error::usage(format!(
                    "--tool {tool}: not sendable as an Mcp-Name header with --raw"
                ))
            })?;
            headers.insert("mcp-name", name);
        }
        None => {
            headers.insert("mcp-method", HeaderValue::from_static("tools/list"));
        }
    }
    Ok(Session {
        http,
        url: args.url.clone(),
        headers,
        next_id: AtomicU64::new(1),
    })
}

/// POST the opening request (`what`, id 0) and check its answer is a result: the answer's
/// headers, or why not.
async fn opening(
    http: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: String,
    what: &str,
) -> Result<HeaderMap, String> {
    let failed = |e: String| format!("{what}: {e}");
    let (answer_headers, answer) = post(http.post(url).headers(headers).body(body))
        .await
        .map_err(failed)?;
    answered(&answer, &json!(0)).map_err(failed)?;
    Ok(answer_headers)
}

/// `initialize` and `notifications/initialized`: a session, or a connect error for `worker`.
async fn open(args: &McpArgs, worker: usize) -> Result<Session, Error> {
    if args.protocol == Protocol::V2026_07_28 {
        return discover(args, worker).await;
    }
    let failed = |message: String| Error::RawConnect { worker, message };
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let mut headers = base_headers(args)?;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "switchboard-loadgen", "version": env!("CARGO_PKG_VERSION")},
    }});
    let session = opening(
        &http,
        &args.url,
        headers.clone(),
        initialize.to_string(),
        "initialize",
    )
    .await
    .map_err(failed)?
    .get("mcp-session-id")
    .cloned();
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2025-11-25"),
    );
    if let Some(session) = session {
        headers.insert("mcp-session-id", session);
    }
    let initialized = http
        .post(&args.url)
        .headers(headers.clone())
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    post(initialized)
        .await
        .map_err(|e| failed(format!("notifications/initialized: {e}")))?;
    Ok(Session {
        http,
        url: args.url.clone(),
        headers,
        next_id: AtomicU64::new(1),
    })
}

/// The result answering `id` in a response body (JSON, or SSE events), as JSON text.
fn answered<'b>(body: &'b [u8], id: &Value) -> Result<&'b str, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())?;
    let trimmed = text.trim_start();
    // A JSON body is the answer itself; an SSE body carries it in one event's data (rmcp and
    // the SDKs write a message on one `data:` line).
    let mut candidates: Box<dyn Iterator<Item = &str>> = if trimmed.starts_with('{') {
        Box::new(std::iter::once(trimmed))
    } else {
        Box::new(text.lines().filter_map(|line| {
            let data = line.strip_prefix("data:")?;
            Some(data.strip_prefix(' ').unwrap_or(data))
        }))
    };
    candidates
        .find_map(|message| {
            let answer = serde_json::from_str::<Answer>(message).ok()?;
            (answer.id.as_ref() == Some(id)).then_some(answer)
        })
        .ok_or_else(|| format!("no answer to request {id}: {}", shorten(text)))
        .and_then(|answer| match (answer.result, answer.error) {
            (Some(result), None) => Ok(result.get()),
            (_, Some(error)) => Err(format!("JSON-RPC error: {}", shorten(error.get()))),
            (None, None) => Err(format!("neither result nor error: {}", shorten(text))),
        })
}

impl Operation for RawMcpCall {
    async fn call(&mut self) -> Result<(), String> {
        let session = &*self.session;
        let id = session.next_id.fetch_add(1, Ordering::Relaxed);
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},{}"#, self.request);
        let request = session
            .http
            .post(&session.url)
            .headers(session.headers.clone())
            .body(Bytes::from(body));
        let (_, bytes) = post(request).await?;
        let result = answered(&bytes, &json!(id))?;
        if self.is_call {
            let call: CallResult = serde_json::from_str(result)
                .map_err(|e| format!("not a tool result ({e}): {}", shorten(result)))?;
            if call.is_error == Some(true) {
                return Err(format!("tool error: {}", shorten(result)));
            }
        }
        check_expected(self.expect.as_deref(), result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_found_in_json_and_in_sse() {
        let json_body = br#"{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}"#;
        assert_eq!(answered(json_body, &json!(3)), Ok(r#"{"tools":[]}"#));
        let sse = "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                   data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[]}}\n\n";
        assert_eq!(answered(sse.as_bytes(), &json!(3)), Ok(r#"{"content":[]}"#));
        let error =
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no such method"}}"#;
        let refused = answered(error, &json!(3)).unwrap_err();
        assert!(refused.contains("no such method"), "{refused}");
        let other = answered(json_body, &json!(4)).unwrap_err();
        assert!(other.contains("no answer to request 4"), "{other}");
    }
}
