//! Building wheels inside a test (a wheel is a zip with the package, METADATA, WHEEL and
//! RECORD), so package installs can be tested from a local directory without any index.

use std::path::{Path, PathBuf};

/// Where `tests/fixtures/scientific-wheels.sh` puts the pinned wheels.
const WHEELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wheels");
const WHEELS_SCRIPT: &str = "crates/switchboard-sandbox/tests/fixtures/scientific-wheels.sh";

/// Write `name-version` into `dir`: a module `name` (dashes as underscores) whose
/// `__init__.py` is `body`, requiring `requires`.
pub fn build(dir: &Path, name: &str, version: &str, body: &str, requires: &[&str]) {
    let module = format!("{}/__init__.py", name.replace('-', "_"));
    write(dir, name, version, &[(&module, body)], requires);
}

const BUILD: &str = r#"
import base64, hashlib, json, sys, zipfile
out, name, version, extra = sys.argv[1:5]
dist = name.replace("-", "_")
info = f"{dist}-{version}.dist-info"
files = json.loads(extra)
requires = sys.argv[5:]
files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
    f"Requires-Dist: {r}\n" for r in requires)
files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: switchboard-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
record = []
for path, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{info}/RECORD,,")
files[f"{info}/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(f"{out}/{dist}-{version}-py3-none-any.whl", "w") as whl:
    for path, text in files.items():
        whl.writestr(path, text)
"#;

/// Write `name-version` into `dir` with exactly `files` (path, contents) besides its own
/// metadata: a wheel that may claim anything.
pub fn build_with_files(dir: &Path, name: &str, version: &str, files: &[(&str, &str)]) {
    write(dir, name, version, files, &[]);
}

fn write(dir: &Path, name: &str, version: &str, files: &[(&str, &str)], requires: &[&str]) {
    let map: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), serde_json::Value::from(*c)))
        .collect();
    let status = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(BUILD)
        .arg(dir)
        .args([name, version, &serde_json::Value::Object(map).to_string()])
        .args(requires)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "building the wheel {name}-{version}");
}

/// The pinned wheels, or a failure that says how to get them.
pub fn scientific() -> PathBuf {
    let dir = PathBuf::from(WHEELS);
    let present = |prefix: &str| {
        std::fs::read_dir(&dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(prefix) && name.ends_with(".whl")
            })
        })
    };
    for wheel in ["numpy-2.4.6-", "pandas-3.1.1-", "matplotlib-3.11.2-"] {
        assert!(
            present(wheel),
            "the scientific wheels are missing ({wheel}*.whl not in {WHEELS}): run {WHEELS_SCRIPT} \
             (scripts/install-test-deps.sh runs it) to download them once"
        );
    }
    dir
}
