//! The call path of one request: circuit breaker, the session it goes on, a concurrency
//! slot, the direct path ([`super::exchange`]) or rmcp's, and the answer, the call timeout or
//! the caller's cancellation, whichever comes first. A timeout or cancellation is passed on to
//! the upstream as `notifications/cancelled`.

use rmcp::{
    Peer, RoleClient,
    model::{
        CancelledNotificationParam, ClientRequest, GetMeta, NumberOrString, ProgressToken,
        RequestId, ServerResult,
    },
    service::{PeerRequestOptions, ServiceError},
};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{
    Owner, Session, Status, Upstream,
    exchange::{self, Exchange},
    handler::Caller,
};
use crate::error::CallError;

impl Upstream {
    /// Send `request` to this upstream for `owner` — on its own session of a stateful upstream,
    /// opened now if need be — and `caller` (None for REST callers), within the call timeout,
    /// giving up when `ct` is cancelled.
    pub async fn request(
        &self,
        request: ClientRequest,
        owner: &Owner,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<ServerResult, CallError> {
        let deadline = tokio::time::Instant::now() + self.config.call_timeout;
        self.guarded(async {
            let peer = caller.as_ref().map(|c| &c.peer);
            // Opening the owner's session counts against the call's time.
            let session = tokio::time::timeout_at(deadline, self.session_of(owner, peer, ct))
                .await
                .map_err(|_elapsed| self.timeout())??;
            self.send(&session, request, caller, ct, deadline).await
        })
        .await
    }

    /// Send `request` on `session` (an unsubscription goes where its subscription went).
    pub(crate) async fn request_on(
        &self,
        session: &Session,
        request: ClientRequest,
        ct: &CancellationToken,
    ) -> Result<ServerResult, CallError> {
        let deadline = tokio::time::Instant::now() + self.config.call_timeout;
        self.guarded(self.send(session, request, None, ct, deadline))
            .await
    }

    /// Run `call` past the circuit breaker, and tell the breaker how it went.
    async fn guarded(
        &self,
        call: impl Future<Output = Result<ServerResult, CallError>>,
    ) -> Result<ServerResult, CallError> {
        let ticket = self
            .breaker
            .admit()
            .map_err(|rejected| CallError::CircuitOpen {
                upstream: self.config.name.clone(),
                retry_in: rejected.retry_in,
            })?;
        let result = call.await;
        match &result {
            Err(error) if error.is_upstream_failure() => {
                if ticket.failure() {
                    tracing::warn!(upstream = %self.name, %error, cooldown_seconds = self.config.breaker.cooldown.as_secs_f64(), "circuit breaker opened");
                }
                self.check_now.notify_one();
            }
            Err(CallError::Cancelled | CallError::Down { .. } | CallError::SessionLimit { .. }) => {
                drop(ticket)
            }
            _ => ticket.success(),
        }
        self.metrics.set_circuit(self.breaker.state());
        result
    }

    async fn send(
        &self,
        session: &Session,
        mut request: ClientRequest,
        caller: Option<Caller>,
        ct: &CancellationToken,
        deadline: tokio::time::Instant,
    ) -> Result<ServerResult, CallError> {
        // The slot goes with the request: a request cancelled or dropped frees it only once
        // the upstream has the notice (see `Pending`).
        let mut slot = tokio::select! {
            biased;
            () = ct.cancelled() => return Err(CallError::Cancelled),
            permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()) => match permit {
                Ok(Ok(permit)) => Some(permit),
                Ok(Err(_closed)) => return Err(self.down()),
                Err(_elapsed) => return Err(self.timeout()),
            },
        };
        // The upstream's span becomes a child of the current one (the gateway's tool call).
        switchboard_protocol::mcp_trace::inject_request(&mut request);
        // A custom request's answer is read raw, which only the direct path does
        // (`super::tasks`): when the session expired, rmcp renews it on a ping and the
        // request goes direct again.
        let raw = matches!(request, ClientRequest::CustomRequest(_));
        if raw && let Some(lane) = &session.lane {
            return self.send_lane(lane, request, ct, deadline).await;
        }
        for attempt in 0..=usize::from(raw) {
            if attempt > 0 {
                let renewed =
                    tokio::time::timeout_at(deadline, super::lists::ping(session.client.peer()));
                if !matches!(renewed.await, Ok(Ok(()))) {
                    break;
                }
            }
            if let Some(link) = session.direct.link() {
                match self
                    .send_direct(
                        session,
                        &link,
                        &mut request,
                        &caller,
                        ct,
                        deadline,
                        &mut slot,
                    )
                    .await
                {
                    Some(result) => return result,
                    None => {
                        tracing::debug!(upstream = %self.name, "session expired; rmcp re-initializes it")
                    }
                }
            }
        }
        if raw {
            return Err(CallError::Transport {
                upstream: self.config.name.clone(),
                message: "tasks go only to a stdio upstream or one over Streamable HTTP with a live session"
                    .to_owned(),
            });
        }
        self.send_rmcp(session, request, caller, ct, deadline, slot)
            .await
    }

    /// The direct path ([`exchange`]); `None` when the upstream no longer knows the session,
    /// and nothing ran (then `slot` is given back).
    #[allow(clippy::too_many_arguments)] // One call site; a struct would only rename them.
    async fn send_direct(
        &self,
        session: &Session,
        link: &std::sync::Arc<exchange::Link>,
        request: &mut ClientRequest,
        caller: &Option<Caller>,
        ct: &CancellationToken,
        deadline: tokio::time::Instant,
        slot: &mut Option<OwnedSemaphorePermit>,
    ) -> Option<Result<ServerResult, CallError>> {
        let number = session.direct.next_id();
        let id = RequestId::Number(number);
        // Registered under its own number (for log routing) whether or not the caller asked
        // for progress; the upstream is asked for progress only if the caller was.
        let _registration = caller.as_ref().map(|caller| {
            let token = ProgressToken(NumberOrString::Number(number));
            if caller.progress_token.is_some() {
                request.get_meta_mut().set_progress_token(token.clone());
            }
            session.routes.register(token, caller.clone())
        });
        let mut pending = Pending {
            peer: session.client.peer(),
            id: Some(id.clone()),
            slot: slot.take(),
        };
        let exchange = session.direct.exchange(link, &id, request, &session.routes);
        let outcome = tokio::select! {
            biased;
            outcome = exchange => outcome,
            () = ct.cancelled() => {
                pending.cancel_now("cancelled by the client").await;
                return Some(Err(CallError::Cancelled));
            }
            () = tokio::time::sleep_until(deadline) => {
                pending.cancel("timed out at the gateway");
                return Some(Err(self.timeout()));
            }
        };
        pending.id = None;
        match outcome {
            Exchange::Answered(Ok(result)) => Some(Ok(result)),
            Exchange::Answered(Err(error)) => Some(Err(CallError::Upstream {
                upstream: self.config.name.clone(),
                error,
            })),
            Exchange::SessionExpired => {
                *slot = pending.slot.take();
                None
            }
            Exchange::Failed(message) => Some(Err(CallError::Transport {
                upstream: self.config.name.clone(),
                message,
            })),
        }
    }

    /// A stdio upstream's raw lane ([`super::stdio_lane`]): the answer as the program wrote
    /// it. Task requests only, which report no progress and are quick to answer; one the
    /// caller gives up on is not cancelled upstream (its answer is dropped).
    async fn send_lane(
        &self,
        lane: &super::stdio_lane::Lane,
        request: ClientRequest,
        ct: &CancellationToken,
        deadline: tokio::time::Instant,
    ) -> Result<ServerResult, CallError> {
        let answer = tokio::select! {
            biased;
            answer = lane.exchange(request) => answer,
            () = ct.cancelled() => return Err(CallError::Cancelled),
            () = tokio::time::sleep_until(deadline) => return Err(self.timeout()),
        };
        match answer {
            Ok(Ok(result)) => Ok(ServerResult::CustomResult(rmcp::model::CustomResult(
                result,
            ))),
            Ok(Err(error)) => Err(CallError::Upstream {
                upstream: self.config.name.clone(),
                error,
            }),
            Err(message) => Err(CallError::Transport {
                upstream: self.config.name.clone(),
                message,
            }),
        }
    }

    /// rmcp's path: through the session's service loop and transport worker.
    async fn send_rmcp(
        &self,
        session: &Session,
        request: ClientRequest,
        caller: Option<Caller>,
        ct: &CancellationToken,
        deadline: tokio::time::Instant,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<ServerResult, CallError> {
        let peer = session.client.peer();
        let mut handle = peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| self.transport(&e))?;
        let _registration =
            caller.map(|c| session.routes.register(handle.progress_token.clone(), c));
        let mut pending = Pending {
            peer,
            id: Some(handle.id.clone()),
            slot,
        };
        let answer = tokio::select! {
            biased;
            answer = &mut handle.rx => answer,
            () = ct.cancelled() => {
                // Told before the slot is freed, so the slot bounds what the upstream runs.
                pending.cancel_now("cancelled by the client").await;
                return Err(CallError::Cancelled);
            }
            () = tokio::time::sleep_until(deadline) => {
                pending.cancel("timed out at the gateway");
                return Err(self.timeout());
            }
        };
        pending.id = None;
        match answer {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(ServiceError::McpError(error))) => Err(CallError::Upstream {
                upstream: self.config.name.clone(),
                error,
            }),
            Ok(Err(error)) => Err(self.transport(&error)),
            Err(_dropped) => Err(CallError::Transport {
                upstream: self.config.name.clone(),
                message: "the session closed before the answer came".to_owned(),
            }),
        }
    }

    pub(super) fn down(&self) -> CallError {
        let state = self.state.borrow();
        CallError::Down {
            upstream: self.config.name.clone(),
            reason: match (&state.status, &state.error) {
                (_, Some(error)) => error.clone(),
                (Status::Connecting, None) => "not connected yet".to_owned(),
                _ => "not connected".to_owned(),
            },
        }
    }

    pub(super) fn timeout(&self) -> CallError {
        CallError::Timeout {
            upstream: self.config.name.clone(),
            timeout: self.config.call_timeout,
        }
    }

    pub(super) fn transport(&self, error: &ServiceError) -> CallError {
        CallError::Transport {
            upstream: self.config.name.clone(),
            message: crate::error::root_cause(error),
        }
    }
}

/// An upstream request that has been sent but not answered: cancelling it (explicitly or by
/// being dropped with the caller's future) tells the upstream with `notifications/cancelled`.
///
/// It holds the request's slot among the upstream's `max_concurrent_calls`, and frees it only
/// once the upstream has the notice (or after [`CANCEL_NOTICE_TIMEOUT`]), also when dropped:
/// a client that cancels by closing its connection drops the call's future, and freeing the
/// slot then let the next call reach the upstream before the notice, which ran two at once
/// (`tests/faults.rs`, `concurrency_is_bounded_per_upstream`, failed that way under load).
struct Pending<'a> {
    peer: &'a Peer<RoleClient>,
    id: Option<RequestId>,
    slot: Option<OwnedSemaphorePermit>,
}

/// How long a cancellation waits for the upstream to take the notice (the slot is held
/// meanwhile, so the slot bounds what the upstream runs); past it the slot is freed, as the
/// upstream is probably unwell.
const CANCEL_NOTICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Pending<'_> {
    async fn cancel_now(&mut self, reason: &str) {
        if let Some(id) = self.id.take() {
            let params = CancelledNotificationParam::new(Some(id), Some(reason.to_owned()));
            let notice =
                tokio::time::timeout(CANCEL_NOTICE_TIMEOUT, self.peer.notify_cancelled(params));
            if !matches!(notice.await, Ok(Ok(()))) {
                tracing::debug!("cancellation not delivered upstream in time");
            }
        }
    }

    /// Tell the upstream in the background; the slot is freed when it has the notice.
    fn cancel(&mut self, reason: &str) {
        if let Some(id) = self.id.take() {
            let peer = self.peer.clone();
            let slot = self.slot.take();
            let params = CancelledNotificationParam::new(Some(id), Some(reason.to_owned()));
            tokio::spawn(async move {
                let notice =
                    tokio::time::timeout(CANCEL_NOTICE_TIMEOUT, peer.notify_cancelled(params));
                if !matches!(notice.await, Ok(Ok(()))) {
                    tracing::debug!("cancellation not delivered upstream in time");
                }
                drop(slot);
            });
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.cancel("the caller went away");
    }
}
