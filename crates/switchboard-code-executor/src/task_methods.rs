//! The handler's side of tasks: a task-augmented `tools/call` and `tasks/get`, `tasks/result`,
//! `tasks/list`, `tasks/cancel`, as rmcp hands them over (custom requests; see
//! [`crate::front`] for how they become so).

use rmcp::{
    ErrorData, RoleServer,
    handler::server::wrapper::Parameters,
    model::{CustomRequest, CustomResult, ErrorCode, JsonObject},
    service::RequestContext,
};
use serde::Deserialize;
use serde_json::Value;
use switchboard_protocol::{
    mcp_trace,
    sandbox::{ExecuteRequest, InstallRequest},
};
use switchboard_runtime::auth::{Identity, Method, ON_BEHALF_OF};
use tracing::Instrument;

use crate::{
    client::Owner,
    server::CodeExecutorServer,
    tasks::{
        Caller, Job,
        wire::{self, TaskParams},
    },
};

/// The params of a task-augmented `tools/call`.
#[derive(Deserialize)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
    #[serde(default)]
    task: Option<TaskParams>,
}

/// Whose tasks and sessions this request may reach: the authenticated caller (its method and
/// subject), or, with authentication off, the MCP session; narrowed to a user the caller
/// names in `params._meta["io.switchboard/on-behalf-of"].subject` (as the gateway names the
/// person behind a chat). Naming a user only narrows: a caller never reaches another caller's
/// tasks or sessions, so no delegate list is needed for it. The parts are kept apart (a JSON
/// array), so no subject can pass for another.
pub(crate) fn caller(
    context: &RequestContext<RoleServer>,
    params: &Value,
) -> Result<Caller, ErrorData> {
    let parts = context.extensions.get::<http::request::Parts>();
    let identity = context
        .extensions
        .get::<Identity>()
        .or_else(|| parts.and_then(|p| p.extensions.get::<Identity>()));
    let mut owner = match identity.filter(|i| i.method != Method::Anonymous) {
        Some(identity) => vec![identity.method.as_str(), identity.subject.as_str()],
        None => {
            let session = parts
                .and_then(|p| p.headers.get("mcp-session-id"))
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    ErrorData::invalid_request(
                        "tasks and sessions need an MCP session (Mcp-Session-Id) or an authenticated caller",
                        None,
                    )
                })?;
            vec!["session", session]
        }
    };
    // rmcp moves `params._meta` into the context's meta; a copy left in params counts too.
    let user = params
        .get("_meta")
        .and_then(|meta| meta.get(ON_BEHALF_OF))
        .or_else(|| context.meta.get(ON_BEHALF_OF))
        .and_then(|user| user.get("subject"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if let Some(user) = user {
        owner.extend(["for", user]);
    }
    serde_json::to_string(&owner)
        .map(Caller)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

/// The owner of the sessions a plain tool call may reach (its caller, as for tasks; rmcp has
/// moved the call's `_meta` into the context), or why it has none.
pub(crate) fn owner(context: &RequestContext<RoleServer>) -> Result<Owner, String> {
    caller(context, &Value::Null)
        .map(|caller| Owner::from(&caller))
        .map_err(|error| error.message.into_owned())
}

fn task_id(params: &Value) -> Result<String, ErrorData> {
    params
        .get("taskId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ErrorData::invalid_params("Invalid params: missing taskId", None))
}

fn to_result<T: serde::Serialize>(value: &T) -> Result<CustomResult, ErrorData> {
    serde_json::to_value(value)
        .map(CustomResult)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

fn arguments<T: serde::de::DeserializeOwned>(
    tool: &str,
    arguments: Option<JsonObject>,
) -> Result<T, ErrorData> {
    serde_json::from_value(Value::Object(arguments.unwrap_or_default())).map_err(|e| {
        ErrorData::invalid_params(format!("invalid arguments for tool {tool}: {e}"), None)
    })
}

impl CodeExecutorServer {
    /// A custom request: one of the tasks methods, or -32601.
    pub(crate) async fn task_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let params = request.params.unwrap_or(Value::Null);
        match request.method.as_str() {
            wire::CALL_METHOD => self.create_task(params, context).await,
            wire::GET_METHOD => to_result(
                &self
                    .tasks()
                    .get(&caller(&context, &params)?, &task_id(&params)?)?,
            ),
            wire::RESULT_METHOD => {
                let (caller, id) = (caller(&context, &params)?, task_id(&params)?);
                let result = self.tasks().result(&caller, &id, &context.ct).await?;
                Ok(CustomResult(result))
            }
            wire::LIST_METHOD => {
                let cursor = params.get("cursor").and_then(Value::as_str);
                Ok(CustomResult(
                    self.tasks().list(&caller(&context, &params)?, cursor)?,
                ))
            }
            wire::CANCEL_METHOD => {
                let (caller, id) = (caller(&context, &params)?, task_id(&params)?);
                to_result(&self.tasks().cancel(&caller, &id).await?)
            }
            other => Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                other.to_owned(),
                None,
            )),
        }
    }

    /// A task-augmented `tools/call`: the arguments are checked as a plain call checks them,
    /// then the call runs as a task; the answer is the task (`CreateTaskResult`).
    async fn create_task(
        &self,
        params: Value,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let caller = caller(&context, &params)?;
        let call: CallParams = serde_json::from_value(params)
            .map_err(|e| ErrorData::invalid_params(format!("invalid tools/call: {e}"), None))?;
        // The span continues the caller's trace (`_meta.traceparent`, which rmcp moves into
        // the context, else the HTTP request's) as a plain call's does.
        let span = mcp_trace::tool_call_span(crate::SERVICE, &call.name, &context);
        let server = self.clone();
        let job: Job = match call.name.as_str() {
            "execute_code" => {
                let args: ExecuteRequest = arguments(&call.name, call.arguments)?;
                // The task's caller owns the sessions it may run in, as a plain call's does.
                let owner = Ok(Owner::from(&caller));
                Box::pin(async move { server.run_execute(args, owner).await }.instrument(span))
            }
            "install_package" => {
                let args: InstallRequest = arguments(&call.name, call.arguments)?;
                Box::pin(
                    async move { server.install_package(Parameters(args)).await }.instrument(span),
                )
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("tool '{other}' not found"),
                    None,
                ));
            }
        };
        let ttl = call.task.and_then(|t| t.ttl);
        let task = self
            .tasks()
            .create(&caller, &call.name, ttl, Some(context.peer.clone()), job)
            .await?;
        Ok(CustomResult(wire::create_result(&task)))
    }
}
