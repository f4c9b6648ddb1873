//! The gateway's MCP face: one rmcp `ServerHandler` that lists the federated catalog and
//! routes each request to its upstream.
//!
//! Every request runs in its own task (rmcp spawns one per request), so one session can have
//! many calls in flight. A client's `notifications/cancelled` cancels the request's token,
//! which cancels the upstream request; the upstream's progress and log notifications come back
//! to the calling session (see [`crate::upstream::handler`]). Each request names its
//! [`Owner`] — its client session, else its caller — whose upstream sessions it goes on and
//! whose catalog lists and routes it (`crate::upstream::pool`).
#![allow(deprecated)] // Logging is deprecated by SEP-2577 but still part of the protocol.

mod calls;
pub(crate) mod input_rounds;
mod listen;
pub(crate) mod tasks;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, Reference, ServerCapabilities,
        ServerConfig, SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
};
use switchboard_protocol::{mcp_server::endpoint::AnswerSink, mcp_trace};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use switchboard_runtime::auth::{Identity, ON_BEHALF_OF};

use self::calls::call_audited;
pub(crate) use self::calls::{failed_call, refused_call};
use crate::{
    gateway::Gateway,
    policy::{Item, Permissions},
    sessions::session_id,
    upstream::{Owner, handler::Caller},
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

    /// What the caller may use (`None`: no policy, everything), and whose lists it sees.
    fn permissions(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<(Option<Permissions>, Owner), McpError> {
        let identity = self.identity(context)?;
        let owner = Owner::of(session_id(&context.extensions).as_ref(), identity.as_ref());
        Ok((self.gateway.permissions(identity.as_ref()), owner))
    }

    /// Refuse `action` on `item` (if any) unless the policy allows it (see
    /// [`Gateway::admit_use`]); whose upstream session the request goes on.
    fn admit(
        &self,
        context: &RequestContext<RoleServer>,
        caller: &Caller,
        action: &'static str,
        item: Option<Item<'_>>,
    ) -> Result<Owner, McpError> {
        let identity = self.identity(context)?;
        if let Some(item) = item {
            self.gateway
                .admit_use(identity.as_ref(), action, item)
                .map_err(|why| McpError::invalid_params(why, None))?;
        }
        Ok(Owner::of(caller.session.as_ref(), identity.as_ref()))
    }

    fn caller(context: &RequestContext<RoleServer>) -> Caller {
        Caller {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            session: session_id(&context.extensions),
            stream: context.extensions.get::<AnswerSink>().cloned(),
            input: None,
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
        let (permissions, owner) = self.permissions(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.gateway.visible_tools(permissions.as_ref(), &owner),
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
        let caller = Self::caller(&context);
        let owner = Owner::of(caller.session.as_ref(), identity.as_ref());
        // A 2026-07-28 client is asked for input by `InputRequiredResult` rounds: the call
        // is parked between rounds (`input_rounds`).
        if let Some(rounds) = input_rounds::applies(
            &context,
            &mut request.request_state,
            &mut request.input_responses,
        ) {
            let tool = request.name.to_string();
            let gateway = self.gateway.clone();
            let (call_owner, call_span) = (owner.clone(), span.clone());
            let call = move |caller, stop: CancellationToken| async move {
                call_audited(
                    &gateway, identity, call_owner, caller, request, &stop, call_span,
                )
                .await
            };
            let parked = &self.gateway.input_rounds().tools;
            return input_rounds::run(parked, &context, owner, tool, caller, rounds, call)
                .instrument(span)
                .await;
        }
        call_audited(
            &self.gateway,
            identity,
            owner,
            caller,
            request,
            &context.ct,
            span,
        )
        .await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        no_cursor(request.as_ref())?;
        let (permissions, owner) = self.permissions(&context)?;
        Ok(ListResourcesResult::with_all_items(
            self.gateway.visible_resources(permissions.as_ref(), &owner),
        ))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        no_cursor(request.as_ref())?;
        let (permissions, owner) = self.permissions(&context)?;
        Ok(ListResourceTemplatesResult::with_all_items(
            self.gateway
                .visible_resource_templates(permissions.as_ref(), &owner),
        ))
    }

    async fn read_resource(
        &self,
        mut request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = Self::caller(&context);
        let item = Item::Resource(&request.uri);
        let owner = self.admit(&context, &caller, "resources/read", Some(item))?;
        if let Some(rounds) = input_rounds::applies(
            &context,
            &mut request.request_state,
            &mut request.input_responses,
        ) {
            let uri = request.uri.clone();
            let (gateway, call_owner) = (self.gateway.clone(), owner.clone());
            let call = move |caller, stop: CancellationToken| async move {
                gateway
                    .read_resource(request, &call_owner, Some(caller), &stop)
                    .await
                    .map_err(|e| e.to_mcp())
            };
            let parked = &self.gateway.input_rounds().resources;
            return input_rounds::run(parked, &context, owner, uri, caller, rounds, call).await;
        }
        self.gateway
            .read_resource(request, &owner, Some(caller), &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        no_cursor(request.as_ref())?;
        let (permissions, owner) = self.permissions(&context)?;
        Ok(ListPromptsResult::with_all_items(
            self.gateway.visible_prompts(permissions.as_ref(), &owner),
        ))
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = Self::caller(&context);
        let item = Item::Resource(&request.uri);
        let owner = self.admit(&context, &caller, "resources/subscribe", Some(item))?;
        self.gateway
            .subscribe_resource(request.uri, &owner, caller, &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = Self::caller(&context);
        let owner = self.admit(&context, &caller, "resources/unsubscribe", None)?;
        self.gateway
            .unsubscribe_resource(request.uri, &owner, caller.session, &context.ct)
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
        let caller = Self::caller(&context);
        let owner = self.admit(&context, &caller, "completion/complete", item)?;
        self.gateway
            .complete(request, &owner, Some(caller), &context.ct)
            .await
            .map_err(|e| e.to_mcp())
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let caller = Self::caller(&context);
        let item = Item::Prompt(&request.name);
        let owner = self.admit(&context, &caller, "prompts/get", Some(item))?;
        if let Some(rounds) = input_rounds::applies(
            &context,
            &mut request.request_state,
            &mut request.input_responses,
        ) {
            let name = request.name.clone();
            let (gateway, call_owner) = (self.gateway.clone(), owner.clone());
            let call = move |caller, stop: CancellationToken| async move {
                gateway
                    .get_prompt(request, &call_owner, Some(caller), &stop)
                    .await
                    .map_err(|e| e.to_mcp())
            };
            let parked = &self.gateway.input_rounds().prompts;
            return input_rounds::run(parked, &context, owner, name, caller, rounds, call).await;
        }
        self.gateway
            .get_prompt(request, &owner, Some(caller), &context.ct)
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
                self.gateway.sessions().set_level(id.clone(), request.level);
                // Its own upstream sessions filter what they send it by the same level.
                self.gateway
                    .set_level(&Owner::Session(id), request.level)
                    .await;
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
        let (_, owner) = self.permissions(context.request_context())?;
        listen::list_changes(&self.gateway, owner, context).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.gateway.sessions().peers().register(&context);
    }

    /// MCP 2025-11-25 tasks, which the endpoint hands over as custom requests
    /// ([`tasks`]).
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        self.tasks_request(request, context).await
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        if let Some(id) = session_id(&context.extensions) {
            self.gateway.roots_changed(&Owner::Session(id)).await;
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
