//! Requests an upstream sends to its client — sampling and roots — pass through the gateway to
//! the client whose call caused them, with the reference "everything" server (npm) as the
//! upstream over Streamable HTTP and over stdio, and a client on rmcp that answers them. A
//! client that did not declare the capability never gets a made-up answer: over Streamable
//! HTTP its own upstream session declares what it declared, so the server does not offer it
//! the sampling tool at all (as it would not directly); over stdio (one session for everyone,
//! which declares sampling) the gateway refuses the server's request and the tool says so.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.
#![allow(deprecated)] // Sampling and roots are deprecated by SEP-2577 but still served.

mod common;

use common::*;
use rmcp::{
    ClientHandler, ErrorData, ServiceExt,
    model::{
        ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
        Implementation, ListRootsResult, Role, Root, RootsCapabilities, SamplingCapability,
        SamplingMessage, SamplingMessageContentBlock,
    },
    service::{RequestContext, RoleClient, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::json;
use switchboard_gateway::config::{StdioCommand, UpstreamConfig};

/// A client that samples ("an LLM" answering a fixed text) and has one root.
#[derive(Clone)]
struct Answering {
    info: ClientConfig,
}

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        assert!(!params.messages.is_empty());
        Ok(CreateMessageResult::new(
            SamplingMessage::new(
                Role::Assistant,
                SamplingMessageContentBlock::text("sampled by the test client"),
            ),
            "test-model".to_owned(),
        ))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new("file:///test-root")]))
    }
}

async fn answering_client(url: &str, capable: bool) -> RunningService<RoleClient, Answering> {
    let mut capabilities = ClientCapabilities::default();
    if capable {
        capabilities.sampling = Some(SamplingCapability::default());
        capabilities.roots = Some(RootsCapabilities::default());
    }
    let handler = Answering {
        info: ClientConfig::new(capabilities, Implementation::new("answering", "1")),
    };
    handler
        .serve(StreamableHttpClientTransport::from_uri(url.to_owned()))
        .await
        .unwrap()
}

/// How a client that cannot sample is refused.
enum Refusal {
    /// The upstream does not offer it the tool (its own session declared no sampling).
    NotOffered,
    /// The gateway refuses the upstream's sampling request (a shared session).
    Refused,
}

async fn sampling_and_roots_through(upstream: UpstreamConfig, refusal: Refusal) {
    let gateway = gateway(config(vec![upstream])).await;
    gateway
        .wait_for(
            "the sampling tool listed (the gateway declares sampling upstream)",
            |c| c.tools.iter().any(|t| t.name == "trigger-sampling-request"),
        )
        .await;
    let client = answering_client(&gateway.mcp_url(), true).await;
    let sampled = client
        .call_tool(params(
            "trigger-sampling-request",
            json!({"prompt": "hello"}),
        ))
        .await
        .unwrap();
    assert!(
        text_of(&sampled).contains("sampled by the test client"),
        "{sampled:?}"
    );
    let roots = client
        .call_tool(params("get-roots-list", json!({})))
        .await
        .unwrap();
    assert!(text_of(&roots).contains("file:///test-root"), "{roots:?}");
    client.cancel().await.unwrap();

    // A client that cannot sample: the upstream hears so, and its tool reports an error.
    let plain = answering_client(&gateway.mcp_url(), false).await;
    if let Refusal::NotOffered = refusal {
        // Its own lists come from its own session, listed once it is open.
        plain
            .call_tool(params("echo", json!({"message": "open my session"})))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while plain
            .list_all_tools()
            .await
            .unwrap()
            .iter()
            .any(|t| t.name == "trigger-sampling-request")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sampling tool is still listed to a client that cannot sample"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let refused = plain
        .call_tool(params(
            "trigger-sampling-request",
            json!({"prompt": "hello"}),
        ))
        .await;
    let text = match refused {
        Ok(result) => {
            assert_eq!(result.is_error, Some(true), "{result:?}");
            text_of(&result)
        }
        Err(error) => error.to_string(),
    };
    match refusal {
        Refusal::Refused => assert!(text.contains("does not support sampling"), "{text}"),
        Refusal::NotOffered => assert!(
            text.contains("unknown tool 'trigger-sampling-request'"),
            "{text}"
        ),
    }
}

#[tokio::test]
async fn sampling_and_roots_reach_the_calling_client_over_streamable_http() {
    let everything = EverythingHttp::start().await;
    sampling_and_roots_through(
        upstream("everything", &everything.mcp_url()),
        Refusal::NotOffered,
    )
    .await;
}

#[tokio::test]
async fn sampling_and_roots_reach_the_calling_client_over_stdio() {
    let command = StdioCommand::new("node", [everything_script(), "stdio".to_owned()]);
    sampling_and_roots_through(
        UpstreamConfig::stdio("everything", command),
        Refusal::Refused,
    )
    .await;
}
