//! The MCP session with the gateway: tools are listed and called through it.
//!
//! The session is opened on first use and shared by every request (rmcp multiplexes
//! concurrent calls over it). When the gateway is down, each use fails fast with
//! [`GatewayError::Unreachable`] and the next use connects again, so the middleware recovers
//! by itself when the gateway comes back; an expired session (a restarted gateway) is
//! re-initialised by rmcp transparently.
//!
//! The tool list is cached: a chat turn takes it from memory. The cache is dropped when the
//! gateway says its list changed (`notifications/tools/list_changed` on the session's
//! stream), when a new session is opened, and after [`TOOLS_TTL`] in case a notification was
//! missed; [`Gateway::list_tools`] always asks the gateway (and refreshes the cache).
//!
//! Trace context: every request to the gateway carries the current span's W3C context in
//! `params._meta` (`switchboard_protocol::mcp_trace`), so the gateway's spans of a tool call
//! join the chat's trace. The session's own tasks belong to no request: it is opened on a task
//! of its own (see [`Gateway::session`]).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientConfig, JsonObject, PaginatedRequestParams,
        RequestParamsMeta, Tool,
    },
    service::{NotificationContext, Peer, RunningService, ServiceError},
};
use switchboard_protocol::{
    mcp_client::{ConnectOptions, client_config, connect_with},
    mcp_trace,
};
use switchboard_runtime::auth::{Identity, ON_BEHALF_OF};
use tokio::sync::Mutex;

mod tasks;
pub use tasks::TaskProgress;

/// Longest a cached tool list is used without a word from the gateway.
pub const TOOLS_TTL: Duration = Duration::from_secs(30);

/// Longest wait for the tool list; listing is cheap, a slow answer means trouble.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait to open a session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the gateway could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot reach the MCP gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the MCP gateway at {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("the MCP gateway refused the request: {0}")]
    Refused(String),
}

/// A session with the gateway.
type Session = RunningService<RoleClient, ListWatcher>;

/// The session's client handler: counts the gateway's `tools/list_changed` notifications.
#[derive(Clone)]
struct ListWatcher {
    info: ClientConfig,
    changes: Arc<AtomicU64>,
}

impl ClientHandler for ListWatcher {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!("the gateway's tool list changed");
        self.changes.fetch_add(1, Ordering::AcqRel);
    }
}

/// The tool list as last fetched, with the change count it was fetched under.
struct CachedTools {
    changes: u64,
    fetched: Instant,
    tools: Arc<Vec<Tool>>,
}

/// The gateway client.
pub struct Gateway {
    url: String,
    options: ConnectOptions,
    session: Mutex<Option<Arc<Session>>>,
    /// Tool-list changes seen (notifications, new sessions); a cache from an older count is
    /// stale.
    changes: Arc<AtomicU64>,
    /// One list per user the middleware acts for (the gateway's policy may show each a
    /// different one); `""` is the middleware's own.
    tools: std::sync::Mutex<HashMap<String, CachedTools>>,
}

/// Most users whose tool lists are kept; past it the cache starts over.
const MAX_CACHED_USERS: usize = 1024;

/// The user a request is made for: the middleware's own caller, named to the gateway in
/// `_meta` ([`ON_BEHALF_OF`]) so that the gateway's policy judges that person, not the
/// middleware. `None` when the middleware's callers are anonymous (authentication off).
pub type User<'a> = Option<&'a Identity>;

fn user_key(user: User<'_>) -> String {
    user.map(|u| u.on_behalf_of().to_string())
        .unwrap_or_default()
}

/// Name the user in `params`' `_meta`, when there is one.
fn name_user<P: RequestParamsMeta>(params: &mut P, user: User<'_>) {
    if let Some(user) = user {
        params
            .meta_or_default()
            .insert(ON_BEHALF_OF.to_owned(), user.on_behalf_of());
    }
}

impl Gateway {
    /// A client of the gateway at `url`, on the workspace's HTTP stack set up by `client`.
    pub fn new(
        url: impl Into<String>,
        client: switchboard_runtime::client::ClientOptions,
    ) -> Result<Self, switchboard_runtime::Error> {
        let url = url.into();
        let client = client.with_connect_timeout(CONNECT_TIMEOUT);
        client.check_proxy_for(&url)?;
        Ok(Self {
            options: ConnectOptions::default()
                .with_client_name("switchboard-middleware")
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_http_client(client.build()?),
            url,
            session: Mutex::new(None),
            changes: Arc::new(AtomicU64::new(0)),
            tools: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// End the session with the gateway, if one is open, and wait (a few seconds at most)
    /// until the gateway has been told (`DELETE`). For shutdown, once no request uses it.
    pub async fn close(&self) {
        let Some(session) = self.session.lock().await.take() else {
            return;
        };
        match Arc::try_unwrap(session) {
            Ok(mut session) => {
                if let Ok(None) = session.close_with_timeout(CONNECT_TIMEOUT).await {
                    tracing::warn!(url = %self.url, "the gateway did not confirm the end of the session in time");
                }
            }
            // Still used somewhere: ending it is left to the last user.
            Err(shared) => shared.cancellation_token().cancel(),
        }
    }

    /// The open session, or a new one.
    ///
    /// A new session is opened on a task of its own: rmcp's session tasks open their spans
    /// under the span current at connect time, and the session outlives the request that
    /// happened to open it — whose span would otherwise stay open (unexported, its trace id on
    /// unrelated log lines) until the session ends.
    async fn session(&self) -> Result<Arc<Session>, GatewayError> {
        let mut slot = self.session.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let (url, options) = (self.url.clone(), self.options.clone());
        let watcher = ListWatcher {
            info: client_config(&options.client_name),
            changes: self.changes.clone(),
        };
        let connecting = tokio::spawn(async move { connect_with(&url, &options, watcher).await });
        let client = match connecting.await {
            Ok(connected) => connected.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the connecting task failed: {e}")),
        }
        .map_err(|reason| GatewayError::Unreachable {
            url: self.url.clone(),
            reason,
        })?;
        tracing::info!(url = %self.url, "MCP session with the gateway opened");
        // What the previous session listed may have changed unseen.
        self.changes.fetch_add(1, Ordering::AcqRel);
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Forget `stale` so that the next use connects again.
    async fn forget(&self, stale: &Arc<Session>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, stale)) {
            *slot = None;
        }
    }

    fn classify(&self, error: ServiceError) -> (GatewayError, bool) {
        match error {
            ServiceError::McpError(e) => (GatewayError::Refused(e.message.to_string()), false),
            ServiceError::Timeout { timeout } => (
                GatewayError::Timeout {
                    url: self.url.clone(),
                    after: timeout,
                },
                false,
            ),
            other @ (ServiceError::TransportSend(_) | ServiceError::TransportClosed) => (
                GatewayError::Unreachable {
                    url: self.url.clone(),
                    reason: other.to_string(),
                },
                true,
            ),
            other => (GatewayError::Refused(other.to_string()), false),
        }
    }

    /// The gateway's tools: the cached list while it is current (see the module's notes),
    /// else [`Gateway::list_tools`].
    pub async fn tools(&self, user: User<'_>) -> Result<Arc<Vec<Tool>>, GatewayError> {
        if let Some(tools) = self.cached_tools(user) {
            return Ok(tools);
        }
        self.list_tools(user).await
    }

    fn cached_tools(&self, user: User<'_>) -> Option<Arc<Vec<Tool>>> {
        let cache = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(&user_key(user))
            .filter(|c| {
                c.changes == self.changes.load(Ordering::Acquire) && c.fetched.elapsed() < TOOLS_TTL
            })
            .map(|c| c.tools.clone())
    }

    /// Every tool the gateway offers now, asked of the gateway (the answer is cached for
    /// [`Gateway::tools`]). Retried once on a fresh session when the old one broke (listing
    /// has no side effects).
    pub async fn list_tools(&self, user: User<'_>) -> Result<Arc<Vec<Tool>>, GatewayError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.session().await?;
            // Read before asking: a change announced while the answer is on its way makes
            // this answer stale.
            let changes = self.changes.load(Ordering::Acquire);
            match tokio::time::timeout(LIST_TIMEOUT, list_all_tools(client.peer(), user)).await {
                Ok(Ok(tools)) => {
                    let tools = Arc::new(tools);
                    let mut cache = self.tools.lock().unwrap_or_else(|p| p.into_inner());
                    if cache.len() >= MAX_CACHED_USERS {
                        cache.clear();
                    }
                    cache.insert(
                        user_key(user),
                        CachedTools {
                            changes,
                            fetched: Instant::now(),
                            tools: tools.clone(),
                        },
                    );
                    return Ok(tools);
                }
                Ok(Err(error)) => {
                    let (error, broken) = self.classify(error);
                    if broken {
                        self.forget(&client).await;
                        if attempt < 2 {
                            continue;
                        }
                    }
                    return Err(error);
                }
                Err(_) => return Err(self.timed_out(LIST_TIMEOUT)),
            }
        }
    }

    /// Call `name` with `arguments`, waiting at most `timeout`. A tool that fails is a
    /// `CallToolResult` with `is_error`; an `Err` means the call itself did not happen or did
    /// not finish. Not retried: a tool call may have side effects.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: JsonObject,
        timeout: Duration,
        user: User<'_>,
    ) -> Result<CallToolResult, GatewayError> {
        let client = self.session().await?;
        let params = call_params(name, arguments, user);
        match tokio::time::timeout(timeout, client.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(self.failed(&client, error).await),
            Err(_) => Err(self.timed_out(timeout)),
        }
    }

    /// What `error` of a request on `client` means for the caller; a broken session is
    /// forgotten, so that the next use connects again.
    async fn failed(&self, client: &Arc<Session>, error: ServiceError) -> GatewayError {
        let (error, broken) = self.classify(error);
        if broken {
            self.forget(client).await;
        }
        error
    }

    fn timed_out(&self, after: Duration) -> GatewayError {
        GatewayError::Timeout {
            url: self.url.clone(),
            after,
        }
    }
}

/// The params of a `tools/call`: the current trace context and the user in `_meta`.
fn call_params(name: &str, arguments: JsonObject, user: User<'_>) -> CallToolRequestParams {
    let mut params = mcp_trace::with_trace_context(
        CallToolRequestParams::new(name.to_owned()).with_arguments(arguments),
    );
    name_user(&mut params, user);
    params
}

/// Every page of the gateway's tool list, each request carrying the current trace context
/// (rmcp's `list_all_tools` sends no `_meta`).
async fn list_all_tools(
    client: &Peer<RoleClient>,
    user: User<'_>,
) -> Result<Vec<Tool>, ServiceError> {
    let mut tools = Vec::new();
    let mut cursor = None;
    loop {
        let mut params =
            mcp_trace::with_trace_context(PaginatedRequestParams::default().with_cursor(cursor));
        name_user(&mut params, user);
        let page = client.list_tools(Some(params)).await?;
        tools.extend(page.tools);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(tools),
        }
    }
}
