//! The gateway's MCP face: one rmcp `ServerHandler` that lists the federated catalog and
//! routes each request to its upstream.
//!
//! Every request runs in its own task (rmcp spawns one per request), so one session can have
//! many calls in flight. A client's `notifications/cancelled` cancels the request's token,
//! which cancels the upstream request; the upstream's progress and log notifications come back
//! to the calling session (see [`crate::upstream::handler`]).
#![allow(deprecated)] // Logging is deprecated by SEP-2577 but still part of the protocol.

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
        CompleteResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, Reference,
        ServerCapabilities, ServerConfig, ServerNotification, SetLevelRequestParams,
        SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext, SubscriptionSendError},
};
use switchboard_protocol::mcp_trace;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use switchboard_runtime::auth::{Identity, ON_BEHALF_OF};

use crate::{
    error::CallError,
    gateway::Gateway,
    gateway::Refused,
    policy::{Item, Permissions},
    sessions::{ListChanges, session_id},
    upstream::handler::{Caller, ProgressSink},
};

/// The rmcp server handler; cloned per request, so it holds only the shared [`Gateway`].
#[derive(Clone)]
pub struct GatewayServer {
    gateway: Gateway,
}

impl GatewayServer {
    pub fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }

    /// Who this request is judged as (see [`Gateway::effective_identity`]).
    fn identity(&self, context: &RequestContext<RoleServer>) -> Result<Option<Identity>, McpError> {
        self.gateway
            .effective_identity(
                identity(&context.extensions),
                context.meta.get(ON_BEHALF_OF),
            )
            .map_err(|why| McpError::invalid_request(why, None))
    }

    /// What the caller may use (`None`: no policy, everything).
    fn permissions(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<Permissions>, McpError> {
        Ok(self.gateway.permissions(self.identity(context)?.as_ref()))
    }

    /// Refuse `action` on `item` unless the policy allows it (see [`Gateway::admit_use`]).
    fn admit(
        &self,
        context: &RequestContext<RoleServer>,
        action: &'static str,
        item: Item<'_>,
    ) -> Result<(), McpError> {
        let identity = self.identity(context)?;
        self.gateway
            .admit_use(identity.as_ref(), action, item)
            .map_err(|why| McpError::invalid_params(why, None))
    }

    fn caller(context: &RequestContext<RoleServer>) -> Caller {
        Caller {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            session: session_id(&context.extensions),
            progress: context.extensions.get::<ProgressSink>().cloned(),
        }
    }
}

impl ServerHandler for GatewayServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_resources_subscribe()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_logging()
                .enable_completions()
                .build(),
        )
        .with_server_info(Implementation::new(
            "switchboard-gateway",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Switchboard's MCP gateway: the tools, resources and prompts of several MCP servers behind one endpoint. A tool name offered by more than one server carries that server's name as a prefix. When a server is unavailable its tools leave the list (notifications/tools/list_changed) and calls to them return an error that names the server.",
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        no_cursor(request.as_ref())?;
        let permissions = self.permissions(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.gateway.visible_tools(permissions.as_ref()),
        ))
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // The caller's trace context (`_meta.traceparent`) is this span's parent; the upstream
        // request carries this span as its own parent (see `Upstream::send`).
        let span = mcp_trace::tool_call_span(crate::SERVICE, &request.name, &context);
        let identity = self.identity(&context)?;
        let audit = match self
            .gateway
            .admit_call(identity.as_ref(), &mut request, &span)
        {
            Ok(audit) => audit,
            Err(Refused::Denied(why)) => return Err(McpError::invalid_params(why, None)),
            Err(Refused::AuditUnavailable(why)) => {
                return Err(McpError::internal_error(why, None));
            }
            // Over a limit: a tool error the model can act on (ask for less, retry later).
            Err(refused @ (Refused::Limited(_) | Refused::Overloaded(_))) => {
                return Ok(CallToolResponse::Complete(CallToolResult::error(vec![
                    ContentBlock::text(refused.reason()),
                ])));
            }
        };
        let caller = Self::caller(&context);
        let call = self.gateway.call_tool(request, Some(caller), &context.ct);
        let answer = match call.instrument(span).await {
            Ok(response) => Ok(response),
            Err(error @ CallError::Unknown { .. }) => Err(error.to_mcp()),
            Err(CallError::Upstream { error, .. }) => Err(error),
            // The upstream failed to answer: a tool error the model can read and act on.
            Err(error) => Ok(CallToolResponse::Complete(CallToolResult::error(vec![
                ContentBlock::text(error.to_string()),
            ]))),
        };
        match &answer {
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
                audit.finish("error", None)
            }
            Ok(_) => audit.finish("ok", None),
            Err(error) => audit.finish("error", Some(&error.message)),
        }
        answer
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        no_cursor(request.as_ref())?;
        let permissions = self.permissions(&context)?;
        Ok(ListResourcesResult::with_all_items(
            self.gateway.visible_resources(permissions.as_ref()),
        ))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        no_cursor(request.as_ref())?;
        let permissions = self.permissions(&context)?;
        Ok(ListResourceTemplatesResult::with_all_items(
            self.gateway
                .visible_resource_templates(permissions.as_ref()),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.admit(&context, "resources/read", Item::Resource(&request.uri))?;
        let caller = Self::caller(&context);
        self.gateway
            .read_resource(request, Some(caller), &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        no_cursor(request.as_ref())?;
        let permissions = self.permissions(&context)?;
        Ok(ListPromptsResult::with_all_items(
            self.gateway.visible_prompts(permissions.as_ref()),
        ))
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.admit(
            &context,
            "resources/subscribe",
            Item::Resource(&request.uri),
        )?;
        let caller = Self::caller(&context);
        self.gateway
            .subscribe_resource(request.uri, caller, &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let session = session_id(&context.extensions);
        self.gateway
            .unsubscribe_resource(request.uri, session, &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        // A reference of another kind is refused by the routing, which cannot place it.
        let item = match &request.r#ref {
            Reference::Prompt(prompt) => Some(Item::Prompt(&prompt.name)),
            Reference::Resource(resource) => Some(Item::Resource(&resource.uri)),
            _ => None,
        };
        if let Some(item) = item {
            self.admit(&context, "completion/complete", item)?;
        }
        let caller = Self::caller(&context);
        self.gateway
            .complete(request, Some(caller), &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.admit(&context, "prompts/get", Item::Prompt(&request.name))?;
        let caller = Self::caller(&context);
        self.gateway
            .get_prompt(request, Some(caller), &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        match session_id(&context.extensions) {
            Some(id) => {
                self.gateway
                    .sessions()
                    .set_level(id, context.peer.clone(), request.level);
                Ok(())
            }
            None => Err(McpError::invalid_request(
                "logging/setLevel needs a session (send the mcp-session-id header)",
                None,
            )),
        }
    }

    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp intersects this with what was requested and what `get_info` declares.
        Some(
            SubscriptionFilter::builder()
                .tools_list_changed()
                .resources_list_changed()
                .prompts_list_changed()
                .build(),
        )
    }

    /// A `subscriptions/listen` stream: list changes until the client ends it.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.gateway.sessions().changes();
        loop {
            let change = tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => change,
            };
            let change = match change {
                Ok(change) => change,
                // Missed some: say everything may have changed.
                Err(RecvError::Lagged(_)) => ListChanges {
                    tools: true,
                    resources: true,
                    prompts: true,
                },
                Err(RecvError::Closed) => return Ok(()),
            };
            let mut notifications = Vec::new();
            if change.tools {
                notifications.push(ServerNotification::ToolListChangedNotification(
                    Default::default(),
                ));
            }
            if change.resources {
                notifications.push(ServerNotification::ResourceListChangedNotification(
                    Default::default(),
                ));
            }
            if change.prompts {
                notifications.push(ServerNotification::PromptListChangedNotification(
                    Default::default(),
                ));
            }
            for notification in notifications {
                match context.sink().send(notification).await {
                    Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
                    Err(_) => return Ok(()),
                }
            }
        }
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(id) = session_id(&context.extensions) {
            self.gateway.sessions().register(id, context.peer.clone());
        }
    }
}

/// Lists are answered whole (no `nextCursor`), so no cursor this gateway handed out exists: a
/// request with one is invalid (-32602), as the specification asks, not answered with page 1.
fn no_cursor(request: Option<&PaginatedRequestParams>) -> Result<(), McpError> {
    match request.and_then(|r| r.cursor.as_deref()) {
        Some(cursor) => Err(McpError::invalid_params(
            format!("unknown cursor '{cursor}': this server answers every list in one page"),
            None,
        )),
        None => Ok(()),
    }
}

/// The caller the authentication layer recorded: in the request's own extensions (the
/// endpoint's direct path moves them into the context) or in the HTTP request parts rmcp adds
/// to each message it serves.
fn identity(extensions: &rmcp::model::Extensions) -> Option<Identity> {
    extensions.get::<Identity>().cloned().or_else(|| {
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Identity>().cloned())
    })
}
