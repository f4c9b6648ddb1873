//! The official MCP Python SDK 2.x (`mcp` from PyPI, installed by `tests/fixtures/install.sh`)
//! as a client of the gateway in both of its negotiation modes: the 2025-11-25 handshake and
//! 2026-07-28 (`server/discover`, stateless requests, `resultType` on every result), in front
//! of the reference "everything" server run as a stdio upstream. The SDK validates every
//! result it receives, so a result the gateway passes through without `resultType` fails it.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;
use switchboard_gateway::config::{StdioCommand, UpstreamConfig};

fn fixtures() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("gateway-fixtures")
}

/// Run the SDK's client script against `url` in `mode`; its JSON report.
async fn python_client(url: &str, mode: &str) -> Value {
    let python = fixtures().join("py-stdio/bin/python");
    assert!(
        python.exists(),
        "the Python SDK is not installed; run `{INSTALL}` (scripts/test runs it)"
    );
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/py-client/client.py");
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new(python)
            .arg(script)
            .args([url, mode])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished")
    .unwrap();
    assert!(
        output.status.success(),
        "the Python client in {mode} mode failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn the_python_sdk_calls_reads_and_gets_prompts_in_both_revisions() {
    let everything = fixtures()
        .join("stdio-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let command = StdioCommand::new(
        "node",
        [everything.to_string_lossy().into_owned(), "stdio".into()],
    );
    let gateway = gateway(config(vec![UpstreamConfig::stdio("everything", command)])).await;
    gateway
        .wait_for("the everything server listed", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let url = gateway.mcp_url();
    let legacy = python_client(&url, "legacy").await;
    let modern = python_client(&url, "auto").await;
    assert_eq!(legacy["protocol"], "2025-11-25", "{legacy}");
    assert_eq!(modern["protocol"], "2026-07-28", "{modern}");
    for report in [&legacy, &modern] {
        assert_eq!(report["echo"][0], "Echo: hello from python", "{report}");
        assert_eq!(report["echo_is_error"], false);
        assert!(
            report["resource_contents"].as_u64().unwrap() >= 1,
            "{report}"
        );
        assert!(report["prompt_messages"].as_u64().unwrap() >= 1, "{report}");
    }
    // The same server, the same answers, whichever revision the client speaks.
    for field in ["tools", "echo", "resource", "prompt"] {
        assert_eq!(legacy[field], modern[field], "{field}");
    }
}
