//! The official Python SDK's client scripts (`fixtures/py-client/`), run with the SDK that
//! `fixtures/install.sh` installs.

use serde_json::Value;

use super::{INSTALL, PATIENCE, fixtures, installed};

/// Run `fixtures/py-client/<script>` with `args` and return the JSON object it prints; a
/// failing script fails the test with its stderr.
pub async fn python_fixture(script: &str, args: &[&str]) -> Value {
    let python = installed().join("py-stdio/bin/python");
    assert!(
        python.exists(),
        "the Python SDK is not installed; run `{INSTALL}` (scripts/test runs it)"
    );
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new(python)
            .arg(fixtures().join("py-client").join(script))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished")
    .expect("the Python client started");
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the Python client printed JSON")
}
