//! A client on protocol 2026-07-28 calls tools of a 2025-era upstream that asks its client
//! mid-call (the reference "everything" server's sampling, elicitation and roots tools): the
//! gateway turns each request into an `InputRequiredResult` round and the client's
//! `inputResponses` into the answer (`server::input_rounds`).
//!
//! - rmcp's client in `Discover` mode drives the rounds with its own handler, as it would
//!   with a 2026-07-28 server;
//! - one round by hand: what the gateway answers, a wrong or unknown `requestState`, and the
//!   answer that completes the call;
//! - the official Python SDK 2.x in both negotiation modes, direct and through the gateway,
//!   reports the same results (`python_sdk.rs` runs its other checks).
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.
#![allow(deprecated)] // Sampling and roots are deprecated by SEP-2577 but still served.

mod common;
#[path = "input_rounds/servers.rs"]
mod servers;

use common::*;
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, ServiceExt,
    model::{
        CallToolResponse, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
        CreateMessageResult, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationCapability, FormElicitationCapability, Implementation, InputRequest,
        ListRootsResult, ProtocolVersion, Role, Root, RootsCapabilities, SamplingCapability,
        SamplingMessage, SamplingMessageContentBlock,
    },
    service::{RequestContext, RoleClient, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use servers::{AsksInRounds, AsksWhileReading, serve_on_loopback};

/// Samples ("an LLM" answering a fixed text), accepts a form with a name, has one root.
#[derive(Clone)]
struct Answering;

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.sampling = Some(SamplingCapability::default());
        capabilities.roots = Some(RootsCapabilities::default());
        let mut elicitation = ElicitationCapability::default();
        elicitation.form = Some(FormElicitationCapability::default());
        capabilities.elicitation = Some(elicitation);
        ClientConfig::new(capabilities, Implementation::new("answering-2026", "1"))
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        Ok(sampled())
    }

    async fn create_elicitation(
        &self,
        _params: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content = Some(json!({"name": "Ada"}));
        Ok(result)
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new("file:///modern-root")]))
    }
}

fn sampled() -> CreateMessageResult {
    CreateMessageResult::new(
        SamplingMessage::new(
            Role::Assistant,
            SamplingMessageContentBlock::text("sampled by the modern client"),
        ),
        "test-model".to_owned(),
    )
}

async fn modern_client(url: &str) -> RunningService<RoleClient, Answering> {
    Answering
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(url.to_owned()),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover with the gateway")
}

async fn everything_behind_a_gateway() -> (EverythingHttp, GatewayUnderTest) {
    let everything = EverythingHttp::start().await;
    let gateway = gateway(config(vec![upstream("everything", &everything.mcp_url())])).await;
    gateway
        .wait_for("the sampling tool listed", |c| {
            c.tools.iter().any(|t| t.name == "trigger-sampling-request")
        })
        .await;
    (everything, gateway)
}

/// rmcp's client drives the rounds: sampling, a form elicitation and roots each complete.
#[tokio::test]
async fn a_modern_client_answers_an_older_upstream_in_rounds() {
    let (_everything, gateway) = everything_behind_a_gateway().await;
    let client = modern_client(&gateway.mcp_url()).await;
    let sampled = client
        .call_tool(params("trigger-sampling-request", json!({"prompt": "hi"})))
        .await
        .unwrap();
    assert!(
        text_of(&sampled).contains("sampled by the modern client"),
        "{sampled:?}"
    );
    let elicited = client
        .call_tool(params("trigger-elicitation-request", json!({})))
        .await
        .unwrap();
    assert!(text_of(&elicited).contains("Ada"), "{elicited:?}");
    let roots = client
        .call_tool(params("get-roots-list", json!({})))
        .await
        .unwrap();
    assert!(text_of(&roots).contains("file:///modern-root"), "{roots:?}");
}

/// A 2026-07-28 client that declared none of sampling, elicitation and roots gets no rounds
/// (the gateway skips them for it): the upstream's request is refused as unsupported, and the
/// call ends with what the upstream makes of that, never an `InputRequiredResult`.
#[tokio::test]
async fn a_modern_client_that_declares_nothing_is_never_asked() {
    let (_everything, gateway) = everything_behind_a_gateway().await;
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(gateway.mcp_url()),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover with the gateway");
    let outcome = client
        .call_tool(params("trigger-sampling-request", json!({"prompt": "hi"})))
        .await;
    let told = match &outcome {
        Ok(result) => format!("{result:?}"),
        Err(error) => error.to_string(),
    };
    assert!(told.contains("does not support sampling"), "{told}");
    // The client still works: a plain call succeeds.
    let echoed = client
        .call_tool(params("echo", json!({"message": "still here"})))
        .await
        .unwrap();
    assert!(text_of(&echoed).contains("still here"), "{echoed:?}");
}

/// One round by hand: the gateway's `InputRequiredResult` holds the upstream's sampling
/// request; a `requestState` it never issued, or one used for another tool, is refused
/// (-32602) without harming the parked call, which the right answer then completes.
#[tokio::test]
async fn a_round_is_answered_only_with_its_own_request_state() {
    let (_everything, gateway) = everything_behind_a_gateway().await;
    let client = modern_client(&gateway.mcp_url()).await;
    let first = client
        .peer()
        .call_tool_once(params("trigger-sampling-request", json!({"prompt": "hi"})))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(round) = first else {
        panic!("expected an input_required round, got {first:?}");
    };
    let requests = round.input_requests.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (key, request) = requests.into_iter().next().unwrap();
    assert!(
        matches!(request, InputRequest::CreateMessage(_)),
        "{request:?}"
    );
    let state = round.request_state.unwrap();

    let answers = || {
        let mut answers = rmcp::model::InputResponses::new();
        answers.insert(key.clone(), serde_json::to_value(sampled()).unwrap());
        answers
    };
    let retry = |tool: &str, state: &str| {
        let mut retry = params(tool, json!({"prompt": "hi"}));
        retry.input_responses = Some(answers());
        retry.request_state = Some(state.to_owned());
        retry
    };
    for (tool, state, why) in [
        (
            "trigger-sampling-request",
            "io.switchboard.round.never-issued",
            "unknown or expired requestState",
        ),
        ("echo", state.as_str(), "belongs to another caller"),
    ] {
        let refused = client.peer().call_tool_once(retry(tool, state)).await;
        let text = format!("{refused:?}");
        assert!(text.contains(why), "{tool} {state}: {text}");
        assert!(
            text.contains("-32602")
                || text.contains("InvalidParams")
                || text.contains("INVALID_PARAMS"),
            "{text}"
        );
    }
    let done = client
        .peer()
        .call_tool_once(retry("trigger-sampling-request", &state))
        .await
        .unwrap();
    let CallToolResponse::Complete(result) = done else {
        panic!("expected the result, got {done:?}");
    };
    assert!(
        text_of(&result).contains("sampled by the modern client"),
        "{result:?}"
    );
    // A requestState the gateway did not issue is the upstream's: it goes along with the call
    // (this upstream has no rounds and just answers).
    let mut foreign = params("echo", json!({"message": "passed through"}));
    foreign.request_state = Some("an-upstream-state".to_owned());
    let echoed = client.peer().call_tool_once(foreign).await.unwrap();
    assert!(
        format!("{echoed:?}").contains("passed through"),
        "{echoed:?}"
    );
    // A state is used once.
    let again = client
        .peer()
        .call_tool_once(retry("trigger-sampling-request", &state))
        .await;
    assert!(format!("{again:?}").contains("unknown or expired requestState"));
}

/// Run the SDK's input-rounds script against `url` in `mode`; its JSON report.
async fn python_rounds(url: &str, mode: &str) -> Value {
    python_fixture("input_rounds.py", &[url, mode]).await
}

/// The official Python SDK 2.x: the same sampling, elicitation and roots results direct and
/// through the gateway, in the 2025-11-25 handshake and in 2026-07-28 (which the everything
/// server does not speak: direct, "auto" falls back to 2025-11-25; through the gateway it
/// stays on 2026-07-28 and answers in rounds).
#[tokio::test]
async fn the_python_sdk_answers_in_rounds_as_it_answers_requests() {
    let (everything, gateway) = everything_behind_a_gateway().await;
    let direct = python_rounds(&everything.mcp_url(), "legacy").await;
    assert_eq!(direct["protocol"], "2025-11-25", "{direct}");
    for mode in ["legacy", "auto"] {
        let through = python_rounds(&gateway.mcp_url(), mode).await;
        let expected = if mode == "auto" {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        assert_eq!(through["protocol"], expected, "{through}");
        assert_eq!(through["results"], direct["results"], "{mode}");
    }
    let results = &direct["results"];
    assert!(
        results["trigger-sampling-request"]
            .to_string()
            .contains("sampled by python"),
        "{results}"
    );
    assert!(
        results["trigger-elicitation-request"]
            .to_string()
            .contains("Ada"),
        "{results}"
    );
    assert!(
        results["get-roots-list"]
            .to_string()
            .contains("file:///py-root"),
        "{results}"
    );
}

/// An upstream that speaks only 2026-07-28 is reached with `server/discover`, and its rounds
/// (of a tool call, a resource read, a prompt) are answered for a client of a 2025-11-25
/// session (which cannot read an `InputRequiredResult`): the elicitation goes to that client
/// as a request on its session and the gateway makes the request again with the answer. A 2026-07-28 client gets the
/// upstream's round as it is, and its retry carries the upstream's `requestState` along.
#[tokio::test]
async fn an_upstream_that_asks_in_rounds_is_answered_for_an_older_client() {
    let gateway = gateway(config(vec![upstream(
        "rounds",
        &serve_on_loopback(AsksInRounds).await,
    )]))
    .await;
    gateway
        .wait_for("ask_name, note://named and named-greeting listed", |c| {
            c.tools.iter().any(|t| t.name == "ask_name")
                && c.resources.iter().any(|r| r.uri == "note://named")
                && c.prompts.iter().any(|p| p.name == "named-greeting")
        })
        .await;
    let legacy = Answering
        .serve(StreamableHttpClientTransport::from_uri(gateway.mcp_url()))
        .await
        .unwrap();
    assert_eq!(
        legacy.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    let greeted = legacy
        .call_tool(params("ask_name", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&greeted), "Hello, Ada!", "{greeted:?}");
    // A read and a prompt that ask are answered the same way.
    let read = legacy
        .read_resource(rmcp::model::ReadResourceRequestParams::new("note://named"))
        .await
        .unwrap();
    let text = serde_json::to_string(&read).unwrap();
    assert!(text.contains("note for Ada"), "{text}");
    let prompt = legacy
        .get_prompt(rmcp::model::GetPromptRequestParams::new("named-greeting"))
        .await
        .unwrap();
    let text = serde_json::to_string(&prompt).unwrap();
    assert!(text.contains("greet Ada"), "{text}");

    let modern = modern_client(&gateway.mcp_url()).await;
    let first = modern
        .peer()
        .call_tool_once(params("ask_name", json!({})))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(round) = first else {
        panic!("the upstream's round, as it is: {first:?}");
    };
    assert_eq!(round.request_state.as_deref(), Some("upstream-state"));
    let greeted = modern
        .call_tool(params("ask_name", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&greeted), "Hello, Ada!", "{greeted:?}");
}

/// `resources/read` and `prompts/get` of a 2026-07-28 client are answered in rounds too when
/// their upstream asks while reading.
#[tokio::test]
async fn reads_and_prompts_that_ask_are_answered_in_rounds() {
    let url = serve_on_loopback(AsksWhileReading).await;
    let gateway = gateway(config(vec![upstream("reading", &url)])).await;
    gateway
        .wait_for("the resource and the prompt listed", |c| {
            c.resources.iter().any(|r| r.uri == "note://sampled")
                && c.prompts.iter().any(|p| p.name == "sampled-greeting")
        })
        .await;
    let client = modern_client(&gateway.mcp_url()).await;
    let first = client
        .peer()
        .read_resource_once(rmcp::model::ReadResourceRequestParams::new(
            "note://sampled",
        ))
        .await
        .unwrap();
    assert!(
        matches!(first, rmcp::model::ReadResourceResponse::InputRequired(_)),
        "{first:?}"
    );
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "note://sampled",
        ))
        .await
        .unwrap();
    let text = serde_json::to_string(&read).unwrap();
    assert!(
        text.contains("note: sampled by the modern client"),
        "{text}"
    );
    let prompt = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new("sampled-greeting"))
        .await
        .unwrap();
    let text = serde_json::to_string(&prompt).unwrap();
    assert!(
        text.contains("greet sampled by the modern client"),
        "{text}"
    );
}
