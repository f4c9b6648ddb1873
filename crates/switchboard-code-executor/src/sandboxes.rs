//! Several sandboxes behind one code-executor.
//!
//! Each configured URL is a sandbox; with `--sandbox-resolve`, each http URL's host name is
//! a set of sandboxes, one per address it resolves to (a Kubernetes headless Service),
//! re-resolved at every probe. A background prober asks every sandbox, every probe interval,
//! for `/ready` (its free pre-started interpreters, `pool.idle`) and `/packages`.
//!
//! - **Choice.** An execution goes to the eligible sandbox with the most free interpreters
//!   after subtracting what this code-executor already has in flight there; ties rotate.
//! - **Ejection.** A sandbox whose request or probe fails, or whose probe takes longer than
//!   its 2 s limit, is ejected for 1 s, doubling up to 30 s while it keeps failing; a probe
//!   that succeeds brings it back at once.
//! - **Retry only when nothing ran.** A request that could not connect provably never reached
//!   the sandbox, and a 503 is the sandbox saying it did not run it (busy, stopping); either
//!   goes to the next sandbox. A broken connection, a timeout or another error answer is
//!   returned as it is (the program may have run).
//! - **Packages.** An install goes to every sandbox that is up, and says what each answered.
//!   The prober keeps them level: a sandbox lacking a pin that another has (`name==version`,
//!   from `/packages`) is sent that install, and is not chosen while it lacks it, unless every
//!   sandbox lacks something. Approvals stay per sandbox: a pin held for approval on one must
//!   be approved there (its admin endpoint); until then that sandbox is not chosen.
//!
//! - **Sessions** live on one sandbox; [`sessions`] routes their calls there.
//!
//! What is lost when a sandbox dies: the executions in flight on it (each fails with a
//! message that says the program may have started), and the sessions it held.

mod sessions;

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use switchboard_protocol::sandbox::{
    ExecuteRequest, ExecutionResult, InstallOutcome, InstallRequest, InstallStatus,
};
use tokio_util::sync::CancellationToken;

use crate::{
    Config,
    client::{ClientError, Owner, SandboxClient},
};

const FIRST_EJECTION: Duration = Duration::from_secs(1);
const LONGEST_EJECTION: Duration = Duration::from_secs(30);

/// One sandbox and what is known about it.
struct Backend {
    client: SandboxClient,
    in_flight: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// From its last good probe.
    idle: Option<u64>,
    ready: bool,
    ejected_until: Option<Instant>,
    failures: u32,
    last_error: Option<String>,
    installed: BTreeSet<String>,
    /// Pins being installed to level it with the others.
    syncing: bool,
}

impl Backend {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn url(&self) -> &str {
        self.client.base_url()
    }

    fn fail(&self, error: &ClientError) {
        let mut state = self.state();
        state.failures = state.failures.saturating_add(1);
        let backoff = FIRST_EJECTION
            .saturating_mul(1 << state.failures.saturating_sub(1).min(5))
            .min(LONGEST_EJECTION);
        state.ejected_until = Some(Instant::now() + backoff);
        state.last_error = Some(error.to_string());
        tracing::warn!(sandbox = %self.url(), %error, ejected_for = ?backoff, "sandbox ejected");
    }

    fn usable(&self, now: Instant) -> bool {
        let state = self.state();
        state.ready && state.ejected_until.is_none_or(|until| until <= now)
    }
}

/// Counts a request in flight on a sandbox until dropped, so that a call abandoned midway (a
/// cancelled task) does not stay counted.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A configured URL: one sandbox, or (resolved) as many as its name has addresses.
struct Seed {
    url: String,
    resolve: bool,
}

/// The sandboxes. Cheap to clone.
#[derive(Clone)]
pub struct Sandboxes {
    inner: Arc<Inner>,
}

struct Inner {
    template: SandboxClient,
    seeds: Vec<Seed>,
    backends: Mutex<BTreeMap<String, Arc<Backend>>>,
    next: AtomicUsize,
    probe_interval: Duration,
    /// Which sandbox holds each session (see [`sessions`]).
    routes: Mutex<sessions::Routes>,
}

impl Sandboxes {
    /// The sandboxes of `config`, with the prober running until `shutdown`.
    pub fn start(
        config: &Config,
        shutdown: CancellationToken,
    ) -> Result<Self, switchboard_runtime::Error> {
        let template = SandboxClient::new(config)?;
        let seeds = config
            .sandbox_urls
            .iter()
            .map(|url| Seed {
                url: url.clone(),
                resolve: config.sandbox_resolve && url.starts_with("http://"),
            })
            .collect();
        let sandboxes = Self {
            inner: Arc::new(Inner {
                template,
                seeds,
                backends: Mutex::new(BTreeMap::new()),
                next: AtomicUsize::new(0),
                probe_interval: config.sandbox_probe_interval,
                routes: Mutex::new(sessions::Routes::default()),
            }),
        };
        // Unresolved seeds are sandboxes at once, assumed ready until probed, so the first
        // call need not wait for the prober.
        for seed in sandboxes.inner.seeds.iter().filter(|s| !s.resolve) {
            sandboxes.add(seed.url.clone(), true, None);
        }
        let prober = sandboxes.clone();
        tokio::spawn(async move {
            loop {
                prober.probe_all().await;
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(prober.inner.probe_interval) => {}
                }
            }
        });
        Ok(sandboxes)
    }

    fn backends(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Backend>>> {
        match self.inner.backends.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A sandbox at `url`; `host` is the name it was resolved from, sent as `Host`.
    fn add(&self, url: String, ready: bool, host: Option<&reqwest::header::HeaderValue>) {
        self.backends().entry(url.clone()).or_insert_with(|| {
            let client = match host {
                Some(host) => self.inner.template.at_address_of(url, host.clone()),
                None => self.inner.template.at(url),
            };
            Arc::new(Backend {
                client,
                in_flight: AtomicUsize::new(0),
                state: Mutex::new(State {
                    ready,
                    ..State::default()
                }),
            })
        });
    }

    fn snapshot(&self) -> Vec<Arc<Backend>> {
        self.backends().values().cloned().collect()
    }

    /// The sandbox for the next execution, never one of `tried`.
    fn pick(&self, tried: &[String]) -> Option<Arc<Backend>> {
        let now = Instant::now();
        let all = self.snapshot();
        let usable: Vec<&Arc<Backend>> = all
            .iter()
            .filter(|b| !tried.iter().any(|t| t == b.url()) && b.usable(now))
            .collect();
        let union = installed_anywhere(&all);
        let level: Vec<&Arc<Backend>> = usable
            .iter()
            .copied()
            .filter(|b| b.state().installed.is_superset(&union))
            .collect();
        let candidates = if level.is_empty() { usable } else { level };
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let n = candidates.len();
        (0..n)
            .map(|i| candidates[(start + i) % n.max(1)])
            .max_by_key(|b| {
                let idle = b.state().idle.unwrap_or(1) as i64;
                idle - b.in_flight.load(Ordering::Relaxed) as i64
            })
            .cloned()
    }

    /// Run `request` (one-shot, no session) on one sandbox; on another only when the first
    /// never received it. As `owner` when known (see [`crate::client::Owner`]).
    pub async fn execute(
        &self,
        request: &ExecuteRequest,
        owner: Option<&Owner>,
    ) -> Result<ExecutionResult, ClientError> {
        let op = move |client: SandboxClient| async move { client.execute(request, owner).await };
        self.on_any(op, ClientError::not_run)
            .await
            .map(|(_, result)| result)
    }

    /// Run `op` on one sandbox, chosen as an execution is; on another when the first could not
    /// be reached or gave an answer that `elsewhere` says another sandbox may not give (one
    /// that provably did nothing). Also which sandbox did it.
    async fn on_any<T, F, Fut>(
        &self,
        op: F,
        elsewhere: fn(&ClientError) -> bool,
    ) -> Result<(Arc<Backend>, T), ClientError>
    where
        F: Fn(SandboxClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut tried = Vec::new();
        let mut last = None;
        while let Some(backend) = self.pick(&tried) {
            let result = {
                let _counted = InFlight::enter(&backend.in_flight);
                op(backend.client.clone()).await
            };
            match result {
                Err(error @ ClientError::Unreachable { .. }) => {
                    backend.fail(&error);
                    tried.push(backend.url().to_owned());
                    last = Some(error);
                }
                // E.g. busy or stopping: not run there, and not a fault to eject it for.
                Err(error) if elsewhere(&error) => {
                    tried.push(backend.url().to_owned());
                    last = Some(error);
                }
                Err(error @ (ClientError::Broken { .. } | ClientError::Timeout { .. })) => {
                    backend.fail(&error);
                    return Err(error);
                }
                Err(error) => return Err(error),
                Ok(value) => return Ok((backend, value)),
            }
        }
        Err(last.unwrap_or_else(|| self.none_usable()))
    }

    fn none_usable(&self) -> ClientError {
        let urls: Vec<String> = self.snapshot().iter().map(|b| b.url().to_owned()).collect();
        ClientError::Unreachable {
            url: if urls.is_empty() {
                self.inner
                    .seeds
                    .iter()
                    .map(|s| s.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                urls.join(", ")
            },
            detail: "no sandbox is ready".into(),
        }
    }

    /// Install on every sandbox that is up; one outcome that says what each answered.
    pub async fn install(&self, request: &InstallRequest) -> Result<InstallOutcome, ClientError> {
        let now = Instant::now();
        let targets: Vec<Arc<Backend>> = self
            .snapshot()
            .into_iter()
            .filter(|b| b.usable(now))
            .collect();
        if targets.is_empty() {
            return Err(self.none_usable());
        }
        let results =
            futures::future::join_all(targets.iter().map(|b| b.client.install(request))).await;
        if targets.len() == 1 {
            return results
                .into_iter()
                .next()
                .unwrap_or_else(|| Err(self.none_usable()));
        }
        let mut outcomes = Vec::new();
        let mut errors = Vec::new();
        for (backend, result) in targets.iter().zip(results) {
            match result {
                Ok(outcome) => {
                    if outcome.status == InstallStatus::Installed {
                        backend
                            .state()
                            .installed
                            .extend(outcome.installed.iter().cloned());
                    }
                    outcomes.push((backend.url().to_owned(), outcome));
                }
                Err(error) => errors.push((backend.url().to_owned(), error)),
            }
        }
        if outcomes.is_empty() {
            return Err(errors
                .into_iter()
                .next()
                .map_or_else(|| self.none_usable(), |(_, error)| error));
        }
        Ok(combine(outcomes, errors))
    }

    async fn probe_all(&self) {
        self.resolve().await;
        let backends = self.snapshot();
        futures::future::join_all(backends.iter().map(|b| self.probe(b))).await;
        self.level(&backends);
    }

    /// Re-resolve the seeds that name a set of sandboxes; drop addresses that are gone.
    async fn resolve(&self) {
        for seed in self.inner.seeds.iter().filter(|s| s.resolve) {
            let Ok(parsed) = reqwest::Url::parse(&seed.url) else {
                continue;
            };
            let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default())
            else {
                continue;
            };
            let Ok(addresses) = tokio::net::lookup_host((host, port)).await else {
                tracing::warn!(url = %seed.url, "cannot resolve the sandboxes' name");
                continue;
            };
            // The sandbox admits requests by the name it was given (its allowed hosts), so
            // each address is asked under the name, with the port as the URL wrote it.
            let named = match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            let Ok(named) = reqwest::header::HeaderValue::from_str(&named) else {
                continue;
            };
            let urls: BTreeSet<String> = addresses
                .map(|addr| {
                    let mut url = parsed.clone();
                    // An IP address always fits a URL's host.
                    let _ = url.set_ip_host(addr.ip());
                    url.as_str().trim_end_matches('/').to_owned()
                })
                .collect();
            for url in &urls {
                self.add(url.clone(), false, Some(&named));
            }
            let base = parsed.as_str().trim_end_matches('/').to_owned();
            self.backends()
                .retain(|url, _| urls.contains(url) || !same_seed(url, &base, port));
        }
    }

    async fn probe(&self, backend: &Backend) {
        let started = Instant::now();
        let ready = backend.client.ready().await;
        let installed = match &ready {
            Ok(_) => backend.client.installed().await.ok(),
            Err(_) => None,
        };
        let mut state = backend.state();
        match ready {
            Ok(body) => {
                state.ready = true;
                state.failures = 0;
                state.ejected_until = None;
                state.last_error = None;
                state.idle = body["dependencies"]["pool"]["detail"]["idle"].as_u64();
                if let Some(installed) = installed {
                    state.installed = installed.into_iter().collect();
                }
            }
            Err(error) => {
                state.ready = false;
                state.last_error = Some(error.to_string());
                tracing::debug!(sandbox = %backend.url(), %error, took = ?started.elapsed(), "sandbox not ready");
            }
        }
    }

    /// Send each ready sandbox the pins others have and it lacks, one install at a time.
    fn level(&self, backends: &[Arc<Backend>]) {
        let union = installed_anywhere(backends);
        for backend in backends {
            let missing: Vec<String> = {
                let mut state = backend.state();
                if !state.ready || state.syncing {
                    continue;
                }
                let missing: Vec<String> = union.difference(&state.installed).cloned().collect();
                if missing.is_empty() {
                    continue;
                }
                state.syncing = true;
                missing
            };
            let backend = backend.clone();
            tokio::spawn(async move {
                for pin in missing {
                    let (name, version) = pin.split_once("==").unwrap_or((pin.as_str(), ""));
                    let request = InstallRequest {
                        package: name.to_owned(),
                        version: (!version.is_empty()).then(|| version.to_owned()),
                    };
                    match backend.client.install(&request).await {
                        Ok(outcome) if outcome.status == InstallStatus::Installed => {
                            tracing::info!(sandbox = %backend.url(), %pin, "installed to match the other sandboxes");
                            backend.state().installed.extend(outcome.installed);
                        }
                        Ok(outcome) => {
                            tracing::warn!(sandbox = %backend.url(), %pin, message = %outcome.message, "cannot install a package the other sandboxes have")
                        }
                        Err(error) => {
                            tracing::warn!(sandbox = %backend.url(), %pin, %error, "cannot install a package the other sandboxes have")
                        }
                    }
                }
                backend.state().syncing = false;
            });
        }
    }

    /// For `/ready`: whether any sandbox can take an execution, and each one's state.
    pub fn describe(&self) -> (bool, serde_json::Value) {
        let now = Instant::now();
        let all = self.snapshot();
        let union = installed_anywhere(&all);
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|b| {
                let state = b.state();
                serde_json::json!({
                    "url": b.url(),
                    "ready": state.ready,
                    "ejected_for_ms": state.ejected_until.map(|u| u.saturating_duration_since(now).as_millis()),
                    "idle": state.idle,
                    "in_flight": b.in_flight.load(Ordering::Relaxed),
                    "missing_packages": union.difference(&state.installed).collect::<Vec<_>>(),
                    "last_error": state.last_error,
                })
            })
            .collect();
        (
            all.iter().any(|b| b.usable(now)),
            serde_json::json!({ "sandboxes": list }),
        )
    }
}

/// Every pin some sandbox of `backends` has: what each should have to be level.
fn installed_anywhere(backends: &[Arc<Backend>]) -> BTreeSet<String> {
    backends
        .iter()
        .flat_map(|b| b.state().installed.clone())
        .collect()
}

/// Whether `url` came from the seed `base` (same scheme, port and path; any address).
fn same_seed(url: &str, base: &str, port: u16) -> bool {
    let (Ok(url), Ok(base)) = (reqwest::Url::parse(url), reqwest::Url::parse(base)) else {
        return false;
    };
    url.scheme() == base.scheme()
        && url.port_or_known_default() == Some(port)
        && url.path() == base.path()
}

/// One outcome for an install sent to several sandboxes: installed only when every sandbox
/// installed it; otherwise the first other answer, with what each sandbox said.
fn combine(
    outcomes: Vec<(String, InstallOutcome)>,
    errors: Vec<(String, ClientError)>,
) -> InstallOutcome {
    let all_installed = errors.is_empty()
        && outcomes
            .iter()
            .all(|(_, o)| o.status == InstallStatus::Installed);
    let summary: Vec<String> = outcomes
        .iter()
        .map(|(url, o)| format!("{url}: {}", o.message))
        .chain(errors.iter().map(|(url, e)| format!("{url}: {e}")))
        .collect();
    let mut chosen = outcomes
        .iter()
        .find(|(_, o)| (o.status != InstallStatus::Installed) || all_installed)
        .map(|(_, o)| o.clone())
        .unwrap_or_else(|| InstallOutcome {
            status: InstallStatus::Failed,
            package: String::new(),
            version: None,
            reason: Some("no sandbox answered".into()),
            approval_id: None,
            installed: Vec::new(),
            message: String::new(),
        });
    if !all_installed && chosen.status == InstallStatus::Installed {
        chosen.status = InstallStatus::Failed;
    }
    chosen.message = if all_installed {
        format!("{} (on all {} sandboxes)", chosen.message, outcomes.len())
    } else {
        format!("Not installed on every sandbox. {}", summary.join(" | "))
    };
    chosen
}
