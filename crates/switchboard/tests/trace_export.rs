//! The binary's trace export, as an operator configures it: the standard OTEL_* variables
//! switch OTLP/HTTP export on and name the service, and spans still queued when the process
//! gets SIGTERM are exported before it exits.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use rmcp::model::{CallToolRequestParams, RequestParamsMeta};
use switchboard_protocol::mcp_client::{ConnectOptions, connect};
use switchboard_runtime::testing::OtlpReceiver;

/// Kills the child if the test fails before it exits on its own.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_variables_switch_export_on_and_sigterm_flushes_the_queue() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let base = receiver
        .traces_url()
        .trim_end_matches("/v1/traces")
        .to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--log-format",
            "json",
            "time-client",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_SDK_DISABLED")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &base)
        .env("OTEL_SERVICE_NAME", "clock-eu")
        // The default batch delay (5 s) outlives the test: only the exit flush can deliver.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);

    // The address from the "serving" log line; the lines go on being drained.
    let (lines, arrived) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line) {
                let _ = lines.send(value);
            }
        }
    });
    let mut exporting = None;
    let address = loop {
        let line = arrived.recv_timeout(Duration::from_secs(30)).unwrap();
        if line["message"] == "exporting traces with OTLP/HTTP" {
            exporting = Some(line.clone());
        }
        if line["message"] == "time-client serving MCP at /mcp" {
            break line["address"].as_str().unwrap().to_owned();
        }
    };
    let exporting = exporting.expect("the start-up line says where traces go");
    assert_eq!(exporting["endpoint"], format!("{base}/v1/traces"));
    assert_eq!(exporting["service_name"], "clock-eu");

    let client = connect(&format!("http://{address}/mcp"), &ConnectOptions::default())
        .await
        .unwrap();
    let trace = "5ad1c0ffee5ad1c0ffee5ad1c0ffee00";
    let mut params = CallToolRequestParams::new("get_current_time");
    params.set_traceparent(&format!("00-{trace}-1111111111111111-01"));
    client.call_tool(params).await.unwrap();
    client.cancel().await.unwrap();

    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut running = running;
    let status = tokio::task::spawn_blocking(move || running.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");

    // The exporter's last POST was answered before the process ended: the span is here.
    let span = receiver
        .wait_for(Duration::from_secs(5), |s| {
            s.name == "mcp_tool_call" && s.trace_id == trace
        })
        .await
        .unwrap_or_else(|| panic!("not exported at exit: {:#?}", receiver.spans()));
    assert_eq!(span.service_name, "clock-eu");
    assert_eq!(span.parent_span_id, "1111111111111111");
    assert_eq!(span.attribute("service"), Some("time-client"));
}

#[test]
fn grpc_protocol_is_refused_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["time-client", "--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && stderr.contains("http/protobuf"),
        "{stderr}"
    );
}
