//! The code-interpreter tools: `create_session`, `close_session`, `upload_file`, `list_files`
//! and `download_file`, forwarded to the sandbox that holds the session (see
//! [`crate::sandboxes`]) as the caller's [`Owner`].
//!
//! Every failure is a tool result with `isError` and the reason (an unknown or ended session,
//! a bad file name, a cap of the sandbox), never a JSON-RPC error: the model reads it and can
//! create a new session or fix the name.

use std::time::Instant;

use rmcp::{
    RoleServer,
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    service::RequestContext,
    tool, tool_router,
};
use serde::Serialize;
use switchboard_protocol::sandbox::{
    CLOSE_SESSION_DESCRIPTION, CREATE_SESSION_DESCRIPTION, ClosedSession, CreateSessionRequest,
    DOWNLOAD_FILE_DESCRIPTION, FileContent, FileList, FileRequest, LIST_FILES_DESCRIPTION,
    SessionFile, SessionInfo, SessionRef, UPLOAD_FILE_DESCRIPTION, UploadFileRequest,
    file_tool_result, mime_type_for, validate_file_name,
};

use crate::{
    client::{ClientError, Download, Owner},
    server::{CodeExecutorServer, unavailable},
    task_methods,
};

/// Why a session tool did not get an answer.
enum Failure {
    /// The arguments (or the caller) were refused here, before any request.
    Input(String),
    Sandbox(ClientError),
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self::Sandbox(error)
    }
}

#[tool_router(router = session_tool_router, vis = "pub(crate)")]
impl CodeExecutorServer {
    #[tool(
        description = CREATE_SESSION_DESCRIPTION,
        output_schema = schema_for_output::<SessionInfo>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    #[tracing::instrument(skip_all)]
    pub async fn create_session(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(args): Parameters<CreateSessionRequest>,
    ) -> CallToolResult {
        let start = Instant::now();
        let answer = match task_methods::owner(&context) {
            Ok(owner) => self
                .sandbox
                .create_session(&owner, &args)
                .await
                .map_err(Failure::from),
            Err(why) => Err(Failure::Input(why)),
        };
        self.finish(
            "create_session",
            start,
            "No session was created",
            answer,
            |info| structured(info.to_text(), info),
        )
    }

    #[tool(
        description = CLOSE_SESSION_DESCRIPTION,
        output_schema = schema_for_output::<ClosedSession>(),
        annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    #[tracing::instrument(skip_all, fields(session_id = %args.session_id))]
    pub async fn close_session(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(args): Parameters<SessionRef>,
    ) -> CallToolResult {
        let start = Instant::now();
        let answer = match task_methods::owner(&context) {
            Ok(owner) => self
                .sandbox
                .close_session(&owner, &args.session_id)
                .await
                .map_err(Failure::from),
            Err(why) => Err(Failure::Input(why)),
        };
        self.finish(
            "close_session",
            start,
            "The session was not closed",
            answer,
            |closed| structured(closed.message.clone(), closed),
        )
    }

    #[tool(
        description = UPLOAD_FILE_DESCRIPTION,
        output_schema = schema_for_output::<SessionFile>(),
        annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    #[tracing::instrument(skip_all, fields(session_id = %args.session_id, name = %args.name))]
    pub async fn upload_file(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(args): Parameters<UploadFileRequest>,
    ) -> CallToolResult {
        let start = Instant::now();
        let answer = self.upload(&context, &args).await;
        self.finish(
            "upload_file",
            start,
            "The file was not written",
            answer,
            |file| {
                let text = format!(
                    "Wrote /work/{} ({} bytes) in session {}.",
                    file.name, file.size, args.session_id
                );
                structured(text, file)
            },
        )
    }

    #[tool(
        description = LIST_FILES_DESCRIPTION,
        output_schema = schema_for_output::<FileList>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    #[tracing::instrument(skip_all, fields(session_id = %args.session_id))]
    pub async fn list_files(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(args): Parameters<SessionRef>,
    ) -> CallToolResult {
        let start = Instant::now();
        let answer = match task_methods::owner(&context) {
            Ok(owner) => self
                .sandbox
                .list_files(&owner, &args.session_id)
                .await
                .map_err(Failure::from),
            Err(why) => Err(Failure::Input(why)),
        };
        self.finish(
            "list_files",
            start,
            "No files were listed",
            answer,
            |list| structured(listing(list), list),
        )
    }

    #[tool(
        description = DOWNLOAD_FILE_DESCRIPTION,
        output_schema = schema_for_output::<FileContent>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    #[tracing::instrument(skip_all, fields(session_id = %args.session_id, name = %args.name))]
    pub async fn download_file(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(args): Parameters<FileRequest>,
    ) -> CallToolResult {
        let start = Instant::now();
        let answer = match (
            task_methods::owner(&context),
            validate_file_name(&args.name),
        ) {
            (Ok(owner), Ok(())) => self
                .sandbox
                .get_file(&owner, &args.session_id, &args.name)
                .await
                .map_err(Failure::from),
            (Err(why), _) | (_, Err(why)) => Err(Failure::Input(why)),
        };
        self.finish(
            "download_file",
            start,
            "The file was not read",
            answer,
            |download| file_result(&args.name, download),
        )
    }
}

impl CodeExecutorServer {
    /// `upload_file`'s work: the name and content checked here, then the bytes sent.
    async fn upload(
        &self,
        context: &RequestContext<RoleServer>,
        args: &UploadFileRequest,
    ) -> Result<SessionFile, Failure> {
        let owner: Owner = task_methods::owner(context).map_err(Failure::Input)?;
        validate_file_name(&args.name).map_err(Failure::Input)?;
        let content = args.bytes().map_err(Failure::Input)?;
        Ok(self
            .sandbox
            .put_file(&owner, &args.session_id, &args.name, content)
            .await?)
    }

    /// Record the call and turn its answer into the tool result (`ok` through `done`).
    fn finish<T>(
        &self,
        tool: &'static str,
        start: Instant,
        what: &str,
        answer: Result<T, Failure>,
        done: impl FnOnce(&T) -> CallToolResult,
    ) -> CallToolResult {
        match answer {
            Ok(value) => {
                self.metrics.record(tool, "ok", start);
                done(&value)
            }
            Err(Failure::Input(why)) => {
                self.metrics.record(tool, "refused", start);
                CallToolResult::error(vec![ContentBlock::text(format!("{what}: {why}"))])
            }
            Err(Failure::Sandbox(error)) => {
                tracing::warn!(%error, tool, "the sandbox did not deliver");
                self.metrics.record(tool, error.kind(), start);
                unavailable(what, &error)
            }
        }
    }
}

/// A result with `value` as structured content and `text` for the model.
fn structured<T: Serialize>(text: String, value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(value) => {
            let mut result = CallToolResult::structured(value);
            result.content = vec![ContentBlock::text(text)];
            result.is_error = Some(false);
            result
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(format!(
            "{text}\n(structured result unavailable: {error})"
        ))]),
    }
}

fn listing(list: &FileList) -> String {
    if list.files.is_empty() {
        return format!("Session {} has no files in /work.", list.session_id);
    }
    let mut text = format!("Files in /work of session {}:", list.session_id);
    for file in &list.files {
        text.push_str(&format!("\n{} ({} bytes)", file.name, file.size));
    }
    if list.truncated {
        text.push_str("\n(more files exist than are listed)");
    }
    text
}

/// A downloaded file as a tool result, rendered as the sandbox's own `/mcp` renders it
/// (`switchboard_protocol::sandbox::file_tool_result`), with the sandbox's `Content-Type`.
fn file_result(name: &str, download: &Download) -> CallToolResult {
    // The sandbox's Content-Type wins; its parameters (charset) are not part of the type.
    let mime_type = download
        .content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| mime_type_for(name).to_owned());
    file_tool_result(name, &mime_type, &download.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn download(bytes: &[u8], content_type: Option<&str>) -> Download {
        Download {
            bytes: bytes::Bytes::copy_from_slice(bytes),
            content_type: content_type.map(str::to_owned),
        }
    }

    #[test]
    fn the_sandboxs_content_type_wins_without_its_parameters() {
        let text = file_result(
            "out.bin",
            &download(b"hello", Some("text/plain; charset=utf-8")),
        );
        let structured = text.structured_content.expect("structured");
        assert_eq!(structured["mime_type"], "text/plain");
        let guessed = file_result("chart.png", &download(b"\x89PNG", None));
        assert!(guessed.content[0].as_image().is_some());
    }
}
