//! Multi-round-trip tool calls (MCP 2026-07-28, `InputRequiredResult`) over upstreams that ask
//! their client mid-call instead (sampling, elicitation, roots: server→client requests of
//! 2025-era sessions).
//!
//! A client on 2026-07-28 has no stream on which the gateway could send it a request. So its
//! call carries a channel for them; a request the upstream sends meanwhile
//! ([`crate::upstream::client_requests::InputSink`]) ends the client's HTTP request with an
//! `InputRequiredResult`: the upstream's requests as `inputRequests` under keys of the
//! gateway's making, and a `requestState` naming the call, parked on a task of its own. The client answers by
//! calling the tool again with `inputResponses` and that `requestState`: the answers go to the
//! waiting upstream, and the retry waits for what comes next (the result, or another round).
//!
//! The parked call lives in this process: a retry that reaches another gateway replica is
//! answered "unknown requestState" (2026-07-28 requests are otherwise stateless; see
//! deploy/README.md). A parked call nobody resumes within [`PARK_TIMEOUT`] is cancelled, and
//! its upstream hears that its requests went unanswered. A `requestState` belongs to the
//! caller ([`Owner`]) and tool that made it.

use std::{
    collections::{BTreeMap, HashMap, hash_map::Entry},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{
    ErrorData as McpError,
    model::{ClientCapabilities, InputRequests, InputRequiredResult, InputResponses},
};
use serde_json::Value;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::upstream::{
    Owner,
    client_requests::{Ask, InputSink, declares_any},
    handler::Caller,
};

/// How a `requestState` of the gateway's own begins; any other belongs to the upstream (a
/// 2026-07-28 upstream's own rounds pass through the gateway untouched).
const STATE_PREFIX: &str = "io.switchboard.round.";

/// Whether `state` is one the gateway issued (else it goes to the upstream with the retry).
pub fn is_ours(state: &str) -> bool {
    state.starts_with(STATE_PREFIX)
}

/// How a 2026-07-28 request is served in rounds ([`applies`], [`run`]).
pub enum Rounds {
    /// A new call; its client declared these capabilities (which of its upstream's requests
    /// it can answer).
    Start(ClientCapabilities),
    /// A retry carrying a `requestState` of the gateway's, with its `inputResponses`.
    Resume(String, InputResponses),
}

/// Whether a request is served in rounds, and how. A retry's `requestState` of the gateway's
/// is taken out of `state` with its `answers` (an upstream's own state stays and goes along).
///
/// `None`, no rounds: a request of a session (its client is asked on its own stream), and a
/// 2026-07-28 request whose client declared none of sampling, elicitation and roots and that
/// resumes nothing. Every request its upstream might make would be refused as "not
/// supported" either way (the peer of a stateless request declares none of them), so such a
/// call skips the rounds' channel, cancellation token and boxed future.
pub fn applies(
    context: &rmcp::service::RequestContext<rmcp::RoleServer>,
    state: &mut Option<String>,
    answers: &mut Option<InputResponses>,
) -> Option<Rounds> {
    let modern = context
        .protocol_version()
        .is_some_and(|v| !v.has_initialize());
    if !modern {
        return None;
    }
    if let Some(state) = state.take_if(|state| is_ours(state)) {
        return Some(Rounds::Resume(state, answers.take().unwrap_or_default()));
    }
    context
        .client_capabilities()
        .filter(declares_any)
        .map(Rounds::Start)
}

/// Serve a request of a 2026-07-28 client for `target` (a tool, resource or prompt): resume
/// the round `rounds` names, or run `call` — given the caller, now carrying an
/// [`InputSink`], and the token that stops it — collecting its upstream's requests as rounds.
pub async fn run<T, F, Fut>(
    parked: &Arc<InputRounds<T>>,
    context: &rmcp::service::RequestContext<rmcp::RoleServer>,
    owner: Owner,
    target: String,
    mut caller: Caller,
    rounds: Rounds,
    call: F,
) -> Outcome<T>
where
    T: From<InputRequiredResult> + Send + 'static,
    F: FnOnce(Caller, CancellationToken) -> Fut,
    Fut: Future<Output = Outcome<T>> + Send + 'static,
{
    let capabilities = match rounds {
        Rounds::Resume(state, answers) => {
            return parked
                .resume(&state, answers, &owner, &target, &context.ct)
                .await;
        }
        Rounds::Start(capabilities) => capabilities,
    };
    let (sink, asks) = InputSink::new(capabilities);
    caller.input = Some(sink);
    let stop = CancellationToken::new();
    let call = call(caller, stop.clone());
    parked
        .start(call, asks, stop, owner, target, &context.ct)
        .await
}

/// Longest a call waits parked for the client's answers.
pub const PARK_TIMEOUT: Duration = Duration::from_secs(300);
/// Most calls parked at once (every caller together); past it a new round fails the call.
const MAX_PARKED: usize = 1024;

/// What a request answers: `CallToolResponse`, `ReadResourceResponse` or
/// `GetPromptResponse`, each of which may be a round.
type Outcome<T> = Result<T, McpError>;

/// A call that runs on its own task, with the requests its upstream makes.
struct Running<T> {
    call: JoinHandle<Outcome<T>>,
    asks: mpsc::UnboundedReceiver<Ask>,
    /// Stops the call (its upstream request is cancelled).
    stop: CancellationToken,
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        // Dropped without an outcome (expired, the client went away): stop the call.
        self.stop.cancel();
    }
}

/// A call waiting for the client's answers.
struct Parked<T> {
    owner: Owner,
    /// The tool, resource or prompt the call is for.
    target: String,
    running: Running<T>,
    /// The requests not answered yet: what was asked, and where the answer goes.
    waiting: BTreeMap<String, (rmcp::model::InputRequest, oneshot::Sender<Value>)>,
    until: Instant,
}

/// The parked calls of this gateway process, of one kind of request.
pub struct InputRounds<T> {
    parked: Mutex<HashMap<String, Parked<T>>>,
}

impl<T> Default for InputRounds<T> {
    fn default() -> Self {
        Self {
            parked: Mutex::default(),
        }
    }
}

/// The rounds of each kind of request that may ask (`tools/call`, `resources/read`,
/// `prompts/get`).
#[derive(Default)]
pub struct AllRounds {
    pub tools: Arc<InputRounds<rmcp::model::CallToolResponse>>,
    pub resources: Arc<InputRounds<rmcp::model::ReadResourceResponse>>,
    pub prompts: Arc<InputRounds<rmcp::model::GetPromptResponse>>,
}

impl<T: From<InputRequiredResult> + Send + 'static> InputRounds<T> {
    fn parked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked<T>>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `call` (a whole request: admission, upstream request, audit) and answer with its
    /// outcome, or with the first round of requests its upstream makes. `request` is cancelled
    /// when the client's HTTP request is.
    ///
    /// The call runs on this request's own task until its upstream asks something; only then
    /// is it moved to a task of its own (most calls never ask, and pay no spawn).
    pub async fn start(
        self: &Arc<Self>,
        call: impl Future<Output = Outcome<T>> + Send + 'static,
        mut asks: mpsc::UnboundedReceiver<Ask>,
        stop: CancellationToken,
        owner: Owner,
        target: String,
        request: &CancellationToken,
    ) -> Outcome<T> {
        let mut call: Pin<Box<dyn Future<Output = Outcome<T>> + Send>> = Box::pin(call);
        // Dropped with the call (the client went away): its upstream request is cancelled.
        let stopping = stop.clone().drop_guard();
        let first = tokio::select! {
            outcome = &mut call => {
                stopping.disarm();
                return outcome;
            }
            Some(ask) = asks.recv() => ask,
            () = request.cancelled() => {
                return Err(McpError::internal_error("the request was cancelled", None));
            }
        };
        stopping.disarm();
        let running = Running {
            call: tokio::spawn(call),
            asks,
            stop,
        };
        let mut waiting = BTreeMap::new();
        add(&mut waiting, first);
        self.next(running, waiting, owner, target, request).await
    }

    /// A retry with `requestState` `state`: deliver `answers`, then answer as [`Self::start`]
    /// does. A request left unanswered is asked again.
    pub async fn resume(
        self: &Arc<Self>,
        state: &str,
        answers: InputResponses,
        owner: &Owner,
        target: &str,
        request: &CancellationToken,
    ) -> Outcome<T> {
        let unknown = || {
            McpError::invalid_params(
                "unknown or expired requestState: send the request again without it (a parked call lives on the gateway replica that answered it, for 5 minutes)",
                None,
            )
        };
        let Parked {
            owner,
            target,
            running,
            mut waiting,
            ..
        } = {
            let mut parked = self.parked();
            let Entry::Occupied(entry) = parked.entry(state.to_owned()) else {
                return Err(unknown());
            };
            if entry.get().until <= Instant::now() {
                // Its timer is about to drop it (which cancels it).
                return Err(unknown());
            }
            if entry.get().owner != *owner || entry.get().target != target {
                return Err(McpError::invalid_params(
                    "this requestState belongs to another caller, tool, resource or prompt",
                    None,
                ));
            }
            entry.remove()
        };
        for (key, answer) in answers {
            if let Some((_, to)) = waiting.remove(&key) {
                // The upstream may have given up on it meanwhile; nothing to do then.
                let _ = to.send(answer);
            }
        }
        self.next(running, waiting, owner, target, request).await
    }

    /// Wait for the call's outcome or its upstream's next requests (with those still
    /// unanswered: asked again at once).
    async fn next(
        self: &Arc<Self>,
        mut running: Running<T>,
        mut waiting: BTreeMap<String, (rmcp::model::InputRequest, oneshot::Sender<Value>)>,
        owner: Owner,
        target: String,
        request: &CancellationToken,
    ) -> Outcome<T> {
        if waiting.is_empty() {
            tokio::select! {
                outcome = &mut running.call => return joined(outcome),
                Some(ask) = running.asks.recv() => add(&mut waiting, ask),
                () = request.cancelled() => {
                    return Err(McpError::internal_error("the request was cancelled", None));
                }
            }
        }
        // Requests made together go in one round.
        while let Ok(ask) = running.asks.try_recv() {
            add(&mut waiting, ask);
        }
        let requests: InputRequests = waiting
            .iter()
            .map(|(key, (request, _))| (key.clone(), request.clone()))
            .collect();
        let state = format!("{STATE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        {
            let mut parked = self.parked();
            if parked.len() >= MAX_PARKED {
                return Err(McpError::internal_error(
                    format!(
                        "the gateway has {MAX_PARKED} calls waiting for their clients' input; try again later"
                    ),
                    None,
                ));
            }
            parked.insert(
                state.clone(),
                Parked {
                    owner,
                    target,
                    running,
                    waiting,
                    until: Instant::now() + PARK_TIMEOUT,
                },
            );
        }
        // Dropped (which cancels it) when its time is up; a state is used once, so whatever
        // the timer finds under it is this call.
        let rounds = Arc::downgrade(self);
        let expiring = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PARK_TIMEOUT).await;
            let expired = rounds.upgrade().and_then(|r| r.parked().remove(&expiring));
            if expired.is_some() {
                tracing::info!("a call waited {PARK_TIMEOUT:?} for its client's input: cancelled");
            }
        });
        tracing::debug!(
            requests = requests.len(),
            "call parked for the client's input"
        );
        Ok(T::from(InputRequiredResult::new(
            Some(requests),
            Some(state),
        )))
    }
}

/// Give `ask` a key of its own among `waiting`.
fn add(
    waiting: &mut BTreeMap<String, (rmcp::model::InputRequest, oneshot::Sender<Value>)>,
    ask: Ask,
) {
    let mut n = waiting.len();
    while waiting.contains_key(&format!("input-{n}")) {
        n += 1;
    }
    waiting.insert(format!("input-{n}"), (ask.request, ask.answer));
}

fn joined<T>(outcome: Result<Outcome<T>, tokio::task::JoinError>) -> Outcome<T> {
    outcome.unwrap_or_else(|e| {
        Err(McpError::internal_error(
            format!("the call's task failed: {e}"),
            None,
        ))
    })
}
