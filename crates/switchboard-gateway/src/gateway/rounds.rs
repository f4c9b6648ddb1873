//! An upstream on protocol 2026-07-28 asks for input with an `InputRequiredResult`; a client
//! of a 2025-era session cannot read one (it expects requests on its session). So the gateway
//! answers the rounds itself: each of the `inputRequests` goes to the calling client as the
//! request it is (`sampling/createMessage`, `elicitation/create`, `roots/list`, through
//! [`crate::upstream::client_requests::forward`]), and the call is made again with the answers
//! as `inputResponses` and the upstream's `requestState`, until the upstream completes (at
//! most [`MAX_ROUNDS`] rounds). A client on 2026-07-28 gets the upstream's rounds as they are.
//! The reverse (a 2026-07-28 client, an upstream that asks mid-call) is
//! `crate::server::input_rounds`.

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, ContentBlock,
    InputRequest, InputRequiredResult, InputResponses, ServerRequest, ServerResult,
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
pub fn answers_for(caller: Option<&Caller>) -> bool {
    caller.is_some_and(|c| c.input.is_none())
}

/// Answer `round` (and any that follow) by asking `caller`, then return the upstream's last
/// answer. `params` is the call as it went upstream.
pub async fn answer(
    upstream: &Upstream,
    mut round: InputRequiredResult,
    mut params: CallToolRequestParams,
    owner: &Owner,
    caller: &Caller,
    ct: &CancellationToken,
) -> Result<ServerResult, CallError> {
    let name = &upstream.config.name;
    for _ in 0..MAX_ROUNDS {
        let mut responses = InputResponses::new();
        for (key, request) in round.input_requests.take().unwrap_or_default() {
            let request = match request {
                InputRequest::CreateMessage(r) => ServerRequest::CreateMessageRequest(r),
                InputRequest::Elicitation(r) => ServerRequest::ElicitRequest(r),
                InputRequest::ListRoots(r) => ServerRequest::ListRootsRequest(r),
                other => {
                    return Ok(failed(format!(
                        "the tool on '{name}' asked its client for input the gateway cannot pass on: {}",
                        serde_json::to_string(&other).unwrap_or_default()
                    )));
                }
            };
            let answer = match client_requests::forward(name, Some(caller), request).await {
                Ok(answer) => answer,
                Err(error) => {
                    return Ok(failed(format!(
                        "the tool on '{name}' asked its client for input, which it did not give: {}",
                        error.message
                    )));
                }
            };
            // `ClientResult` is untagged: the result serialises as itself.
            match serde_json::to_value(&answer) {
                Ok(value) => responses.insert(key, value),
                Err(e) => {
                    return Ok(failed(format!(
                        "the client's answer cannot be passed on: {e}"
                    )));
                }
            };
        }
        params.input_responses = Some(responses);
        params.request_state = round.request_state.take();
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params.clone()));
        match upstream
            .request(request, owner, Some(caller.clone()), ct)
            .await?
        {
            ServerResult::InputRequiredResult(next) => round = next,
            done => return Ok(done),
        }
    }
    Ok(failed(format!(
        "the tool on '{name}' asked for input more than {MAX_ROUNDS} times; the gateway gave up"
    )))
}

/// The call's result when its rounds could not be answered: a tool error, as the client
/// would see a tool that cannot go on.
fn failed(why: String) -> ServerResult {
    ServerResult::CallToolResult(CallToolResult::error(vec![ContentBlock::text(why)]))
}
