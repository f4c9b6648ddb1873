//! Services running in the test's process: [`spawn`] starts any [`Service`] on `127.0.0.1:0`
//! and returns once it answers `/ready`; [`Spawn`] changes the address, waits for `/health`
//! instead (for a service a test expects not to be ready), or serves a future the test built
//! itself (when it keeps a handle into the service). Dropping the [`Running`] stops it.
//!
//! The harness binds the listener itself and hands it to the service, so the `listen` address
//! in a service's config is never used here.

use std::{future::Future, net::SocketAddr, time::Duration};

use switchboard_runtime::{Error, Service};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// Longest the harness waits for a service to come up or to stop (a deadline, never a clock
/// the test relies on: it returns as soon as the service answers).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Serve `S` with `config` on `127.0.0.1:0` and wait until its `/ready` answers 200.
pub async fn spawn<S: Service>(config: S::Config) -> Running {
    Spawn::new().service::<S>(config).await
}

/// What the service must answer before [`Spawn`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `GET /ready` is 200: every dependency is there.
    Ready,
    /// `GET /health` is 200: it serves, whatever its dependencies (for a test that starts it
    /// with a dependency down, or watches it become ready).
    Healthy,
}

impl Until {
    fn path(self) -> &'static str {
        match self {
            Until::Ready => "/ready",
            Until::Healthy => "/health",
        }
    }
}

/// How to start a service: where to listen and what to wait for.
#[derive(Debug, Clone, Copy)]
pub struct Spawn {
    addr: SocketAddr,
    until: Until,
}

impl Default for Spawn {
    fn default() -> Self {
        Self::new()
    }
}

impl Spawn {
    /// `127.0.0.1:0`, until `/ready`.
    pub fn new() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            until: Until::Ready,
        }
    }

    /// Listen on `addr` instead (e.g. the port of a service the test stopped, to restart it).
    pub fn at(self, addr: SocketAddr) -> Self {
        Self { addr, ..self }
    }

    /// Wait for `until` instead of `/ready`.
    pub fn until(self, until: Until) -> Self {
        Self { until, ..self }
    }

    /// Serve `S` with `config`.
    pub async fn service<S: Service>(self, config: S::Config) -> Running {
        self.serve(S::NAME, CancellationToken::new(), |listener, shutdown| {
            S::serve(listener, config, shutdown)
        })
        .await
    }

    /// Serve what `serve` returns for the bound listener, stopping when `shutdown` is cancelled
    /// (the test passes its own token when it started parts of the service with child tokens
    /// of it). `name` is for failure messages.
    pub async fn serve<F, Fut>(self, name: &str, shutdown: CancellationToken, serve: F) -> Running
    where
        F: FnOnce(TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let listener = TcpListener::bind(self.addr)
            .await
            .unwrap_or_else(|e| panic!("{name}: cannot listen on {}: {e}", self.addr));
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let task = tokio::spawn(serve(listener, shutdown.clone()));
        let mut running = Running {
            name: name.to_owned(),
            addr,
            shutdown,
            task: Some(task),
        };
        running.wait_until(self.until).await;
        running
    }
}

/// A service running in this process; dropping it cancels its shutdown token.
pub struct Running {
    name: String,
    addr: SocketAddr,
    shutdown: CancellationToken,
    /// `None` only once [`Running::shutdown`] took it.
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its MCP endpoint, `http://ADDR/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stop it abruptly, as a crash would: its task is aborted, so open connections break and
    /// requests in flight get no answer.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Stop it and wait until it has stopped (its listener closed, its own clean-up done):
    /// what serving returned. Panics if it does not stop within [`PATIENCE`] or panicked.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.shutdown.cancel();
        let task = self.task.take().expect("the task is taken only here");
        tokio::time::timeout(PATIENCE, task)
            .await
            .unwrap_or_else(|_| panic!("{} did not stop within {PATIENCE:?}", self.name))
            .unwrap_or_else(|e| panic!("{} panicked: {e}", self.name))
    }

    /// Poll `until`'s endpoint until it answers 200. Polling is right here: the service alone
    /// decides when it is ready, and the endpoint is where it says so. Fails at once if the
    /// service stops first (a refused start: the error is in the message).
    async fn wait_until(&mut self, until: Until) {
        let deadline = Instant::now() + PATIENCE;
        let mut delay = Duration::from_millis(2);
        loop {
            let task = self
                .task
                .as_mut()
                .expect("the task is taken only by shutdown");
            if task.is_finished() {
                let outcome = match task.await {
                    Ok(Ok(())) => "without an error".to_owned(),
                    Ok(Err(e)) => format!("with: {e}"),
                    Err(e) => format!("by panicking: {e}"),
                };
                panic!(
                    "{} stopped before {} was 200, {outcome}",
                    self.name,
                    until.path()
                );
            }
            let last = match status(self.addr, until.path()).await {
                Ok(200) => return,
                Ok(code) => format!("status {code}"),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{} {} was not 200 within {PATIENCE:?} (last: {last})",
                self.name,
                until.path()
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }
}

/// The status code of `GET path` on `addr`. A bare HTTP/1.1 exchange: only the status line
/// matters, and it keeps the harness free of an HTTP client of its own.
async fn status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    // "HTTP/1.1 200 OK"
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))
}

/// `GET url` until its body contains `needle` (a counter in `/metrics`, say), polled until
/// `patience` runs out; the body that had it.
pub async fn until_contains(url: &str, needle: &str, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        let body = match reqwest::get(url).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => error.to_string(),
        };
        if body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not show {needle} within {patience:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use axum::{Router, http::StatusCode, routing::get};

    use super::*;

    /// `/health` always 200; `/ready` 503 for the first `not_ready` requests, then 200.
    fn app(not_ready: usize, asked: Arc<AtomicUsize>) -> Router {
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(
                "/ready",
                get(move || {
                    let ready = asked.fetch_add(1, Ordering::SeqCst) >= not_ready;
                    async move {
                        if ready {
                            StatusCode::OK
                        } else {
                            StatusCode::SERVICE_UNAVAILABLE
                        }
                    }
                }),
            )
    }

    async fn serve_app(spawn: Spawn, not_ready: usize, asked: Arc<AtomicUsize>) -> Running {
        spawn
            .serve(
                "test",
                CancellationToken::new(),
                move |listener, shutdown| {
                    let app = app(not_ready, asked);
                    async move {
                        let http = switchboard_runtime::HttpSettings::default()
                            .with_shutdown_grace(Duration::ZERO);
                        switchboard_runtime::serve(listener, app, shutdown, &http).await
                    }
                },
            )
            .await
    }

    #[tokio::test]
    async fn keeps_asking_until_ready() {
        let asked = Arc::new(AtomicUsize::new(0));
        let running = serve_app(Spawn::new(), 3, asked.clone()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        assert_eq!(
            status(running.addr(), "/ready").await.expect("answers"),
            200
        );
    }

    #[tokio::test]
    async fn healthy_is_enough_when_asked_and_shutdown_closes_the_port() {
        let asked = Arc::new(AtomicUsize::new(0));
        let running = serve_app(Spawn::new().until(Until::Healthy), 1, asked.clone()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 0, "/ready was not asked");
        assert_eq!(
            status(running.addr(), "/ready").await.expect("answers"),
            503
        );
        assert!(running.mcp_url().starts_with(&running.url()));
        let addr = running.addr();
        running.shutdown().await.expect("served cleanly");
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    #[should_panic(expected = "refused stopped before /ready was 200, with:")]
    async fn a_refused_start_fails_at_once_with_its_error() {
        Spawn::new()
            .serve("refused", CancellationToken::new(), |_, _| async {
                Err(Error::Config("no isolation here".into()))
            })
            .await;
    }
}
