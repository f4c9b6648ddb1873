//! Requests an upstream sends to its client — sampling and roots — pass through the gateway to
//! the client whose call caused them, with the reference "everything" server (npm) as the
//! upstream over Streamable HTTP and over stdio, and a client on rmcp that answers them. A
//! client that did not declare the capability gets the upstream's tool error, not a made-up
//! answer.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.
#![allow(deprecated)] // Sampling and roots are deprecated by SEP-2577 but still served.

mod common;

use std::path::PathBuf;

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

fn everything_script() -> String {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let script = target.join(
        "gateway-fixtures/stdio-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(script.exists(), "run `{INSTALL}` (scripts/test runs it)");
    script.to_string_lossy().into_owned()
}

/// The everything server over Streamable HTTP on a free port; killed when dropped.
struct EverythingHttp {
    port: u16,
    _child: tokio::process::Child,
}

impl EverythingHttp {
    async fn start() -> Self {
        let port = any_port_number().await;
        let child = tokio::process::Command::new("node")
            .arg(everything_script())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the everything server did not listen"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self {
            port,
            _child: child,
        }
    }
}

async fn any_port_number() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

async fn sampling_and_roots_through(upstream: UpstreamConfig) {
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
    assert!(text.contains("does not support sampling"), "{text}");
}

#[tokio::test]
async fn sampling_and_roots_reach_the_calling_client_over_streamable_http() {
    let everything = EverythingHttp::start().await;
    let url = format!("http://127.0.0.1:{}/mcp", everything.port);
    sampling_and_roots_through(upstream("everything", &url)).await;
}

#[tokio::test]
async fn sampling_and_roots_reach_the_calling_client_over_stdio() {
    let command = StdioCommand::new("node", [everything_script(), "stdio".to_owned()]);
    sampling_and_roots_through(UpstreamConfig::stdio("everything", command)).await;
}
