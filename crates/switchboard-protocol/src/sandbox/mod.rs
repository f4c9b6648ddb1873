//! Wire types of the sandbox REST API (`POST /execute`, `POST /packages`, ...).
//!
//! The code-executor forwards `execute_code`/`install_package` calls as these requests, and
//! their results are the structured content of those tools, so the field names here are part
//! of the contract in docs/design.md.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod session;

pub use session::*;

/// The description of `execute_code`, the same on both MCP faces (sandbox, code-executor).
pub const EXECUTE_CODE_DESCRIPTION: &str = "Run a Python 3 program in an isolated sandbox and return its output. Without session_id it runs in a fresh interpreter that is discarded afterwards; with the session_id of a session from create_session it runs in that session's interpreter, where variables, imports and files in /work from earlier calls persist. The program has no network access, an empty environment, a private working directory (/work) and limits on time, memory, processes and output. Print what you want to see. Files given in `files` are written to /work first; pictures and files the program writes to /work/outputs/ (and matplotlib figures it leaves open) come back with the result, pictures as images. Returns stdout, stderr, the exit code (or the signal that killed it), the duration, and flags for timeout, memory limit and truncated output; a program that raises is reported as an error with its traceback. Packages installed with install_package can be imported.";
/// The description of `install_package`.
pub const INSTALL_PACKAGE_DESCRIPTION: &str = "Install a Python package so later execute_code programs can import it. Give the package name and optionally an exact version (package='requests', version='2.31.0', or package='requests==2.31.0'); version ranges are not accepted. Some packages are refused (e.g. known-malicious names) and some are held for a human operator's approval. The result says installed, rejected (with the reason), pending_approval (with an approval id; the package is not usable until approved) or failed (pip's error).";

/// `POST /execute` body; also the arguments of the `execute_code` tool.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The Python 3 program to run. It runs as a fresh process with no network, an empty
    /// environment and a private, temporary working directory; print what you want to see.
    pub code: String,
    /// Wall-clock limit in seconds for this run. Capped by the sandbox's configured maximum;
    /// omitted means the sandbox default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Text given to the program on standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Run in this code-interpreter session (from create_session) instead of a fresh
    /// interpreter: variables, imports and files in /work from earlier calls are there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Files written under /work before the program starts (name relative to /work, content
    /// as text or base64). Files the program writes to /work/outputs/ come back in the result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<InputFile>,
}

/// The outcome of one execution; also the structured content of `execute_code`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ExecutionResult {
    /// What the program wrote to standard output (possibly truncated, see `truncated`).
    pub stdout: String,
    /// What the program wrote to standard error, including any traceback.
    pub stderr: String,
    /// The exit status, when the program exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended the program (e.g. `SIGKILL`), when it was killed.
    pub signal: Option<String>,
    /// Wall-clock time of the run in milliseconds.
    pub duration_ms: f64,
    /// The run was killed because it exceeded its wall-clock or CPU time limit.
    pub timed_out: bool,
    /// The run was killed or failed because it exceeded its memory limit.
    pub memory_exceeded: bool,
    /// Output went over the cap; stdout/stderr hold only the first part.
    pub truncated: bool,
    /// True when the program exited with status 0 within its limits.
    pub success: bool,
    /// Pictures the program produced: PNG/SVG/JPEG files it wrote to /work/outputs/ and
    /// matplotlib figures it left open (when it saved no picture itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<OutputFile>,
    /// Other files the program wrote to /work/outputs/.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<OutputFile>,
    /// In a session: why the session ended during this run (its state is gone; later calls
    /// with its id are refused). Absent while the session lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ended: Option<String>,
}

/// `POST /packages` body; also the arguments of the `install_package` tool.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// The package name as on the package index, e.g. `requests`.
    pub package: String,
    /// An exact version to install, e.g. `2.31.0`; omitted means the newest allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What became of an install request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InstallStatus {
    /// Installed (or already present); programs can import it now.
    Installed,
    /// Refused; `reason` says why.
    Rejected,
    /// Held until an operator approves it; `approval_id` identifies the request.
    PendingApproval,
    /// Allowed, but pip could not install it (no such package or version, no compatible
    /// wheel, index unreachable); `reason` has pip's error.
    Failed,
}

/// The answer to an install request; also the structured content of `install_package`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct InstallOutcome {
    pub status: InstallStatus,
    /// The normalized package name (PEP 503).
    pub package: String,
    /// The version asked for or installed, when known.
    pub version: Option<String>,
    /// Why the request was rejected or held.
    pub reason: Option<String>,
    /// The id an operator approves, for `pending_approval`.
    pub approval_id: Option<String>,
    /// Exact pins installed by this request, dependencies included (`name==version`).
    #[serde(default)]
    pub installed: Vec<String>,
    /// A sentence for people and models.
    pub message: String,
}

/// How much of each stream [`ExecutionResult::to_text`] shows (the structured content keeps all).
const TEXT_STREAM_LIMIT: usize = 64 * 1024;

fn clip(text: &str) -> (&str, bool) {
    if text.len() <= TEXT_STREAM_LIMIT {
        return (text, false);
    }
    let mut end = TEXT_STREAM_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

impl ExecutionResult {
    /// A one-line account of how the run ended.
    pub fn headline(&self) -> String {
        let ms = self.duration_ms;
        if self.timed_out {
            format!("The program was stopped: it exceeded its time limit ({ms:.0} ms).")
        } else if self.memory_exceeded {
            format!("The program ran out of memory: it exceeded its memory limit ({ms:.0} ms).")
        } else if let Some(signal) = &self.signal {
            if self.truncated {
                format!(
                    "The program was stopped ({signal}): its output exceeded the output limit ({ms:.0} ms)."
                )
            } else {
                format!("The program was killed by {signal} ({ms:.0} ms).")
            }
        } else {
            match self.exit_code {
                Some(0) => format!("The program exited successfully (exit code 0, {ms:.1} ms)."),
                Some(code) => format!("The program failed with exit code {code} ({ms:.1} ms)."),
                None => format!("The program ended without an exit code ({ms:.1} ms)."),
            }
        }
    }

    /// The result as text for a language model: what happened, then stdout and stderr.
    pub fn to_text(&self) -> String {
        let mut text = self.headline();
        if self.truncated {
            text.push_str(" Output was truncated to the first part.");
        }
        if let Some(why) = &self.session_ended {
            text.push_str(&format!(
                " The session ended: {why} Its variables and files are gone; create a new session to go on."
            ));
        }
        for file in self.images.iter().chain(&self.files) {
            text.push_str(&format!(
                "\nProduced {} ({}, {} bytes){}.",
                file.name,
                file.mime_type,
                file.size,
                file.omitted
                    .as_deref()
                    .map(|why| format!("; not returned: {why}"))
                    .unwrap_or_default()
            ));
        }
        for (name, stream) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if stream.is_empty() {
                text.push_str(&format!("\n\n{name}: (empty)"));
            } else {
                let (shown, clipped) = clip(stream);
                text.push_str(&format!("\n\n{name}:\n{shown}"));
                if clipped {
                    text.push_str(&format!(
                        "\n[... {} more bytes of {name} in the structured result]",
                        stream.len() - shown.len()
                    ));
                }
            }
        }
        text
    }
}

impl InstallOutcome {
    /// The outcome as text for a language model.
    pub fn to_text(&self) -> String {
        let mut text = self.message.clone();
        if let Some(reason) = &self.reason
            && !self.message.contains(reason.as_str())
        {
            text.push_str(&format!("\nReason: {reason}"));
        }
        if let Some(id) = &self.approval_id {
            text.push_str(&format!("\nApproval id: {id}"));
        }
        if !self.installed.is_empty() {
            text.push_str(&format!("\nInstalled: {}", self.installed.join(", ")));
        }
        text
    }

    /// Whether the request ended in a failure the caller should treat as an error.
    pub fn is_error(&self) -> bool {
        matches!(self.status, InstallStatus::Rejected | InstallStatus::Failed)
    }
}

/// The MCP tool result of an execution: text for the model, every field as structured
/// content, `isError` when the program did not succeed (the model must see the traceback),
/// and each picture it produced as image content.
pub fn execution_tool_result(result: &ExecutionResult) -> CallToolResult {
    let mut tool = structured_tool_result(
        result.to_text(),
        serde_json::to_value(result),
        !result.success,
    );
    for image in &result.images {
        if let Some(data) = &image.content_base64 {
            tool.content
                .push(ContentBlock::image(data.clone(), image.mime_type.clone()));
        }
    }
    tool
}

/// A downloaded file as a tool result, the same on both MCP faces: UTF-8 text as text (unless
/// it is a picture, or binary with NULs), a picture as image content, anything else as base64
/// text; always [`FileContent`] as structured content.
pub fn file_tool_result(name: &str, mime_type: &str, bytes: &[u8]) -> CallToolResult {
    use base64::Engine;
    let file = FileContent {
        name: name.to_owned(),
        mime_type: mime_type.to_owned(),
        size: bytes.len() as u64,
        content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
    };
    let image = file.mime_type.starts_with("image/");
    let textual = file.mime_type.starts_with("text/") || file.mime_type == "application/json";
    let content = match std::str::from_utf8(bytes) {
        Ok(text) if textual || (!image && !text.contains('\0')) => ContentBlock::text(text),
        _ if image => ContentBlock::image(file.content_base64.clone(), file.mime_type.clone()),
        _ => ContentBlock::text(format!(
            "{} ({}, {} bytes), base64:\n{}",
            file.name, file.mime_type, file.size, file.content_base64
        )),
    };
    let mut result = structured_tool_result(String::new(), serde_json::to_value(&file), false);
    result.content = vec![content];
    result
}

/// The MCP tool result of an install decision; `isError` for rejected and failed.
pub fn install_tool_result(outcome: &InstallOutcome) -> CallToolResult {
    structured_tool_result(
        outcome.to_text(),
        serde_json::to_value(outcome),
        outcome.is_error(),
    )
}

fn structured_tool_result(
    text: String,
    value: serde_json::Result<serde_json::Value>,
    is_error: bool,
) -> CallToolResult {
    match value {
        Ok(value) => {
            let mut result = CallToolResult::structured(value);
            result.content = vec![ContentBlock::text(text)];
            result.is_error = Some(is_error);
            result
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(format!(
            "{text}\n(structured result unavailable: {error})"
        ))]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> ExecutionResult {
        ExecutionResult {
            stdout: "hello\n".into(),
            stderr: String::new(),
            exit_code: Some(0),
            signal: None,
            duration_ms: 1.25,
            timed_out: false,
            memory_exceeded: false,
            truncated: false,
            success: true,
            images: Vec::new(),
            files: Vec::new(),
            session_ended: None,
        }
    }

    #[test]
    fn text_shows_outcome_and_both_streams() {
        let text = result().to_text();
        assert!(
            text.starts_with("The program exited successfully"),
            "{text}"
        );
        assert!(text.contains("stdout:\nhello"), "{text}");
        assert!(text.contains("stderr: (empty)"), "{text}");
        let timed_out = ExecutionResult {
            timed_out: true,
            exit_code: None,
            signal: Some("SIGKILL".into()),
            success: false,
            ..result()
        };
        assert!(timed_out.to_text().contains("time limit"));
    }

    #[test]
    fn long_streams_are_clipped_on_a_char_boundary() {
        let long = ExecutionResult {
            stdout: "é".repeat(TEXT_STREAM_LIMIT),
            ..result()
        };
        let text = long.to_text();
        assert!(text.contains("more bytes of stdout"));
    }

    #[test]
    fn tool_results_carry_text_structure_and_error_flag() {
        let failed = ExecutionResult {
            stderr: "Traceback ...\nValueError: boom\n".into(),
            exit_code: Some(1),
            success: false,
            ..result()
        };
        let tool = execution_tool_result(&failed);
        assert_eq!(tool.is_error, Some(true));
        let text = tool.content[0]
            .as_text()
            .map(|t| t.text.clone())
            .unwrap_or_default();
        assert!(text.contains("ValueError: boom"), "{text}");
        assert_eq!(
            tool.structured_content
                .as_ref()
                .and_then(|v| v.get("exit_code")),
            Some(&serde_json::json!(1))
        );
        assert_eq!(execution_tool_result(&result()).is_error, Some(false));
    }

    #[test]
    fn images_become_image_content_after_the_text() {
        let drew = ExecutionResult {
            images: vec![OutputFile {
                name: "figure-1.png".into(),
                mime_type: "image/png".into(),
                size: 3,
                content_base64: Some("iVBO".into()),
                omitted: None,
            }],
            ..result()
        };
        let tool = execution_tool_result(&drew);
        assert_eq!(tool.content.len(), 2);
        let image = tool.content[1].as_image().expect("an image block");
        assert_eq!(
            (image.data.as_str(), image.mime_type.as_str()),
            ("iVBO", "image/png")
        );
        assert!(
            tool.content[0]
                .as_text()
                .is_some_and(|t| t.text.contains("figure-1.png"))
        );
    }

    #[test]
    fn downloads_are_text_images_or_base64() {
        let text = file_tool_result("out.txt", "text/plain", b"hello");
        assert_eq!(
            text.content[0].as_text().map(|t| t.text.as_str()),
            Some("hello")
        );
        let structured = text.structured_content.expect("structured");
        assert_eq!(structured["content_base64"], "aGVsbG8=");
        let image = file_tool_result("chart.png", "image/png", b"\x89PNG");
        assert!(image.content[0].as_image().is_some());
        for binary in [&b"\xff\x00"[..], b"nul\x00inside"] {
            let result = file_tool_result("data.bin", "application/octet-stream", binary);
            let shown = result.content[0].as_text().map(|t| t.text.clone());
            assert!(shown.is_some_and(|t| t.contains("base64:")), "{result:?}");
            assert_eq!(result.is_error, Some(false));
        }
    }

    #[test]
    fn install_outcomes_round_trip_with_defaults() {
        let json = r#"{"status":"failed","package":"x","version":null,"reason":"no such version","approval_id":null,"message":"pip failed"}"#;
        let outcome: InstallOutcome =
            serde_json::from_str(json).expect("parses without `installed`");
        assert_eq!(outcome.status, InstallStatus::Failed);
        assert!(outcome.is_error());
        assert!(outcome.to_text().contains("no such version"));
    }
}
