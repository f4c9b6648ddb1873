//! An upstream on protocol 2026-07-28 asks for input with an `InputRequiredResult`; a client
//! of a 2025-era session cannot read one (it expects requests on its session). So the gateway
//! answers the rounds itself: each of the `inputRequests` goes to the calling client as the
//! request it is (`sampling/createMessage`, `elicitation/create`, `roots/list`, through
//! [`crate::upstream::client_requests::forward`]), and the request (`tools/call`,
//! `resources/read` or `prompts/get`) is made again with the answers as `inputResponses` and
//! the upstream's `requestState`, until the upstream completes (at most [`MAX_ROUNDS`]
//! rounds). A client on 2026-07-28 gets the upstream's rounds as they are.
//! The reverse (a 2026-07-28 client, an upstream that asks mid-call) is
//! `crate::server::input_rounds`.

use rmcp::{
    ErrorData,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, ContentBlock,
        GetPromptRequest, GetPromptRequestParams, InputRequest, InputRequiredResult,
        InputResponses, ReadResourceRequest, ReadResourceRequestParams, ServerRequest,
        ServerResult,
    },
};
use tokio_util::sync::CancellationToken;

use crate::{
    error::CallError,
    upstream::{Owner, Upstream, client_requests, handler::Caller},
};

/// Most rounds one call may take before the gateway gives up on it.
pub const MAX_ROUNDS: usize = 8;

/// Whether the gateway answers the rounds of this caller's calls itself: a client with a
/// session to send requests on, not one that reads `InputRequiredResult` itself.
fn answers_for(caller: Option<&Caller>) -> bool {
    caller.is_some_and(|c| c.input.is_none())
}

/// The params of a request an upstream may answer with rounds.
pub trait Retried: Clone {
    /// What the upstream serves ("tool", "resource", "prompt"), for messages.
    const KIND: &'static str;
    /// The request again, with the client's answers and the upstream's state.
    fn again(self, answers: InputResponses, state: Option<String>) -> ClientRequest;
    /// The answer when the rounds cannot be answered.
    fn failed(upstream: &str, why: String) -> Result<ServerResult, CallError>;
}

impl Retried for CallToolRequestParams {
    const KIND: &'static str = "tool";
    fn again(mut self, answers: InputResponses, state: Option<String>) -> ClientRequest {
        self.input_responses = Some(answers);
        self.request_state = state;
        ClientRequest::CallToolRequest(CallToolRequest::new(self))
    }
    /// A tool error, as the client would see a tool that cannot go on.
    fn failed(_upstream: &str, why: String) -> Result<ServerResult, CallError> {
        Ok(ServerResult::CallToolResult(CallToolResult::error(vec![
            ContentBlock::text(why),
        ])))
    }
}

impl Retried for ReadResourceRequestParams {
    const KIND: &'static str = "resource";
    fn again(mut self, answers: InputResponses, state: Option<String>) -> ClientRequest {
        self.input_responses = Some(answers);
        self.request_state = state;
        ClientRequest::ReadResourceRequest(ReadResourceRequest::new(self))
    }
    fn failed(upstream: &str, why: String) -> Result<ServerResult, CallError> {
        Err(refused(upstream, why))
    }
}

impl Retried for GetPromptRequestParams {
    const KIND: &'static str = "prompt";
    fn again(mut self, answers: InputResponses, state: Option<String>) -> ClientRequest {
        self.input_responses = Some(answers);
        self.request_state = state;
        ClientRequest::GetPromptRequest(GetPromptRequest::new(self))
    }
    fn failed(upstream: &str, why: String) -> Result<ServerResult, CallError> {
        Err(refused(upstream, why))
    }
}

/// A read or prompt whose rounds could not be answered: an error, as if the upstream had
/// answered with it.
fn refused(upstream: &str, why: String) -> CallError {
    CallError::Upstream {
        upstream: upstream.to_owned(),
        error: ErrorData::internal_error(why, None),
    }
}

/// Answer `round` (and any that follow) by asking `caller`, then return the upstream's last
/// answer. `params` is the request as it went upstream.
async fn answer<P: Retried>(
    upstream: &Upstream,
    mut round: InputRequiredResult,
    params: P,
    owner: &Owner,
    caller: &Caller,
    ct: &CancellationToken,
) -> Result<ServerResult, CallError> {
    let name = &upstream.config.name;
    let kind = P::KIND;
    let failed = |why: String| P::failed(name, why);
    for _ in 0..MAX_ROUNDS {
        let mut responses = InputResponses::new();
        for (key, request) in round.input_requests.take().unwrap_or_default() {
            let request = match request {
                InputRequest::CreateMessage(r) => ServerRequest::CreateMessageRequest(r),
                InputRequest::Elicitation(r) => ServerRequest::ElicitRequest(r),
                InputRequest::ListRoots(r) => ServerRequest::ListRootsRequest(r),
                other => {
                    return failed(format!(
                        "the {kind} on '{name}' asked its client for input the gateway cannot pass on: {}",
                        serde_json::to_string(&other).unwrap_or_default()
                    ));
                }
            };
            let answer = match client_requests::forward(name, Some(caller), request).await {
                Ok(answer) => answer,
                Err(error) => {
                    return failed(format!(
                        "the {kind} on '{name}' asked its client for input, which it did not give: {}",
                        error.message
                    ));
                }
            };
            // `ClientResult` is untagged: the result serialises as itself.
            match serde_json::to_value(&answer) {
                Ok(value) => responses.insert(key, value),
                Err(e) => {
                    return failed(format!("the client's answer cannot be passed on: {e}"));
                }
            };
        }
        let request = params.clone().again(responses, round.request_state.take());
        match upstream
            .request(request, owner, Some(caller.clone()), ct)
            .await?
        {
            ServerResult::InputRequiredResult(next) => round = next,
            done => return Ok(done),
        }
    }
    failed(format!(
        "the {kind} on '{name}' asked for input more than {MAX_ROUNDS} times; the gateway gave up"
    ))
}

/// Make `request` of `upstream` for `caller`, answering the upstream's rounds when the
/// caller cannot (see the module documentation). `params` are the request's, as it goes.
pub async fn request<P: Retried>(
    upstream: &Upstream,
    params: P,
    request: impl FnOnce(P) -> ClientRequest,
    owner: &Owner,
    caller: Option<Caller>,
    ct: &CancellationToken,
) -> Result<ServerResult, CallError> {
    let again = (answers_for(caller.as_ref()) && upstream.speaks_rounds())
        .then(|| params.clone())
        .zip(caller.clone());
    let answer = upstream.request(request(params), owner, caller, ct).await;
    match (again, answer) {
        (Some((params, caller)), Ok(ServerResult::InputRequiredResult(round))) => {
            self::answer(upstream, round, params, owner, &caller, ct).await
        }
        (_, answer) => answer,
    }
}
