//! The floor of one extra loopback HTTP hop, for scenario 1 of `bench/run.sh`.
//!
//! The gateway is one HTTP hop between a client and an upstream; it cannot add less than that
//! hop itself costs on the machine it runs on. To measure that floor in the same run, two
//! hidden commands serve the minimum:
//!
//! - `fixed`: answers every request with one fixed JSON body (about the size of a
//!   `get_current_time` result), without looking at the request;
//! - `forward --to URL`: reads each request, sends it on with reqwest (the gateway's client
//!   stack) and passes the answer back: the least a hop can do, with no parsing, routing or
//!   rewriting.
//!
//! Both are axum on hyper with `TCP_NODELAY` on every accepted connection, as the services
//! are served (`switchboard_runtime::http::serve`), so the floor differs from the gateway only
//! by what the gateway does per request. `p50(through forward) − p50(fixed direct)` is the
//! floor; the harness divides the gateway's added p50 by it.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use tokio::net::TcpListener;

use crate::{
    Error,
    args::{FixedArgs, ForwardArgs},
    scripted_llm::stopped,
};

/// Serve `args.body` to every request until Ctrl-C/SIGTERM.
pub async fn serve_fixed(args: &FixedArgs) -> Result<(), Error> {
    serde_json::from_str::<serde_json::Value>(&args.body)
        .map_err(|e| Error::usage(format!("--body: expected JSON: {e}")))?;
    let body = Bytes::from(args.body.clone());
    // `Bytes` clones share the buffer: answering copies no JSON.
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(CONTENT_TYPE, "application/json")], body) }
    });
    serve(args.listen, app).await
}

/// What the forwarding hop needs per request.
struct Hop {
    client: reqwest::Client,
    /// The origin without a trailing slash; the request's path and query are appended.
    to: String,
}

/// Pass every request on to `args.to` and its answer back until Ctrl-C/SIGTERM.
pub async fn serve_forward(args: &ForwardArgs) -> Result<(), Error> {
    let to = args.to.trim_end_matches('/').to_owned();
    reqwest::Url::parse(&to)
        .map_err(|e| Error::usage(format!("--to {}: expected a URL: {e}", args.to)))?;
    let hop = Arc::new(Hop {
        client: reqwest::Client::builder().tcp_nodelay(true).build()?,
        to,
    });
    let app = Router::new().fallback(forward).with_state(hop);
    serve(args.listen, app).await
}

/// One request through the hop: method, path, `Content-Type` and body on, status,
/// `Content-Type` and body back. A failure upstream is a 502 with the reason.
async fn forward(
    State(hop): State<Arc<Hop>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hop
        .client
        .request(method, format!("{}{path}", hop.to))
        .body(body);
    if let Some(content_type) = headers.get(CONTENT_TYPE) {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => return bad_gateway(&error),
    };
    let status = answer.status();
    let content_type = answer.headers().get(CONTENT_TYPE).cloned();
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(error) => return bad_gateway(&error),
    };
    let mut response = (status, body).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    response
}

fn bad_gateway(error: &reqwest::Error) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        format!("forwarding failed: {error}"),
    )
        .into_response()
}

/// Listen on `addr`, print `listening on IP:PORT` on stdout, serve `app` until stopped.
async fn serve(addr: std::net::SocketAddr, app: Router) -> Result<(), Error> {
    let io = |source| Error::Serve {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(io)?;
    println!("listening on {}", listener.local_addr().map_err(io)?);
    // As the services do: an answer written in more than one segment must not wait for the
    // client's delayed ACK (see switchboard_runtime::http::serve).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await
        .map_err(io)
}
