//! The shared store: a Redis server that several gateway replicas use, so what one stored the
//! others answer from. `GET` to look up, `SET … PX` (the TTL in milliseconds, so fractional
//! TTLs hold) to store; Redis drops expired keys itself. Values are the results as JSON.
//!
//! A failing dependency degrades one feature, never the process: every operation is bounded
//! by [`TIMEOUT`], and after a failure the store is left alone for [`RETRY_AFTER`] (calls meanwhile
//! go to their upstreams as if uncached, each counted as an error), then connected again on
//! the next use. One multiplexed connection carries every concurrent operation.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use ::redis::{AsyncConnectionConfig, Client, aio::MultiplexedConnection};

use super::key::Key;
use crate::config::RedisSettings;

/// Longest a lookup or a write may take. A Redis on the same network answers in well under a
/// millisecond; one slower than this is treated as down rather than slowing every cached call.
pub const TIMEOUT: Duration = Duration::from_millis(250);
/// How long the store is left alone after it failed: a Redis that is down costs the calls
/// meanwhile nothing, and is tried again at most this often.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct Redis {
    client: Client,
    prefix: String,
    /// The connection when there is one, and when to try again when there is none. A
    /// synchronous lock, held only to copy or replace these (never across an await).
    state: Mutex<State>,
    /// Connecting happens once at a time; others wait for it (within their own timeout).
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    connection: Option<MultiplexedConnection>,
    retry_at: Option<Instant>,
    /// Why the last operation failed, until one succeeds (for `/ready`).
    error: Option<String>,
}

/// The store could not be used: it failed now (why is kept for `/ready` and logged once), or
/// failed recently and is resting.
#[derive(Debug)]
pub struct Unavailable;

impl Redis {
    pub fn new(settings: &RedisSettings) -> Result<Self, String> {
        let client = Client::open(settings.url.expose())
            .map_err(|e| e.detail().unwrap_or(e.category()).to_owned())?;
        Ok(Self {
            client,
            prefix: settings.prefix.clone(),
            state: Mutex::default(),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Only assignments happen under the lock: a panic cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, key: &Key) -> String {
        format!("{}{}", self.prefix, key.hex())
    }

    /// The stored result under `key`, as JSON; `None` when there is none.
    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, Unavailable> {
        let command = ::redis::cmd("GET").arg(self.key(key)).clone();
        self.run(command).await
    }

    /// Store `value` under `key` for `ttl`.
    pub async fn set(&self, key: &Key, value: &[u8], ttl: Duration) -> Result<(), Unavailable> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let command = ::redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis)
            .clone();
        self.run::<()>(command).await
    }

    /// Connect now (at start, so `/ready` tells at once whether Redis is reachable).
    pub async fn connect(&self) {
        let _ = self.connection().await;
    }

    /// `None` when the last operation succeeded; else why it failed.
    pub fn error(&self) -> Option<String> {
        self.state().error.clone()
    }

    async fn run<T: ::redis::FromRedisValue>(
        &self,
        command: ::redis::Cmd,
    ) -> Result<T, Unavailable> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(TIMEOUT, command.query_async::<T>(&mut connection)).await {
            Ok(Ok(value)) => {
                self.state().error = None;
                Ok(value)
            }
            Ok(Err(error)) => Err(self.failed(error.to_string())),
            Err(_elapsed) => {
                Err(self.failed(format!("no answer within {} ms", TIMEOUT.as_millis())))
            }
        }
    }

    /// The connection, connecting if there is none and the store is not resting.
    async fn connection(&self) -> Result<MultiplexedConnection, Unavailable> {
        if let Some(connection) = self.usable()? {
            return Ok(connection);
        }
        let _one_at_a_time = self.connecting.lock().await;
        // Someone else may have connected (or failed) while this call waited.
        if let Some(connection) = self.usable()? {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let connect = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(TIMEOUT, connect).await {
            Ok(Ok(connection)) => {
                let mut state = self.state();
                state.connection = Some(connection.clone());
                state.retry_at = None;
                state.error = None;
                tracing::info!("result cache: connected to Redis");
                Ok(connection)
            }
            Ok(Err(error)) => Err(self.failed(format!("cannot connect: {error}"))),
            Err(_elapsed) => {
                Err(self.failed(format!("cannot connect within {} ms", TIMEOUT.as_millis())))
            }
        }
    }

    /// The current connection, `None` to connect now, or resting.
    fn usable(&self) -> Result<Option<MultiplexedConnection>, Unavailable> {
        let state = self.state();
        match (&state.connection, state.retry_at) {
            (Some(connection), _) => Ok(Some(connection.clone())),
            (None, Some(at)) if Instant::now() < at => Err(Unavailable),
            (None, _) => Ok(None),
        }
    }

    /// Forget the connection and rest; logged when the store was fine until now.
    fn failed(&self, why: String) -> Unavailable {
        let mut state = self.state();
        if state.error.is_none() {
            tracing::warn!(error = %why, retry_after_seconds = RETRY_AFTER.as_secs_f64(), "result cache: Redis failed; calls go to their upstreams uncached until it answers again");
        }
        state.connection = None;
        state.retry_at = Some(Instant::now() + RETRY_AFTER);
        state.error = Some(why);
        Unavailable
    }
}
