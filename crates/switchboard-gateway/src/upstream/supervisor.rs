//! Keeping one upstream's session alive: connect, list, watch, reconnect.
//!
//! One task per upstream runs [`Upstream::supervise`]:
//!
//! 1. connect and initialize (within the connect timeout), then list its tools, resources and
//!    prompts (each only if the upstream declared the capability);
//! 2. publish the session and the listing, mark the upstream up and wake the catalog;
//! 3. watch it: list again on `list_changed`, ping it every health interval and whenever a
//!    call failed in transport (an upstream that does not declare `listChanged` is listed
//!    again instead of pinged, so its changes are found too); a transport error, or two
//!    health checks in a row without an answer within the connect timeout, mean it is gone;
//! 4. then withdraw the session, close the sessions of clients ([`super::pool`]), mark it
//!    down (its tools leave the list) and go back to 1, waiting between attempts from 100 ms
//!    up to the health interval, doubling.
//!
//! Whether clients get sessions of their own is decided on each new shared session: yes when
//! the upstream gave it an `mcp-session-id` on protocol 2025-11-25 or earlier (unless the
//! upstream is configured with `shared_session`); a stdio upstream is one process, one
//! session, shared.
//!
//! Waiting between attempts is a plain sleep on purpose: nothing announces that a server has
//! come back, so asking again is the only way to learn it.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use rmcp::{
    ClientCacheConfig, ClientServiceExt, RoleClient,
    model::{ClientCapabilities, ProtocolVersion},
};
use switchboard_protocol::mcp_client::client_config;
use tokio::sync::Notify;

use crate::error::root_cause;
use tokio_util::sync::CancellationToken;

use super::{
    Listing, Session, Status, Upstream, UpstreamHandler, UpstreamState,
    handler::Routes,
    lists::{announces_changes, list, ping},
};

/// First wait before reconnecting; doubles up to the health interval.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// Health pings in a row without an answer that mark an upstream down (one could be a
/// scheduling hiccup; a transport error marks it down at once).
const MISSED_PINGS: u32 = 2;
/// Requests beyond the call limit that a session may have in flight: health pings and lists.
const SPARE_REQUESTS: usize = 4;
/// Time a stdio upstream's program gets to stop: rmcp waits up to 3 s after closing its stdin
/// and 3 s after SIGTERM before it kills it.
const STDIO_STOP: Duration = Duration::from_secs(7);

/// Open an MCP session with `handler` over `transport` within `timeout`: `initialize`, or
/// with `discover` the 2026-07-28 lifecycle (`server/discover`, then stateless requests
/// carrying their `_meta`), for an upstream that refused `initialize`. Discovery is tried
/// second: every upstream that has `initialize` keeps a 2025-era session, which the direct
/// path and the tasks federation serve; a 2026-07-28 session takes rmcp's path for every
/// request.
async fn handshake<T>(
    handler: UpstreamHandler,
    transport: T,
    timeout: Duration,
    discover: bool,
) -> Result<rmcp::service::RunningService<RoleClient, UpstreamHandler>, Unopened>
where
    T: rmcp::transport::Transport<RoleClient> + Send + 'static,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    let (lifecycle, what) = if discover {
        let versions = vec![ProtocolVersion::V_2026_07_28];
        let lifecycle = rmcp::ClientLifecycleMode::Discover {
            preferred_versions: versions,
        };
        (lifecycle, "server/discover")
    } else {
        (rmcp::ClientLifecycleMode::Initialize, "MCP initialization")
    };
    match tokio::time::timeout(timeout, handler.serve_with_lifecycle(transport, lifecycle)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Unopened::Refused(format!(
            "{what} failed: {}",
            root_cause(&e)
        ))),
        Err(_) => Err(Unopened::Silent(format!(
            "{what} did not finish within {timeout:?}"
        ))),
    }
}

/// Why a handshake opened no session.
enum Unopened {
    /// The upstream answered, but with no session: it may speak the other lifecycle.
    Refused(String),
    /// It did not answer within the connect timeout: asking it another way would wait as long
    /// again.
    Silent(String),
}

impl From<Unopened> for String {
    fn from(unopened: Unopened) -> Self {
        match unopened {
            Unopened::Refused(why) | Unopened::Silent(why) => why,
        }
    }
}

/// The supervisor's clock, and the HTTP client every upstream session uses (one connection
/// pool for the gateway; the workspace's one client stack, HTTPS included).
#[derive(Debug, Clone)]
pub struct Timing {
    pub connect_timeout: Duration,
    pub health_interval: Duration,
    /// How long an upstream session of a caller without a session may go unused
    /// ([`super::pool`]); the gateway's client sessions expire after it too.
    pub session_idle_timeout: Duration,
    pub http: reqwest::Client,
    /// What `http` was built from (which proxy an upstream's requests go through).
    pub client: switchboard_runtime::client::ClientOptions,
}

enum Exit {
    Shutdown,
    Lost(String),
}

impl Upstream {
    /// Run until `shutdown`; `changed` is woken whenever the listing or the state changed.
    pub async fn supervise(self: Arc<Self>, changed: Arc<Notify>, shutdown: CancellationToken) {
        let timing = self.timing.clone();
        let mut delay = RECONNECT_MIN.min(timing.health_interval);
        loop {
            let attempt = tokio::select! {
                attempt = self.connect(&timing) => attempt,
                () = shutdown.cancelled() => return,
            };
            match attempt {
                Ok((session, listing, server)) => {
                    delay = RECONNECT_MIN.min(timing.health_interval);
                    let session = Arc::new(session);
                    let tools = listing.tools.len();
                    self.listing.store(Arc::new(listing));
                    self.listed
                        .store(true, std::sync::atomic::Ordering::Release);
                    self.session.store(Some(session.clone()));
                    self.isolated
                        .store(self.stateful(&session), Ordering::Release);
                    self.breaker.reset();
                    self.metrics.set_circuit(self.breaker.state());
                    self.metrics.up.set(1);
                    self.metrics.connects.inc();
                    tracing::info!(upstream = %self.name, url = %self.config.url, server = %server, tools, "upstream up");
                    self.set_state(Status::Up, None, Some(server));
                    changed.notify_one();
                    self.resubscribe(&session);
                    let exit = self.watch(&session, &timing, &changed, &shutdown).await;
                    self.session.store(None);
                    // `isolated` keeps what the lost session showed until the next one says
                    // otherwise: read as false meanwhile, a task of a client's own upstream
                    // session was looked for in the shared owner record and answered unknown.
                    self.metrics.up.set(0);
                    match exit {
                        Exit::Shutdown => {
                            // End the upstream session (DELETE) before the gateway's serve
                            // returns, while the upstream still listens; a session a call
                            // still holds ends when that call lets go of it.
                            // A program gets its stdin closed, then SIGTERM, then SIGKILL,
                            // a few seconds apart.
                            let limit = match self.config.stdio {
                                Some(_) => timing.connect_timeout.max(STDIO_STOP),
                                None => timing.connect_timeout,
                            };
                            let clients = self.close_client_sessions(limit);
                            let shared = async {
                                if let Ok(mut session) = Arc::try_unwrap(session) {
                                    let _ = session.client.close_with_timeout(limit).await;
                                }
                            };
                            tokio::join!(clients, shared);
                            return;
                        }
                        Exit::Lost(reason) => {
                            // Their transports are going, or gone, with the upstream.
                            drop(self.close_client_sessions(Duration::ZERO));
                            let reason = self.explain(reason);
                            tracing::warn!(upstream = %self.name, %reason, "upstream down; its tools leave the list until it is back");
                            self.set_state(Status::Down, Some(reason), None);
                            changed.notify_one();
                        }
                    }
                }
                Err(reason) => {
                    let reason = self.explain(reason);
                    self.state.send_modify(|state| {
                        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                    });
                    let state = self.state();
                    if state.status != Status::Down || state.error.as_deref() != Some(&reason) {
                        tracing::warn!(upstream = %self.name, url = %self.config.url, %reason, "upstream unreachable; retrying");
                        self.set_state(Status::Down, Some(reason), None);
                        changed.notify_one();
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => return,
            }
            delay = (delay * 2).min(timing.health_interval);
        }
    }

    fn set_state(&self, status: Status, error: Option<String>, server: Option<String>) {
        let consecutive_failures = match status {
            Status::Up => 0,
            _ => self.state.borrow().consecutive_failures,
        };
        self.state.send_replace(UpstreamState {
            status,
            error,
            server,
            since: std::time::SystemTime::now(),
            consecutive_failures,
        });
    }

    /// A stdio upstream's failure with the last line its program wrote to stderr.
    fn explain(&self, reason: String) -> String {
        match self.config.stdio {
            Some(_) => self.stderr.explain(reason),
            None => reason,
        }
    }

    async fn connect(&self, timing: &Timing) -> Result<(Session, Listing, String), String> {
        // A plain TCP connect first (an HTTP probe over TLS or a proxy): while an upstream is
        // away this is all each attempt costs, and its error ("connection refused", "invalid
        // peer certificate") says more than the MCP client's would.
        self.reachable(timing).await?;
        let session = self
            .open(self.routes.clone(), super::client_requests::capabilities())
            .await?;
        let client = &session.client;
        let server = client
            .peer_info()
            .and_then(|info| {
                info.server_info
                    .as_ref()
                    .map(|s| format!("{} {}", s.name, s.version))
            })
            .unwrap_or_else(|| "unknown server".to_owned());
        let listing = tokio::time::timeout(timing.connect_timeout, list(client.peer()))
            .await
            .map_err(|_| format!("listing did not finish within {:?}", timing.connect_timeout))??;
        // Before the listing is published: the catalog built from it reads this too.
        let tasks = tokio::time::timeout(timing.connect_timeout, super::tasks::support(&session))
            .await
            .map_err(|_| format!("listing did not finish within {:?}", timing.connect_timeout))??;
        self.tasks.store(Arc::new(tasks));
        Ok((session, listing, server))
    }

    /// A new MCP session with the upstream, initialized within the connect timeout, declaring
    /// `capabilities`; what the upstream says on it goes to `routes`.
    pub(super) async fn open(
        &self,
        routes: Arc<Routes>,
        capabilities: ClientCapabilities,
    ) -> Result<Session, String> {
        let timing = &self.timing;
        let handler = UpstreamHandler {
            routes: routes.clone(),
            info: {
                let mut info = client_config("switchboard-gateway");
                info.capabilities = capabilities;
                info
            },
        };
        // A stdio upstream's URL is not http(s): every request takes rmcp's path.
        let http = self.http().clone();
        let direct =
            super::exchange::Direct::new(self.name.clone(), &self.config.url, http.clone())
                .with_token(self.token.clone());
        let declared = super::tasks::Declared::default();
        let mut lane = None;
        let client = match &self.config.stdio {
            Some(command) => {
                let (transport, raw) = super::stdio::spawn(
                    &self.name,
                    command,
                    routes.clone(),
                    &self.stderr,
                    declared.clone(),
                )?;
                lane = Some(raw);
                handshake(handler, transport, timing.connect_timeout, false).await?
            }
            None => {
                let transport = || {
                    super::transport::streamable_http(
                        &self.config.url,
                        http.clone(),
                        self.config.max_concurrent_calls + SPARE_REQUESTS,
                        routes.clone(),
                        direct.link_cell(),
                        declared.clone(),
                        self.token.clone(),
                    )
                };
                match handshake(handler.clone(), transport(), timing.connect_timeout, false).await {
                    Ok(client) => client,
                    // An upstream that speaks only 2026-07-28 has no `initialize`.
                    Err(Unopened::Refused(refused)) => {
                        handshake(handler, transport(), timing.connect_timeout, true)
                            .await
                            .map_err(|discovery| {
                                format!("{refused}; {}", String::from(discovery))
                            })?
                    }
                    Err(silent) => return Err(silent.into()),
                }
            }
        };
        // The gateway keeps its own catalog; rmcp's response cache would serve stale lists.
        client
            .peer()
            .set_response_cache_config(ClientCacheConfig::disabled())
            .await;
        Ok(Session {
            client,
            direct,
            lane,
            routes,
            own_listing: Default::default(),
            closed: CancellationToken::new(),
            declared,
        })
    }

    /// Whether `session` shows an upstream that keeps state per session: an HTTP upstream that
    /// gave it a session id, on a protocol before 2026-07-28 (which has no sessions).
    fn stateful(&self, session: &Session) -> bool {
        let version = session
            .client
            .peer_info()
            .map(|i| i.protocol_version.clone());
        let sessionless = version.is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let has_id = session.direct.link().is_some_and(|l| l.session().is_some());
        self.config.stdio.is_none() && !self.config.shared_session && has_id && !sessionless
    }

    async fn watch(
        &self,
        session: &Session,
        timing: &Timing,
        changed: &Notify,
        shutdown: &CancellationToken,
    ) -> Exit {
        let peer = session.client.peer();
        // An upstream that does not announce changes of a list it has is listed again on every
        // health tick instead of pinged: the listing is the health check.
        let relist_on_tick = !announces_changes(peer);
        let mut interval = tokio::time::interval(timing.health_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await; // The first tick is immediate; we just listed.
        let mut missed = 0;
        loop {
            let relist = tokio::select! {
                () = shutdown.cancelled() => return Exit::Shutdown,
                () = self.routes.refresh.notified() => true,
                _ = interval.tick() => relist_on_tick,
                () = self.check_now.notified() => false,
            };
            if peer.is_transport_closed() {
                return Exit::Lost("the session's transport closed".to_owned());
            }
            let answered = if relist {
                let listed = async {
                    let listing = list(peer).await?;
                    Ok::<_, String>((listing, super::tasks::support(session).await?))
                };
                match tokio::time::timeout(timing.connect_timeout, listed).await {
                    Ok(Ok((listing, tasks))) => {
                        let tasks_changed = *self.tasks.load_full() != tasks;
                        if tasks_changed {
                            self.tasks.store(Arc::new(tasks));
                        }
                        if *self.listing.load_full() != listing {
                            tracing::info!(upstream = %self.name, tools = listing.tools.len(), "upstream lists changed");
                            self.listing.store(Arc::new(listing));
                            changed.notify_one();
                        } else if tasks_changed {
                            changed.notify_one();
                        }
                        true
                    }
                    Ok(Err(error)) => return Exit::Lost(error),
                    Err(_) => false,
                }
            } else {
                match tokio::time::timeout(timing.connect_timeout, ping(peer)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(error)) => {
                        return Exit::Lost(format!("health check failed: {}", root_cause(&error)));
                    }
                    Err(_) => false,
                }
            };
            if answered {
                missed = 0;
            } else {
                missed += 1;
                if missed >= MISSED_PINGS {
                    return Exit::Lost(format!(
                        "no answer to {missed} health checks within {:?} each",
                        timing.connect_timeout
                    ));
                }
            }
        }
    }
}

impl Upstream {
    async fn reachable(&self, timing: &Timing) -> Result<(), String> {
        if self.config.stdio.is_some() {
            return Ok(()); // started, not reached
        }
        let timeout = timing.connect_timeout;
        let url = reqwest::Url::parse(&self.config.url).map_err(|e| e.to_string())?;
        if url.scheme() == "https" || timing.client.proxy_for(&self.config.url).is_some() {
            // TLS or a proxy on the way: one HEAD on the shared client, whose error chain
            // says what failed (certificate, proxy, DNS); rmcp's error would cut it short.
            // Any HTTP answer at all means the way is open.
            let probe = self.http().head(url).timeout(timeout).send().await;
            return probe.map(drop).map_err(|e| {
                format!(
                    "cannot reach {}: {}",
                    self.config.url,
                    switchboard_runtime::client::chain(&e)
                )
            });
        }
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let port = url.port_or_known_default().unwrap_or(80);
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
            Err(_) => Err(format!(
                "cannot connect to {host}:{port} within {timeout:?}"
            )),
        }
    }
}
