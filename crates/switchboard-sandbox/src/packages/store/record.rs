//! A wheel's `RECORD` (the installed files, with their sha256), and which paths a
//! distribution may install.

use base64::Engine;

/// One line of `RECORD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// Relative to the site directory, validated.
    pub path: String,
    pub sha256: Option<[u8; 32]>,
}

/// Most lines a `RECORD` may have (numpy, pandas and matplotlib have 1,000–3,000 each).
const MAX_ENTRIES: usize = 100_000;

/// The entries of `text` that land in the site directory. Lines for files outside it (pip
/// writes console scripts as `../../bin/...`) are left out: programs import from the site
/// directory only, so those files are not copied.
pub(super) fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields =
            split_csv(line).ok_or_else(|| format!("RECORD line {}: bad quoting", n + 1))?;
        let path = fields.first().map(String::as_str).unwrap_or_default();
        if path.starts_with("../") {
            continue;
        }
        check_path(path).map_err(|why| format!("RECORD line {}: {why}", n + 1))?;
        let sha256 = match fields.get(1).map(String::as_str).unwrap_or_default() {
            "" => None,
            hash => Some(decode_hash(hash).map_err(|why| format!("RECORD {path}: {why}"))?),
        };
        entries.push(Entry {
            path: path.to_owned(),
            sha256,
        });
        if entries.len() > MAX_ENTRIES {
            return Err(format!("RECORD lists more than {MAX_ENTRIES} files"));
        }
    }
    Ok(entries)
}

/// A relative path of plain components: no `..`, `.`, empty component, leading `/` or NUL.
pub(super) fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 1024 || path.contains('\0') || path.starts_with('/') {
        return Err(format!("'{path}' is not a relative path"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!("'{path}' leaves its directory or is malformed"));
    }
    Ok(())
}

/// Files that legitimately have no hash in `RECORD`: the record itself (and its signatures)
/// and the bytecode pip compiles at install time.
pub(super) fn may_lack_hash(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (path.contains(".dist-info/") && name.starts_with("RECORD"))
        || (path.contains("__pycache__/") && name.ends_with(".pyc"))
}

fn decode_hash(hash: &str) -> Result<[u8; 32], String> {
    let encoded = hash
        .strip_prefix("sha256=")
        .ok_or_else(|| format!("hash '{hash}' is not sha256"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| format!("hash '{hash}': {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("hash '{hash}' is not 32 bytes"))
}

/// The fields of one CSV line (RFC 4180 quoting, as Python's `csv` module writes it).
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if field.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

/// What a top-level entry of the site directory makes importable: the module name (the part
/// before the first `.`: `six.py`, `six.cpython-311-x86_64-linux-gnu.so` and `six/` are all
/// `six`), or the whole name for metadata directories.
pub(super) fn top_key(path: &str) -> &str {
    let top = path.split('/').next().unwrap_or(path);
    if is_metadata_dir(top) {
        top
    } else {
        top.split('.').next().unwrap_or(top)
    }
}

/// `*.dist-info`, `*.egg-info`, `*.data`: what says which distributions are installed.
pub(super) fn is_metadata_dir(top: &str) -> bool {
    [".dist-info", ".egg-info", ".data"]
        .iter()
        .any(|suffix| top.ends_with(suffix))
}

/// Whether `path` makes its top-level module the distribution's own: a module file at the top
/// (`six.py`, an extension module) or a regular package (`six/__init__.py`). A directory
/// without `__init__.py` is a namespace package, which several distributions may share
/// (`mpl_toolkits/`, `google/`), file by file.
pub(super) fn claims_module(path: &str) -> bool {
    let mut parts = path.split('/');
    let top = parts.next().unwrap_or(path);
    match parts.next() {
        None => !is_metadata_dir(top),
        Some(second) => second.starts_with("__init__.") && parts.next().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_outside_the_site_directory_are_left_out_and_hashes_decoded() {
        let text = "cycler/__init__.py,sha256=1JdRgv5Zzxo-W1ev7B_LWquysWP6LZH6CHk_COtIaXE,16709\n\
                    ../../bin/ttx,sha256=udYvuHm_76D7Q2q_TOdJQHCRWLgx38VUmDLDp4R0zcM,212\n\
                    \"odd,name.py\",,\n\
                    cycler-0.12.1.dist-info/RECORD,,\n";
        let entries = parse(text).expect("parses");
        assert_eq!(entries.len(), 3);
        assert!(entries[0].sha256.is_some());
        assert_eq!(entries[1].path, "odd,name.py");
        assert!(may_lack_hash(&entries[2].path));
    }

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        for bad in ["/etc/passwd", "a/../../b", "a//b", "./a", "a/./b", ""] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(parse("pkg/../../../etc/x,,\n").is_err());
    }

    #[test]
    fn module_keys_and_claims() {
        assert_eq!(top_key("six.py"), "six");
        assert_eq!(top_key("six/__init__.py"), "six");
        assert_eq!(
            top_key("numpy-2.0.dist-info/METADATA"),
            "numpy-2.0.dist-info"
        );
        assert!(claims_module("six.py"));
        assert!(claims_module("six/__init__.py"));
        assert!(!claims_module("mpl_toolkits/axes_grid1/__init__.py"));
        assert!(!claims_module("six-1.0.dist-info"));
    }
}
