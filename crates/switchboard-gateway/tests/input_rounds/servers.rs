//! The upstreams of `input_rounds.rs`: rmcp servers that ask their client for input, in
//! rounds (2026-07-28 only) or mid-request (a 2025-era session), served on loopback.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.
#![allow(deprecated)] // Sampling is deprecated by SEP-2577 but still served.

use rmcp::{
    ErrorData,
    model::{
        CallToolResponse, CreateMessageRequestParams, Implementation, InputRequest, ProtocolVersion,
    },
    service::RequestContext,
};
use serde_json::json;

/// A server that speaks only protocol 2026-07-28 (no `initialize`) and asks in rounds: the
/// tool `ask_name`, the resource `note://named` and the prompt `named-greeting` answer
/// `InputRequiredResult` (a form elicitation, and a `requestState` of its own) until the
/// request comes back with the name.
#[derive(Clone)]
pub struct AsksInRounds;

impl rmcp::ServerHandler for AsksInRounds {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("asks-in-rounds", "1"))
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(&[ProtocolVersion::V_2026_07_28])
    }

    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {}});
        let tool = rmcp::model::Tool::new(
            "ask_name",
            "Greets whoever answers",
            std::sync::Arc::new(schema.as_object().unwrap().clone()),
        );
        Ok(rmcp::model::ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(
            match named(&request.input_responses, &request.request_state) {
                Some(name) => {
                    CallToolResponse::Complete(rmcp::model::CallToolResult::success(vec![
                        rmcp::model::ContentBlock::text(format!("Hello, {name}!")),
                    ]))
                }
                None => CallToolResponse::InputRequired(ask_the_name()),
            },
        )
    }

    async fn list_resources(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, ErrorData> {
        Ok(one_resource("note://named", "named"))
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, ErrorData> {
        let Some(name) = named(&request.input_responses, &request.request_state) else {
            return Ok(rmcp::model::ReadResourceResponse::InputRequired(
                ask_the_name(),
            ));
        };
        Ok(note(&request.uri, format!("note for {name}")))
    }

    async fn list_prompts(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, ErrorData> {
        Ok(one_prompt("named-greeting"))
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, ErrorData> {
        let Some(name) = named(&request.input_responses, &request.request_state) else {
            return Ok(rmcp::model::GetPromptResponse::InputRequired(ask_the_name()));
        };
        Ok(greeting(format!("greet {name}")))
    }
}

/// The name a retry's answers give, with the state [`ask_the_name`] handed out.
fn named(answers: &Option<rmcp::model::InputResponses>, state: &Option<String>) -> Option<String> {
    let answers = answers.as_ref()?;
    assert_eq!(state.as_deref(), Some("upstream-state"));
    Some(
        answers["name"]["content"]["name"]
            .as_str()
            .unwrap_or("nobody")
            .to_owned(),
    )
}

/// One round: a form elicitation of the name, and the upstream's own `requestState`.
fn ask_the_name() -> rmcp::model::InputRequiredResult {
    let ask: InputRequest = serde_json::from_value(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": "What is your name?",
            "requestedSchema": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
        },
    }))
    .unwrap();
    let mut requests = rmcp::model::InputRequests::new();
    requests.insert("name".to_owned(), ask);
    rmcp::model::InputRequiredResult::new(Some(requests), Some("upstream-state".into()))
}

/// Serve `handler` on an ephemeral loopback port; its `/mcp` URL.
pub async fn serve_on_loopback<S>(handler: S) -> String
where
    S: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    let service = switchboard_protocol::mcp_server::streamable_http_service(
        handler,
        &switchboard_protocol::mcp_server::McpEndpointOptions::new(
            vec!["*".into()],
            vec!["*".into()],
            1 << 20,
        ),
        tokio_util::sync::CancellationToken::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = axum::Router::new().nest_service("/mcp", service);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A 2025-era server whose resource and prompt ask their client (sampling) while they are
/// read: `note://sampled` and `sampled-greeting` carry what the client sampled.
#[derive(Clone)]
pub struct AsksWhileReading;

async fn sample(context: &RequestContext<rmcp::RoleServer>) -> Result<String, ErrorData> {
    let params: CreateMessageRequestParams = serde_json::from_value(json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": "a word?"}}],
        "maxTokens": 10,
    }))
    .unwrap();
    let sampled = context
        .peer
        .create_message(params)
        .await
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(
        serde_json::to_value(&sampled.message.content).unwrap()["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

impl rmcp::ServerHandler for AsksWhileReading {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("asks-while-reading", "1"))
    }

    async fn list_resources(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, ErrorData> {
        Ok(one_resource("note://sampled", "sampled"))
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, ErrorData> {
        let word = sample(&context).await?;
        Ok(note(&request.uri, format!("note: {word}")))
    }

    async fn list_prompts(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, ErrorData> {
        Ok(one_prompt("sampled-greeting"))
    }

    async fn get_prompt(
        &self,
        _request: rmcp::model::GetPromptRequestParams,
        context: RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, ErrorData> {
        let word = sample(&context).await?;
        Ok(greeting(format!("greet {word}")))
    }
}

fn one_resource(uri: &str, name: &str) -> rmcp::model::ListResourcesResult {
    rmcp::model::ListResourcesResult::with_all_items(vec![rmcp::model::Resource::new(uri, name)])
}

fn one_prompt(name: &str) -> rmcp::model::ListPromptsResult {
    rmcp::model::ListPromptsResult::with_all_items(vec![rmcp::model::Prompt::new(
        name,
        Some("asks first"),
        None,
    )])
}

/// A resource read: `text` at `uri`.
fn note(uri: &str, text: String) -> rmcp::model::ReadResourceResponse {
    let result = serde_json::from_value(json!({"contents": [{"uri": uri, "text": text}]})).unwrap();
    rmcp::model::ReadResourceResponse::Complete(result)
}

/// A prompt of one user message, `text`.
fn greeting(text: String) -> rmcp::model::GetPromptResponse {
    let result = serde_json::from_value(json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
    }))
    .unwrap();
    rmcp::model::GetPromptResponse::Complete(result)
}
