//! Assembling and serving a service's HTTP application.
//!
//! [`ServiceApp`] puts a service's REST routes and (optionally) its MCP endpoint together with
//! what every service has: `/health`, `/ready`, `/metrics`, a `http_request` span per request
//! with a request id and a trace id (joining the caller's trace when the request carries a
//! `traceparent`; the span itself is in the request's extensions as a `tracing::Span`), request
//! metrics, the body size limit, Host/Origin checks against DNS
//! rebinding on state-changing REST calls, and the JSON error body. [`serve`] runs it until the
//! shutdown token fires, then lets in-flight requests finish within a deadline.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, util::MapRequestLayer};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    ApiError, Error,
    auth::{self, AuthSettings, Authenticator},
    error::{json_errors, remember_path},
    health::{self, AlwaysReady, HealthState, Readiness},
    metrics::{self, Metrics},
    propagation,
};

/// Default largest request body: 4 MiB. Enough for any program an LLM writes; small enough that
/// a client cannot make the service buffer arbitrary amounts of memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default time in-flight requests get to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The hosts accepted by default: loopback only, as the MCP specification recommends for
/// local servers. Deployments list their own service names.
pub fn default_allowed_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// The browser origins accepted by default: pages served from loopback, any port.
pub fn default_allowed_origins() -> Vec<String> {
    vec![
        "http://localhost:*".into(),
        "http://127.0.0.1:*".into(),
        "http://[::1]:*".into(),
    ]
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Endpoints that health checkers and Prometheus call every few seconds: not traced.
const PROBES: [&str; 3] = ["/health", "/ready", "/metrics"];

/// HTTP settings shared by every service, validated from [`HttpArgs`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// `Host` values accepted on `/mcp` and on state-changing REST calls; empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted (when a request carries one); `*` accepts any.
    pub allowed_origins: Vec<String>,
    /// Extra CA certificates (PEM) that outgoing HTTPS requests trust besides the platform's
    /// roots: see [`crate::client`].
    pub ca_file: Option<std::path::PathBuf>,
    /// Who may call: see [`crate::auth`]. Off by default.
    pub auth: AuthSettings,
    /// Serve HTTPS (and take client certificates as identities): see [`crate::tls`].
    pub tls: Option<crate::tls::TlsSettings>,
    /// Where security-relevant events are recorded: see [`crate::audit`]. One writer per
    /// process, shared by the services `switchboard up` runs. Off by default.
    pub audit: crate::audit::Audit,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            allowed_hosts: default_allowed_hosts(),
            allowed_origins: default_allowed_origins(),
            ca_file: None,
            auth: AuthSettings::default(),
            tls: None,
            audit: crate::audit::Audit::off(),
        }
    }
}

impl HttpSettings {
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
    /// Serve HTTPS as `tls` says.
    pub fn with_tls(mut self, tls: crate::tls::TlsSettings) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Record security-relevant events with `audit`.
    pub fn with_audit(mut self, audit: crate::audit::Audit) -> Self {
        self.audit = audit;
        self
    }
    /// Authenticate callers as `auth` says.
    pub fn with_auth(mut self, auth: AuthSettings) -> Self {
        self.auth = auth;
        self
    }

    /// Whether client certificates of a CA identify callers (mutual TLS).
    pub fn client_certificates(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }

    /// Whether callers are identified at all: a bearer method or client certificates.
    pub fn authenticates(&self) -> bool {
        self.auth.enabled() || self.client_certificates()
    }

    /// Refuse to serve on `listen` when that exposes an unauthenticated API beyond this host.
    pub fn check_exposure(&self, service: &str, listen: SocketAddr) -> Result<(), Error> {
        if self.authenticates() || self.auth.allow_unauthenticated || listen.ip().is_loopback() {
            return Ok(());
        }
        Err(Error::Config(format!(
            "{service}: refusing to listen on {listen} without authentication: anyone who reaches that address could call its API. Configure --jwks-url (with --jwt-issuer, --jwt-audience), --api-keys or --client-ca, or say --allow-unauthenticated / SWITCHBOARD_ALLOW_UNAUTHENTICATED=true if a network policy or proxy in front does it"
        )))
    }
    /// Trust the CA certificates of this PEM file in outgoing HTTPS requests too.
    pub fn with_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    pub fn with_allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = hosts;
        self
    }
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Whether a `Host` header value passes the allowlist. An entry without a port matches
    /// any port; an empty list or `*` accepts every host.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.allowed_hosts.is_empty() || self.allowed_hosts.iter().any(|h| h == "*") {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let (name, port) = split_host_port(&host);
        self.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            let (a_name, a_port) = split_host_port(&allowed);
            a_name == name && (a_port.is_none() || a_port == port)
        })
    }

    /// Whether an `Origin` header value passes the allowlist. Entries are
    /// `scheme://host[:port|:*]`; `*` accepts every origin.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        self.allowed_origins.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            if allowed == "*" || allowed == origin {
                return true;
            }
            match allowed.strip_suffix(":*") {
                Some(prefix) => {
                    origin == prefix
                        || origin
                            .strip_prefix(prefix)
                            .and_then(|rest| rest.strip_prefix(':'))
                            .is_some_and(|port| {
                                !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                            })
                }
                None => false,
            }
        })
    }
}

/// Split `host[:port]`, `[v6]:port` or a bare IPv6 address into name and port.
fn split_host_port(value: &str) -> (&str, Option<&str>) {
    if let Some(rest) = value.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':')),
            None => (value, None),
        };
    }
    if value.matches(':').count() > 1 {
        return (value, None); // bare IPv6
    }
    match value.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (value, None),
    }
}

/// Command-line/env/TOML form of [`HttpSettings`]; TOML section `[http]`. The environment
/// variables are process-wide, so under `switchboard up` they apply to every service.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpArgs {
    /// Largest accepted request body in bytes [default: 4194304].
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM [default: 10].
    #[arg(
        long,
        env = "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS",
        value_name = "SECONDS"
    )]
    pub shutdown_grace_seconds: Option<f64>,
    /// Host header values accepted on /mcp and state-changing REST calls (DNS-rebinding
    /// protection), comma-separated; `*` accepts any [default: localhost,127.0.0.1,::1].
    #[arg(
        long,
        env = "SWITCHBOARD_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOSTS"
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Origin header values accepted, comma-separated, e.g. `https://app.example:*`; `*`
    /// accepts any [default: http://localhost:*,http://127.0.0.1:*,http://[::1]:*].
    #[arg(
        long,
        env = "SWITCHBOARD_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGINS"
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// A PEM file of CA certificates that outgoing HTTPS requests (LLM, upstreams, sandbox,
    /// OTLP) trust in addition to the platform's roots, e.g. a private CA.
    #[arg(long, env = "SWITCHBOARD_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key).
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<std::path::PathBuf>,
    /// CA certificates (PEM) whose client certificates identify callers (mutual TLS; needs
    /// --tls-cert): the subject's CN (else its first SAN) is the identity, OUs its groups.
    #[arg(long, env = "SWITCHBOARD_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<std::path::PathBuf>,
}

impl TryFrom<HttpArgs> for HttpSettings {
    type Error = Error;

    fn try_from(args: HttpArgs) -> Result<Self, Error> {
        let mut settings = HttpSettings::default();
        if let Some(bytes) = args.max_body_bytes {
            if bytes == 0 {
                return Err(Error::Config(
                    "max_body_bytes (--max-body-bytes / SWITCHBOARD_MAX_BODY_BYTES): must be a positive number of bytes".into(),
                ));
            }
            settings.max_body_bytes = bytes;
        }
        if let Some(secs) = args.shutdown_grace_seconds {
            settings.shutdown_grace = crate::config::seconds(
                "shutdown_grace_seconds (--shutdown-grace-seconds / SWITCHBOARD_SHUTDOWN_GRACE_SECONDS)",
                secs,
            )?;
        }
        if let Some(hosts) = args.allowed_hosts {
            settings.allowed_hosts = clean_list(hosts);
        }
        if let Some(origins) = args.allowed_origins {
            let origins = clean_list(origins);
            if let Some(bad) = origins
                .iter()
                .find(|o| o.as_str() != "*" && o.as_str() != "null" && !o.contains("://"))
            {
                return Err(Error::Config(format!(
                    "allowed_origins (--allowed-origins / SWITCHBOARD_ALLOWED_ORIGINS): '{bad}' is not an origin; expected scheme://host[:port|:*], e.g. http://localhost:*"
                )));
            }
            settings.allowed_origins = origins;
        }
        if let Some(path) = args.ca_file {
            // Read now, so a wrong path or a file without certificates stops the start.
            crate::client::load_ca_file(&path)?;
            settings.ca_file = Some(path);
        }
        settings.tls = match (args.tls_cert, args.tls_key, args.client_ca) {
            (None, None, None) => None,
            (Some(cert), Some(key), client_ca) => {
                let tls = crate::tls::TlsSettings {
                    cert,
                    key,
                    client_ca,
                };
                // Read now, so wrong files stop the start.
                tls.server_config()?;
                Some(tls)
            }
            (None, None, Some(_)) => {
                return Err(Error::Config(
                    "client_ca (--client-ca / SWITCHBOARD_CLIENT_CA): client certificates need HTTPS; set --tls-cert and --tls-key too".into(),
                ));
            }
            _ => {
                return Err(Error::Config(
                    "tls_cert and tls_key (--tls-cert, --tls-key / SWITCHBOARD_TLS_CERT, SWITCHBOARD_TLS_KEY) go together".into(),
                ));
            }
        };
        Ok(settings)
    }
}

fn clean_list(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A session ended by `DELETE /mcp` is answered 200, not rmcp's 202: the specification gives
/// no status for it, and the official Python SDK reports anything but 200/204 as a failed
/// termination ("Session termination failed: 202") on every close.
async fn session_deleted_ok(request: Request, next: Next) -> Response {
    let delete = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    if delete && response.status() == axum::http::StatusCode::ACCEPTED {
        *response.status_mut() = axum::http::StatusCode::OK;
    }
    response
}

/// A service's HTTP application under construction.
pub struct ServiceApp {
    service: &'static str,
    version: &'static str,
    metrics: Metrics,
    settings: HttpSettings,
    readiness: Arc<dyn Readiness>,
    health_details: bool,
    rest: Router,
    mcp: Option<Router>,
}

impl ServiceApp {
    /// `service` is the name used in logs, metrics and `/health`.
    pub fn new(service: &'static str, metrics: Metrics, settings: HttpSettings) -> Self {
        Self {
            service,
            version: env!("CARGO_PKG_VERSION"),
            metrics,
            settings,
            readiness: Arc::new(AlwaysReady),
            health_details: false,
            rest: Router::new(),
            mcp: None,
        }
    }

    /// The service's REST routes (already given their state).
    pub fn rest(mut self, router: Router) -> Self {
        self.rest = self.rest.merge(router);
        self
    }

    /// The MCP endpoint, mounted at `/mcp`. It does its own Host/Origin validation and JSON-RPC
    /// errors, so the REST error layer is not applied to it.
    pub fn mcp<S>(mut self, service: S) -> Self
    where
        S: tower::Service<Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        self.mcp = Some(Router::new().nest_service("/mcp", service));
        self
    }

    pub fn readiness(mut self, readiness: impl Readiness) -> Self {
        self.readiness = Arc::new(readiness);
        self
    }

    /// Also report the per-dependency detail of [`Readiness`] on `/health` (which still
    /// answers 200 while the process works), for services whose users look at `/health`.
    pub fn health_details(mut self) -> Self {
        self.health_details = true;
        self
    }

    pub fn build(self) -> Router {
        let health_state = HealthState {
            service: self.service,
            version: self.version,
            started: std::time::Instant::now(),
            readiness: self.readiness,
            details: self.health_details,
        };
        let common = Router::new()
            .route("/health", get(health::health))
            .route("/ready", get(health::ready))
            .with_state(health_state)
            .merge(
                Router::new()
                    .route("/metrics", get(metrics::metrics_handler))
                    .with_state(self.metrics.clone()),
            );
        let authenticator = Authenticator::from_http(&self.settings);
        let gate = auth::layer::Gate {
            auth: authenticator.clone(),
            audit: self.settings.audit.clone(),
            limiter: auth::limits::Limiter::new(self.settings.auth.limits),
            service: self.service,
        };
        let guard = || middleware::from_fn_with_state(gate.clone(), auth::authenticate);
        let metadata = Router::new()
            .route(
                auth::layer::METADATA_PATH,
                get(auth::protected_resource_metadata),
            )
            .route(
                &format!("{}/mcp", auth::layer::METADATA_PATH),
                get(auth::protected_resource_metadata),
            )
            .with_state(authenticator.clone());
        let settings = Arc::new(self.settings);
        // Layers go on as one stack each, not one `Router::layer` apiece: axum boxes a route
        // once per `layer` call and clones the boxes below every `from_fn` for each request, so
        // five separate layers cost the MCP endpoint ~19 allocations per request (counted
        // with a `perf probe` on malloc).
        let mut app = self
            .rest
            .layer(guard())
            .merge(common)
            .merge(metadata)
            .fallback(|| async { ApiError::not_found("no such endpoint") })
            .layer(
                ServiceBuilder::new()
                    .layer(middleware::from_fn(remember_path))
                    .layer(middleware::from_fn(json_errors))
                    .layer(DefaultBodyLimit::max(settings.max_body_bytes))
                    .layer(middleware::from_fn_with_state(
                        settings.clone(),
                        guard_host_origin,
                    )),
            );
        if let Some(mcp) = self.mcp {
            app = app.merge(
                mcp.layer(
                    ServiceBuilder::new()
                        .layer(guard())
                        .layer(middleware::from_fn(session_deleted_ok)),
                ),
            );
        }
        let service = self.service;
        let trace = TraceLayer::new_for_http().make_span_with(move |request: &Request| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let matched_path = request
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str())
                .unwrap_or_else(|| request.uri().path());
            if PROBES.contains(&matched_path) {
                // Probes and scrapes every few seconds would drown the traces: no trace
                // context, and a DEBUG span (shown only when debugging).
                return tracing::debug_span!(
                    "http_request",
                    service,
                    method = %request.method(),
                    matched_path,
                    request_id,
                );
            }
            let span = tracing::info_span!(
                "http_request",
                service,
                method = %request.method(),
                matched_path,
                request_id,
                trace_id = tracing::field::Empty,
            );
            propagation::adopt_remote_parent(&span, request.headers());
            span
        });
        app.layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                // Runs inside the request's span: keep a handle to it in the request, so
                // handlers whose work runs elsewhere (rmcp runs tool calls on the MCP session's
                // task) can parent their spans on it. See `switchboard_protocol::mcp_trace`.
                .layer(MapRequestLayer::new(|mut request: Request| {
                    request.extensions_mut().insert(tracing::Span::current());
                    request
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(self.metrics, metrics::track)),
        )
    }
}

/// Middleware: DNS-rebinding protection for state-changing REST calls. A web page on another
/// site must not be able to drive a service on loopback; reads (`GET`, `HEAD`, `OPTIONS`) are
/// left alone so probes and dashboards work from anywhere.
async fn guard_host_origin(
    State(settings): State<Arc<HttpSettings>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if let Some(host) = request.headers().get(header::HOST) {
        let host = host.to_str().unwrap_or_default();
        if !settings.host_allowed(host) {
            tracing::warn!(host, "rejected request with a Host outside the allowlist");
            return ApiError::forbidden(format!(
                "Host '{host}' is not allowed; add it with --allowed-hosts / SWITCHBOARD_ALLOWED_HOSTS"
            ))
            .into_response();
        }
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !settings.origin_allowed(origin) {
            tracing::warn!(
                origin,
                "rejected request with an Origin outside the allowlist"
            );
            return ApiError::forbidden(format!(
                "Origin '{origin}' is not allowed; add it with --allowed-origins / SWITCHBOARD_ALLOWED_ORIGINS"
            ))
            .into_response();
        }
    }
    next.run(request).await
}

/// Serve `app` on `listener` until `shutdown` is cancelled, then give in-flight requests
/// `http.shutdown_grace` to finish; HTTPS when `http.tls` says so. Open connections still busy
/// after the deadline are dropped.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    http: &HttpSettings,
) -> Result<(), Error> {
    let grace = http.shutdown_grace;
    if let Some(tls) = &http.tls {
        let listener =
            crate::tls::TlsListener::new(listener, tls.server_config()?).map_err(Error::Serve)?;
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<crate::tls::Peer>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        return drain(server.into_future(), shutdown, grace).await;
    }
    // TCP_NODELAY on every accepted connection: an answer is often written in more than one
    // segment (headers, SSE event, end of stream), and with Nagle on, the second waits for the
    // client's delayed ACK — ~40 ms per request on a reused keep-alive connection (measured by
    // bench/run.sh: time-client p50 44 ms without it).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    drain(server.into_future(), shutdown, grace).await
}

/// Run `server` until it ends, or until `grace` after `shutdown`.
async fn drain(
    server: impl Future<Output = std::io::Result<()>>,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), Error> {
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.map_err(Error::Serve),
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs_f64(), "drain deadline passed; dropping open connections");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_with_and_without_ports() {
        let s = HttpSettings::default();
        assert!(s.host_allowed("localhost:8003"));
        assert!(s.host_allowed("127.0.0.1"));
        assert!(s.host_allowed("[::1]:8000"));
        assert!(!s.host_allowed("evil.example:8003"));
        let s = s.with_allowed_hosts(vec!["api.example:443".into()]);
        assert!(s.host_allowed("api.example:443"));
        assert!(!s.host_allowed("api.example:80"));
        assert!(
            HttpSettings::default()
                .with_allowed_hosts(vec!["*".into()])
                .host_allowed("x")
        );
    }

    #[test]
    fn origins_match_wildcard_ports_only_with_digits() {
        let s = HttpSettings::default();
        assert!(s.origin_allowed("http://localhost:3000"));
        assert!(s.origin_allowed("http://localhost"));
        assert!(!s.origin_allowed("http://localhost.evil.example"));
        assert!(!s.origin_allowed("http://localhost:3000.evil.example"));
        assert!(!s.origin_allowed("https://evil.example"));
    }

    #[test]
    fn bad_origin_setting_names_the_setting() {
        let err = HttpSettings::try_from(HttpArgs {
            allowed_origins: Some(vec!["localhost".into()]),
            ..Default::default()
        })
        .expect_err("must reject");
        assert!(err.to_string().contains("allowed_origins"));
        assert!(err.to_string().contains("scheme://host"));
    }
}
