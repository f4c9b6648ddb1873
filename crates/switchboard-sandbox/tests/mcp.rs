//! The sandbox's own MCP endpoint at /mcp, called as a real MCP client would.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use switchboard_protocol::mcp_client::{ConnectOptions, connect};

/// execute_code and install_package are listed with schemas and work; failures are tool
/// errors with the details in text and structured content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_over_mcp() {
    let sandbox = common::start().await;
    let client = connect(&sandbox.url("/mcp"), &ConnectOptions::default())
        .await
        .unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("switchboard-sandbox")
    );
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "close_session",
            "create_session",
            "download_file",
            "execute_code",
            "install_package",
            "list_files",
            "upload_file"
        ]
    );
    assert!(tools.iter().all(|t| t.output_schema.is_some()));

    let call = |name: &'static str, args: Value| {
        let Value::Object(map) = args else {
            unreachable!()
        };
        client.call_tool(CallToolRequestParams::new(name).with_arguments(map))
    };
    let ok = call("execute_code", json!({"code": "print(sum(range(10)))"}))
        .await
        .unwrap();
    assert_eq!(ok.is_error, Some(false));
    assert_eq!(ok.structured_content.unwrap()["stdout"], "45\n");

    let raised = call("execute_code", json!({"code": "raise KeyError('missing')"}))
        .await
        .unwrap();
    assert_eq!(raised.is_error, Some(true));
    let text = raised.content[0].as_text().unwrap().text.clone();
    assert!(
        text.contains("KeyError: 'missing'") && text.contains("Traceback"),
        "{text}"
    );

    let bad_args = call("execute_code", json!({"source": "print(1)"})).await;
    let rejected = match bad_args {
        Ok(result) => result.is_error == Some(true),
        Err(_) => true,
    };
    assert!(rejected, "arguments that do not fit the schema are refused");

    let blocked = call("install_package", json!({"package": "colourama"}))
        .await
        .unwrap();
    assert_eq!(blocked.is_error, Some(true));
    let s = blocked.structured_content.unwrap();
    assert_eq!(s["status"], "rejected");
    assert!(s["reason"].as_str().unwrap().contains("malicious"), "{s}");
}

/// A session over MCP belongs to the MCP session that created it (authentication off):
/// another client cannot use it; files go in and out as tool calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_over_mcp_belong_to_their_client() {
    let sandbox = common::start().await;
    let alice = connect(&sandbox.url("/mcp"), &ConnectOptions::default())
        .await
        .unwrap();
    let bob = connect(&sandbox.url("/mcp"), &ConnectOptions::default())
        .await
        .unwrap();
    let call =
        |client: &switchboard_protocol::mcp_client::McpClient, name: &'static str, args: Value| {
            let Value::Object(map) = args else {
                unreachable!()
            };
            let request = CallToolRequestParams::new(name).with_arguments(map);
            let peer = client.peer().clone();
            async move { peer.call_tool(request).await.unwrap() }
        };
    let created = call(&alice, "create_session", json!({})).await;
    let id = created.structured_content.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let up = call(
        &alice,
        "upload_file",
        json!({"session_id": id, "name": "in.txt", "content": "hello"}),
    )
    .await;
    assert_eq!(up.is_error, Some(false), "{up:?}");
    let ran = call(
        &alice,
        "execute_code",
        json!({"session_id": id, "code": "text = open('in.txt').read()\nopen('out.txt', 'w').write(text.upper())"}),
    )
    .await;
    assert_eq!(ran.is_error, Some(false), "{ran:?}");
    let down = call(
        &alice,
        "download_file",
        json!({"session_id": id, "name": "out.txt"}),
    )
    .await;
    assert_eq!(down.content[0].as_text().unwrap().text, "HELLO");
    let listed = call(&alice, "list_files", json!({"session_id": id})).await;
    assert!(
        listed.content[0]
            .as_text()
            .unwrap()
            .text
            .contains("out.txt (5 bytes)")
    );

    let stolen = call(
        &bob,
        "execute_code",
        json!({"session_id": id, "code": "print(text)"}),
    )
    .await;
    assert_eq!(stolen.is_error, Some(true));
    assert!(
        stolen.content[0]
            .as_text()
            .unwrap()
            .text
            .contains("not yours"),
        "{stolen:?}"
    );
    let closed = call(&bob, "close_session", json!({"session_id": id})).await;
    assert_eq!(closed.is_error, Some(true));

    let closed = call(&alice, "close_session", json!({"session_id": id})).await;
    assert_eq!(closed.structured_content.unwrap()["closed"], true);
}

/// The sandbox serves MCP on the endpoint every service shares: a session's requests are
/// answered as plain JSON on the HTTP request's own task, exactly as rmcp's session loop
/// answers the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_requests_take_the_shared_endpoints_path() {
    let sandbox = common::start().await;
    let session = switchboard_testkit::raw_mcp::RawSession::open(&sandbox.url("/mcp"), None).await;
    use switchboard_testkit::raw_mcp::request;
    let answers = session
        .assert_one_path(&[
            request(10, "tools/list", json!({})),
            request(11, "ping", json!({})),
            request(12, "tools/call", json!({"name": "nope", "arguments": {}})),
            request(
                13,
                "tools/call",
                json!({"name": "execute_code", "arguments": {"code": 5}}),
            ),
        ])
        .await;
    assert_eq!(answers[0]["result"]["tools"].as_array().unwrap().len(), 7);
    // A program runs on that path too.
    let (content_type, ran) = session
        .exchange(
            &request(
                14,
                "tools/call",
                json!({"name": "execute_code", "arguments": {"code": "print(6*7)"}}),
            ),
            &[],
        )
        .await;
    assert_eq!(content_type, "application/json");
    assert_eq!(
        ran["result"]["structuredContent"]["stdout"], "42\n",
        "{ran}"
    );
}
