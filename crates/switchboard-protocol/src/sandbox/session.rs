//! Wire types of the sandbox's sessions and files: an interpreter that keeps its state across
//! `execute_code` calls, files uploaded into its `/work` and downloaded from it, and the files
//! and figures a program produces. Both MCP faces (sandbox, code-executor) and the REST API
//! (`POST /sessions`, `DELETE /sessions/{id}`, `/sessions/{id}/files/...`) use them; the field
//! names are part of the contract in docs/design.md.

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The description of `create_session`.
pub const CREATE_SESSION_DESCRIPTION: &str = "Start a code-interpreter session: one isolated Python interpreter that keeps its variables, imports and files in /work across execute_code calls that name its session_id. Only you can use it. It ends when you close it (close_session), after it has been idle for a while, or at its maximum lifetime; the answer says both. Use it when a task takes several steps (load data, then analyse, then plot); one-shot execute_code calls are faster for single programs.";
/// The description of `close_session`.
pub const CLOSE_SESSION_DESCRIPTION: &str =
    "End a code-interpreter session: its interpreter and its files are gone.";
/// The description of `upload_file`.
pub const UPLOAD_FILE_DESCRIPTION: &str = "Write a file into a session's /work directory, so programs in the session can open it (e.g. name='data.csv' is /work/data.csv). Give the content as text (content) or as base64 (content_base64). Names are relative paths of ordinary characters; '..', absolute paths and control characters are refused. An existing file is replaced.";
/// The description of `list_files`.
pub const LIST_FILES_DESCRIPTION: &str =
    "List the files in a session's /work directory (names relative to /work, sizes in bytes).";
/// The description of `download_file`.
pub const DOWNLOAD_FILE_DESCRIPTION: &str = "Read a file from a session's /work directory (name relative to /work). Text comes back as text, images as images, anything else as base64.";

/// Longest file name component, in bytes (as most file systems allow).
pub const MAX_NAME_COMPONENT_BYTES: usize = 255;
/// Longest relative path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Deepest relative path, in components.
pub const MAX_PATH_DEPTH: usize = 16;

/// A file given to a program: written under `/work` before a one-shot program starts, or into
/// a session by `upload_file`. Exactly one of `content` and `content_base64`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// Where the file goes, relative to /work (e.g. `data.csv`, `input/a.txt`).
    pub name: String,
    /// The content as UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The content as base64 (standard alphabet, padded), for binary files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
}

impl InputFile {
    /// The file's bytes, or why they cannot be had (both or neither content field, bad base64).
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        file_bytes(
            &self.name,
            self.content.as_deref(),
            self.content_base64.as_deref(),
        )
    }
}

fn file_bytes(name: &str, text: Option<&str>, base64: Option<&str>) -> Result<Vec<u8>, String> {
    match (text, base64) {
        (Some(text), None) => Ok(text.as_bytes().to_vec()),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("file '{name}': content_base64 is not valid base64: {e}")),
        (Some(_), Some(_)) => Err(format!(
            "file '{name}': give content or content_base64, not both"
        )),
        (None, None) => Err(format!(
            "file '{name}': give its content (content or content_base64)"
        )),
    }
}

/// A file a program produced: one it wrote under `/work/outputs/` during the execution, or a
/// matplotlib figure it left open (`figure-<n>.png`). Content is included within the limits;
/// `omitted` says why it is not.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct OutputFile {
    /// The name relative to /work (`outputs/chart.png`), or `figure-<n>.png` for an open figure.
    pub name: String,
    /// The MIME type guessed from the name (`image/png`, `text/csv`, ...).
    pub mime_type: String,
    /// Size in bytes.
    pub size: u64,
    /// The content as base64, when within the limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// Why the content is not included (too large, too many files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<String>,
}

impl OutputFile {
    /// Whether it is a picture a chat can show inline.
    pub fn is_image(&self) -> bool {
        self.mime_type.starts_with("image/")
    }
}

/// The arguments of `create_session` (`POST /sessions` takes the same, all optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Seconds of inactivity after which the session ends; capped by the sandbox's maximum,
    /// omitted means its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u64>,
}

/// A session as `create_session` and `GET /sessions` describe it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SessionInfo {
    /// Pass this as `session_id` to execute_code, upload_file, list_files, download_file and
    /// close_session.
    pub session_id: String,
    /// When it started, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// When it was last used, milliseconds since the Unix epoch.
    pub last_used_unix_ms: u64,
    /// It ends after this many seconds without a call.
    pub idle_timeout_seconds: u64,
    /// It ends at this time whatever happens, milliseconds since the Unix epoch.
    pub expires_unix_ms: u64,
    /// Programs run in it so far.
    pub executions: u64,
    /// Memory its interpreter and processes use now, when the sandbox can measure it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Its memory limit (the whole session's), when enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
}

impl SessionInfo {
    /// The session as text for a language model.
    pub fn to_text(&self) -> String {
        format!(
            "Session {} is open. Pass session_id=\"{}\" to execute_code to run programs in it: variables, imports and files in /work persist between calls. It ends after {} s without use (or when closed with close_session).",
            self.session_id, self.session_id, self.idle_timeout_seconds
        )
    }
}

/// The arguments of `close_session` and `list_files`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    /// The session, as create_session returned it.
    pub session_id: String,
}

/// The answer to `close_session` / `DELETE /sessions/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ClosedSession {
    pub session_id: String,
    /// True when this call ended it; false when it had ended already.
    pub closed: bool,
    pub message: String,
}

/// The arguments of `upload_file`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UploadFileRequest {
    /// The session, as create_session returned it.
    pub session_id: String,
    /// Where the file goes, relative to /work (e.g. `data.csv`).
    pub name: String,
    /// The content as UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The content as base64, for binary files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
}

impl UploadFileRequest {
    /// The file's bytes, or why they cannot be had.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        file_bytes(
            &self.name,
            self.content.as_deref(),
            self.content_base64.as_deref(),
        )
    }
}

/// The arguments of `download_file`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileRequest {
    /// The session, as create_session returned it.
    pub session_id: String,
    /// The file, relative to /work.
    pub name: String,
}

/// One file of a session's `/work`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SessionFile {
    /// Relative to /work.
    pub name: String,
    pub size: u64,
}

/// The answer to `list_files` / `GET /sessions/{id}/files`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FileList {
    pub session_id: String,
    pub files: Vec<SessionFile>,
    /// More files exist than the listing shows.
    pub truncated: bool,
}

/// A downloaded file (`download_file`; REST sends the bytes themselves).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FileContent {
    pub name: String,
    pub mime_type: String,
    pub size: u64,
    pub content_base64: String,
}

/// Check a file name relative to `/work`: `/`-separated components, none empty, `.` or `..`,
/// no control characters (NUL included) or backslashes, within the length and depth limits.
/// The sandbox enforces this; other services check early to answer sooner.
pub fn validate_file_name(name: &str) -> Result<(), String> {
    let shown: String = name.chars().take(80).collect();
    if name.is_empty() {
        return Err("a file name is required".into());
    }
    if name.len() > MAX_PATH_BYTES {
        return Err(format!(
            "file name '{shown}...' is {} bytes long; at most {MAX_PATH_BYTES}",
            name.len()
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!(
            "file name {shown:?} contains a control character or backslash"
        ));
    }
    if name.starts_with('/') {
        return Err(format!(
            "file name '{shown}' must be relative to /work (no leading '/')"
        ));
    }
    let components: Vec<&str> = name.split('/').collect();
    if components.len() > MAX_PATH_DEPTH {
        return Err(format!(
            "file name '{shown}' is nested {} deep; at most {MAX_PATH_DEPTH}",
            components.len()
        ));
    }
    for component in components {
        match component {
            "" => return Err(format!("file name '{shown}' has an empty component")),
            "." | ".." => {
                return Err(format!(
                    "file name '{shown}' may not contain '.' or '..' components"
                ));
            }
            c if c.len() > MAX_NAME_COMPONENT_BYTES => {
                return Err(format!(
                    "file name '{shown}' has a component longer than {MAX_NAME_COMPONENT_BYTES} bytes"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The MIME type of a file, guessed from its extension.
pub fn mime_type_for(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "csv" => "text/csv",
        "txt" | "log" | "py" | "md" => "text/plain",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            ".",
            "a/./b",
            "nul\0byte",
            "new\nline",
            "back\\slash",
            &"x".repeat(256),
            &"a/".repeat(17),
            &"y".repeat(MAX_PATH_BYTES + 1),
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["data.csv", "outputs/chart.png", "a b/ç.txt", ".hidden"] {
            assert!(validate_file_name(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn content_is_text_or_base64_never_both() {
        let file = |content: Option<&str>, b64: Option<&str>| InputFile {
            name: "f".into(),
            content: content.map(str::to_owned),
            content_base64: b64.map(str::to_owned),
        };
        assert_eq!(file(Some("hi"), None).bytes(), Ok(b"hi".to_vec()));
        assert_eq!(file(None, Some("aGk=")).bytes(), Ok(b"hi".to_vec()));
        assert!(file(Some("hi"), Some("aGk=")).bytes().is_err());
        assert!(file(None, None).bytes().is_err());
        assert!(file(None, Some("***")).bytes().is_err());
    }

    #[test]
    fn mime_types_follow_extensions() {
        assert_eq!(mime_type_for("outputs/Chart.PNG"), "image/png");
        assert_eq!(mime_type_for("x.svg"), "image/svg+xml");
        assert_eq!(mime_type_for("noext"), "application/octet-stream");
    }
}
