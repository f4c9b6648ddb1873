//! The MCP tools of code-interpreter sessions: `create_session`, `close_session`,
//! `upload_file`, `list_files`, `download_file` (`execute_code` takes `session_id`).
//! Refusals (unknown or ended session, bad name, too many sessions) are tool errors with the
//! reason, so a model can correct itself.

use rmcp::{
    RoleServer,
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    service::RequestContext,
    tool, tool_router,
};
use switchboard_protocol::sandbox::{
    CLOSE_SESSION_DESCRIPTION, CREATE_SESSION_DESCRIPTION, ClosedSession, CreateSessionRequest,
    DOWNLOAD_FILE_DESCRIPTION, FileContent, FileList, FileRequest, LIST_FILES_DESCRIPTION,
    SessionFile, SessionInfo, SessionRef, UPLOAD_FILE_DESCRIPTION, UploadFileRequest,
    file_tool_result,
};
use switchboard_runtime::auth::Identity;

use crate::{SandboxServer, error::ExecuteError, owner};

/// The owner of an MCP request: its caller, else its MCP session; narrowed by
/// `X-Switchboard-Owner`.
pub(crate) fn owner_of(context: &RequestContext<RoleServer>) -> String {
    let parts = context.extensions.get::<axum::http::request::Parts>();
    let identity = context
        .extensions
        .get::<Identity>()
        .or_else(|| parts.and_then(|p| p.extensions.get::<Identity>()));
    let header = |name: &str| {
        parts
            .and_then(|p| p.headers.get(name))
            .and_then(|v| v.to_str().ok())
    };
    owner::owner(
        identity,
        header("mcp-session-id"),
        header(owner::OWNER_HEADER),
    )
}

fn structured<T: serde::Serialize>(text: String, value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(value) => {
            let mut result = CallToolResult::structured(value);
            result.content = vec![ContentBlock::text(text)];
            result
        }
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("{text} ({e})"))]),
    }
}

fn refused(error: ExecuteError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(error.to_string())])
}

#[tool_router(router = session_tool_router, vis = "pub(crate)")]
impl SandboxServer {
    #[tool(
        description = CREATE_SESSION_DESCRIPTION,
        output_schema = schema_for_output::<SessionInfo>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    pub async fn create_session(
        &self,
        Parameters(args): Parameters<CreateSessionRequest>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        match self
            .sandbox()
            .sessions()
            .create(&owner_of(&context), &args)
            .await
        {
            Ok(info) => structured(info.to_text(), &info),
            Err(error) => refused(error),
        }
    }

    #[tool(
        description = CLOSE_SESSION_DESCRIPTION,
        output_schema = schema_for_output::<ClosedSession>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn close_session(
        &self,
        Parameters(args): Parameters<SessionRef>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let owner = owner_of(&context);
        match self
            .sandbox()
            .sessions()
            .close(&owner, &args.session_id)
            .await
        {
            Ok(closed) => {
                let answer = crate::session_api::closed_session(args.session_id, closed);
                structured(answer.message.clone(), &answer)
            }
            Err(error) => refused(error),
        }
    }

    #[tool(
        description = UPLOAD_FILE_DESCRIPTION,
        output_schema = schema_for_output::<SessionFile>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn upload_file(
        &self,
        Parameters(args): Parameters<UploadFileRequest>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let bytes = match args.bytes() {
            Ok(bytes) => bytes,
            Err(why) => return refused(ExecuteError::BadRequest(why)),
        };
        let owner = owner_of(&context);
        match self
            .sandbox()
            .sessions()
            .put(&owner, &args.session_id, &args.name, &bytes)
            .await
        {
            Ok(file) => structured(
                format!("Wrote /work/{} ({} bytes).", file.name, file.size),
                &file,
            ),
            Err(error) => refused(error),
        }
    }

    #[tool(
        description = LIST_FILES_DESCRIPTION,
        output_schema = schema_for_output::<FileList>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn list_files(
        &self,
        Parameters(args): Parameters<SessionRef>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let owner = owner_of(&context);
        match self
            .sandbox()
            .sessions()
            .files(&owner, &args.session_id)
            .await
        {
            Ok(list) => {
                let mut text = format!("{} files in /work:", list.files.len());
                for file in &list.files {
                    text.push_str(&format!("\n{} ({} bytes)", file.name, file.size));
                }
                if list.truncated {
                    text.push_str("\n(more files exist than listed)");
                }
                structured(text, &list)
            }
            Err(error) => refused(error),
        }
    }

    #[tool(
        description = DOWNLOAD_FILE_DESCRIPTION,
        output_schema = schema_for_output::<FileContent>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    pub async fn download_file(
        &self,
        Parameters(args): Parameters<FileRequest>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let owner = owner_of(&context);
        match self
            .sandbox()
            .sessions()
            .read(&owner, &args.session_id, &args.name)
            .await
        {
            Ok((bytes, mime)) => file_tool_result(&args.name, mime, &bytes),
            Err(error) => refused(error),
        }
    }
}
