//! Files in and out of a run: the input files written under `/work` before a program starts,
//! and what the interpreter reports on its results pipe afterwards (files the program wrote to
//! `/work/outputs/`, figures it left open).
//!
//! The report comes from the sandboxed process, so it is untrusted: read up to a cap, parsed
//! leniently, and anything malformed is dropped with a note in stderr (it can only spoil the
//! program's own result).

use base64::Engine;
use serde::Deserialize;
use switchboard_protocol::sandbox::{ExecutionResult, InputFile, OutputFile, mime_type_for};

/// What a run may hand back from `/work/outputs/`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputLimits {
    /// Files returned with their content; later ones are named with a reason.
    pub max_files: usize,
    /// Bytes of content returned in all.
    pub max_bytes: usize,
}

impl OutputLimits {
    /// Most bytes read from the results pipe: base64 grows content by 4/3, and names and sizes
    /// of up to 256 listed files come on top.
    pub(crate) fn read_cap(&self) -> usize {
        self.max_bytes / 3 * 4 + 64 * 1024 + 256 * 1024
    }
}

/// Input files, validated, as the interpreter reads them: JSON `[{"name", "data"}]` with
/// base64 contents (empty when there are none, the common case: nothing to parse).
#[derive(Debug, Clone, Default)]
pub(crate) struct InputFiles(Vec<u8>);

impl InputFiles {
    /// Check names and sizes: each file at most `max_file_bytes`, all together at most
    /// `max_total_bytes`.
    pub(crate) fn new(
        files: &[InputFile],
        max_count: usize,
        max_file_bytes: u64,
        max_total_bytes: u64,
    ) -> Result<Self, String> {
        if files.is_empty() {
            return Ok(Self::default());
        }
        if files.len() > max_count {
            return Err(format!(
                "{} input files given; at most {max_count}",
                files.len()
            ));
        }
        let mut total = 0u64;
        let mut list = Vec::with_capacity(files.len());
        for file in files {
            switchboard_protocol::sandbox::validate_file_name(&file.name)?;
            let bytes = file.bytes()?;
            let size = bytes.len() as u64;
            if size > max_file_bytes {
                return Err(format!(
                    "input file '{}' is {size} bytes; at most {max_file_bytes}",
                    file.name
                ));
            }
            total += size;
            list.push(serde_json::json!({
                "name": file.name,
                "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
            }));
        }
        if total > max_total_bytes {
            return Err(format!(
                "input files add up to {total} bytes; at most {max_total_bytes}"
            ));
        }
        serde_json::to_vec(&list)
            .map(Self)
            .map_err(|e| format!("input files: {e}"))
    }

    /// The JSON the interpreter reads (empty for none).
    pub(crate) fn json(&self) -> &[u8] {
        &self.0
    }

    /// The files as a JSON value, for a session's request.
    pub(crate) fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0).unwrap_or(serde_json::Value::Array(Vec::new()))
    }
}

/// One entry of the interpreter's report.
#[derive(Deserialize)]
pub(crate) struct Produced {
    name: String,
    size: u64,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    omitted: Option<String>,
}

/// Add the reported files to `result`: pictures to `images`, the rest to `files`.
pub(super) fn attach(result: &mut ExecutionResult, report: &[u8], cut: bool) {
    match serde_json::from_slice::<Vec<Produced>>(report) {
        Ok(produced) if !cut => add(result, produced),
        Ok(_) | Err(_) => result.stderr.push_str(if cut {
            "\n(the files this run produced were not returned: their report exceeded the limit)\n"
        } else {
            "\n(the files this run produced were not returned: their report was malformed)\n"
        }),
    }
}

pub(crate) fn add(result: &mut ExecutionResult, produced: Vec<Produced>) {
    for item in produced {
        let file = OutputFile {
            mime_type: mime_type_for(&item.name).to_owned(),
            name: item.name,
            size: item.size,
            content_base64: item.data,
            omitted: item.omitted,
        };
        if file.is_image() {
            result.images.push(file);
        } else {
            result.files.push(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> ExecutionResult {
        serde_json::from_value(serde_json::json!({
            "stdout": "", "stderr": "", "exit_code": 0, "signal": null, "duration_ms": 1.0,
            "timed_out": false, "memory_exceeded": false, "truncated": false, "success": true
        }))
        .expect("a result")
    }

    #[test]
    fn reports_split_into_images_and_files() {
        let mut result = empty();
        let report = br#"[{"name":"figure-1.png","size":3,"data":"AAAA"},
            {"name":"outputs/t.csv","size":9,"data":"YSxiCjEsMgo="},
            {"name":"outputs/big.bin","size":99999999,"omitted":"too large"}]"#;
        attach(&mut result, report, false);
        assert_eq!(result.images.len(), 1);
        assert_eq!(result.images[0].mime_type, "image/png");
        assert_eq!(result.files.len(), 2);
        assert_eq!(result.files[1].omitted.as_deref(), Some("too large"));
    }

    #[test]
    fn a_malformed_or_cut_report_is_dropped_with_a_note() {
        let mut result = empty();
        attach(&mut result, b"[{\"name\": 1}]", false);
        attach(&mut result, b"[]", true);
        assert!(result.images.is_empty() && result.files.is_empty());
        assert!(result.stderr.contains("malformed") && result.stderr.contains("limit"));
    }

    #[test]
    fn input_files_are_checked() {
        let file = |name: &str, text: &str| InputFile {
            name: name.into(),
            content: Some(text.into()),
            content_base64: None,
        };
        assert!(InputFiles::new(&[file("../x", "a")], 8, 10, 10).is_err());
        assert!(InputFiles::new(&[file("a", "0123456789a")], 8, 10, 100).is_err());
        assert!(InputFiles::new(&[file("a", "12345"), file("b", "123456")], 8, 10, 10).is_err());
        assert!(InputFiles::new(&[file("a", "1"), file("b", "2")], 1, 10, 10).is_err());
        let ok = InputFiles::new(&[file("d/a.txt", "hi")], 8, 10, 10).expect("valid");
        assert_eq!(ok.value()[0]["data"], "aGk=");
    }
}
