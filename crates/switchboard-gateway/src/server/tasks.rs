//! The MCP face of tasks (MCP 2025-11-25): a task-augmented `tools/call`, `tasks/get`,
//! `tasks/result`, `tasks/cancel` and `tasks/list`.
//!
//! rmcp 3.11 models the later tasks extension, so it would drop a call's `task` and parse
//! `tasks/get` and `tasks/cancel` as that extension's requests: the endpoint renames those
//! three before rmcp reads them (`crate::endpoint`), and all five reach the handler as custom
//! requests. Who asks, and on whose upstream sessions, is decided as for a tool call; the
//! routing is `crate::gateway::tasks`.

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{CallToolRequestParams, CustomRequest, CustomResult, ErrorCode, JsonObject},
    service::RequestContext,
};
use serde_json::Value;
use switchboard_protocol::mcp_trace;
use tracing::Instrument;

use super::{GatewayServer, failed_call, refused_call};
use crate::{
    gateway::{name_in, tasks::Asker},
    sessions::session_id,
    upstream::Owner,
};

/// A `tools/call` with `params.task`, as the endpoint renames it.
pub(crate) const CALL: &str = "io.switchboard/tasks/call";
/// `tasks/get`, renamed by the endpoint (rmcp would parse it as the extension's).
pub(crate) const GET: &str = "io.switchboard/tasks/get";
/// `tasks/cancel`, renamed likewise.
pub(crate) const CANCEL: &str = "io.switchboard/tasks/cancel";
/// Unknown to rmcp: custom requests under their own names.
pub(crate) const RESULT: &str = "tasks/result";
pub(crate) const LIST: &str = "tasks/list";
/// All of them: the endpoint answers them on its own path, like a tool call.
pub(crate) const METHODS: &[&str] = &[CALL, GET, CANCEL, RESULT, LIST];

impl GatewayServer {
    /// One of the tasks requests, or -32601 (also when no upstream offers tasks: the gateway
    /// then declares no `tasks` capability).
    pub(super) async fn tasks_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        let method = request.method;
        let not_found = || McpError::new(ErrorCode::METHOD_NOT_FOUND, method.clone(), None);
        if self.gateway.catalog().tasks.is_none() {
            return Err(not_found());
        }
        let params = match request.params {
            None | Some(Value::Null) => JsonObject::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(McpError::invalid_params("params must be an object", None)),
        };
        let upstream_method = match method.as_str() {
            CALL => return self.call_as_task(params, context).await.map(CustomResult),
            GET => "tasks/get",
            CANCEL => "tasks/cancel",
            RESULT => "tasks/result",
            LIST => "tasks/list",
            _ => return Err(not_found()),
        };
        let identity = self.identity(&context)?;
        let owner = Owner::of(session_id(&context.extensions).as_ref(), identity.as_ref());
        let permissions = self.gateway.permissions(identity.as_ref());
        let mut meta = Some(context.meta.clone());
        name_in(identity.as_ref(), &mut meta);
        let meta = meta.unwrap_or_default();
        let asker = Asker {
            meta,
            permissions: permissions.as_ref(),
            owner: &owner,
            caller: Self::caller(&context),
            ct: &context.ct,
        };
        let answer = if upstream_method == "tasks/list" {
            let cursor = match params.get("cursor") {
                None | Some(Value::Null) => None,
                Some(Value::String(cursor)) => Some(cursor.as_str()),
                Some(_) => return Err(McpError::invalid_params("invalid cursor", None)),
            };
            self.gateway.list_tasks(cursor, asker).await
        } else {
            let request = self.gateway.task_request(upstream_method, params, asker);
            request.await
        };
        answer.map(CustomResult)
    }

    /// A task-augmented `tools/call`: admitted as any call is, then sent to the tool's
    /// upstream with its `task`; the answer is the upstream's `CreateTaskResult`.
    async fn call_as_task(
        &self,
        mut params: JsonObject,
        context: RequestContext<RoleServer>,
    ) -> Result<Value, McpError> {
        let task = match params.remove("task") {
            Some(task @ Value::Object(_)) => task,
            _ => {
                return Err(McpError::invalid_params(
                    "a task-augmented tools/call needs params.task, an object",
                    None,
                ));
            }
        };
        let mut call: CallToolRequestParams = serde_json::from_value(Value::Object(params))
            .map_err(|e| McpError::invalid_params(format!("invalid tools/call: {e}"), None))?;
        // rmcp moved the request's `_meta` into the context.
        call.meta = Some(context.meta.clone());
        let span = mcp_trace::tool_call_span(crate::SERVICE, &call.name, &context);
        let identity = self.identity(&context)?;
        let owner = Owner::of(session_id(&context.extensions).as_ref(), identity.as_ref());
        let audit = match self
            .gateway
            .admit_call(identity.as_ref(), &owner, &mut call, &span)
        {
            Ok(audit) => audit,
            Err(refused) => return refused_call(refused).and_then(to_value),
        };
        let started = self
            .gateway
            .call_as_task(call, task, &owner, Self::caller(&context), &context.ct)
            .instrument(span)
            .await;
        let answer = match started {
            Ok(answer) => Ok(answer),
            Err(error) => failed_call(error).and_then(to_value),
        };
        match &answer {
            Ok(answer) if answer["isError"] == true => audit.finish("error", None),
            Ok(_) => audit.finish("ok", None),
            Err(error) => audit.finish("error", Some(&error.message)),
        }
        answer
    }
}

/// A plain result in place of the task (a refusal, a failure to reach the upstream), shaped
/// for the 2025-era session that asked: without the 2026-07-28 `resultType` marker.
fn to_value(mut result: rmcp::model::CallToolResult) -> Result<Value, McpError> {
    result.result_type = None;
    serde_json::to_value(result).map_err(|e| McpError::internal_error(e.to_string(), None))
}
