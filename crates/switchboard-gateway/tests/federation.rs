//! The gateway in front of two real upstreams built on different MCP SDKs: our time-client
//! (rmcp) and a server on the official TypeScript SDK. Everything goes over real HTTP.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.
#![allow(deprecated)] // Logging is deprecated by SEP-2577; the gateway still forwards it.

mod common;

use std::time::Duration;

use common::*;
use rmcp::model::{
    CallToolRequest, ClientRequest, GetPromptRequestParams, ReadResourceRequestParams,
    ResourceContents, ServerResult,
};
use serde_json::{Value, json};

/// Both upstreams, a gateway in front of them, and the gateway with both listed.
async fn federation() -> (Running, TsUpstream, GatewayUnderTest) {
    let time = time_client(any_port()).await;
    let ts = TsUpstream::start(0).await;
    let gateway = gateway(config(vec![
        upstream("time-client", &time.mcp_url()),
        upstream("ts", &ts.mcp_url()),
    ]))
    .await;
    gateway
        .wait_for("both upstreams listed", |c| {
            c.tools.iter().any(|t| t.name == "convert_time")
                && c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    (time, ts, gateway)
}

/// One list with the tools of both SDKs; the name both offer stays bare for the upstream
/// configured first and is prefixed with the later one's name, unique names are unchanged, and
/// calls reach the right upstream under the original name.
#[tokio::test]
async fn lists_and_routes_tools_of_both_sdks_with_prefixes_only_on_collision() {
    let (_time, _ts, gateway) = federation().await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    for expected in [
        "convert_time",
        "echo",
        "get_current_time",
        "ts_get_current_time",
        "count_with_progress",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "time-client_get_current_time"),
        "{names:?}"
    );

    let kolkata = client
        .call_tool(params(
            "get_current_time",
            json!({"timezone": "Asia/Kolkata"}),
        ))
        .await
        .unwrap();
    assert_ne!(kolkata.is_error, Some(true), "{}", text_of(&kolkata));
    let stamp = kolkata.structured_content.unwrap()["datetime"].clone();
    assert!(stamp.as_str().unwrap().ends_with("+05:30"), "{stamp}");

    let ts_time = client
        .call_tool(params("ts_get_current_time", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&ts_time), "ts-fixture has no clock");

    let echo = client
        .call_tool(params("echo", json!({"text": "über the gateway"})))
        .await
        .unwrap();
    assert_eq!(
        echo.structured_content,
        Some(json!({"text": "über the gateway"}))
    );

    let failed = client.call_tool(params("fail", json!({}))).await.unwrap();
    assert_eq!(
        failed.is_error,
        Some(true),
        "an upstream's tool error passes through"
    );
    assert_eq!(text_of(&failed), "this tool always fails");

    let unknown = client.call_tool(params("no_such_tool", json!({}))).await;
    let message = format!(
        "{:?}",
        unknown.expect_err("unknown tool is a protocol error")
    );
    assert!(message.contains("no_such_tool"), "{message}");
}

/// Resources and prompts of the TypeScript upstream are listed and read through the gateway.
#[tokio::test]
async fn federates_resources_and_prompts() {
    let (_time, _ts, gateway) = federation().await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let resources = client.list_all_resources().await.unwrap();
    assert!(
        resources.iter().any(|r| r.uri == "fixture://greeting"),
        "{resources:?}"
    );
    let read = client
        .read_resource(ReadResourceRequestParams::new("fixture://greeting"))
        .await
        .unwrap();
    match &read.contents[0] {
        ResourceContents::TextResourceContents { text, uri, .. } => {
            assert_eq!(text, "hello from the TypeScript SDK");
            assert_eq!(uri, "fixture://greeting");
        }
        other => panic!("expected text contents, got {other:?}"),
    }
    let missing = client
        .read_resource(ReadResourceRequestParams::new("fixture://nothing-here"))
        .await;
    assert!(missing.is_err(), "an unknown resource is an error");

    let prompts = client.list_all_prompts().await.unwrap();
    assert!(prompts.iter().any(|p| p.name == "summarize"), "{prompts:?}");
    let mut args = serde_json::Map::new();
    args.insert("text".into(), Value::from("MCP gateways"));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("summarize").with_arguments(args))
        .await
        .unwrap();
    let text = prompt.messages[0]
        .content
        .as_text()
        .expect("a text message");
    assert_eq!(text.text, "Summarize: MCP gateways");
}

/// Progress and log notifications of an upstream call reach the calling client, progress under
/// the client's own token.
#[tokio::test]
async fn progress_and_log_messages_reach_the_caller() {
    let (_time, _ts, gateway) = federation().await;
    let (client, mut events) = client(&gateway.mcp_url()).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params(
        "count_with_progress",
        json!({"steps": 3}),
    )));
    let handle = client
        .send_request_with_option(request, Default::default())
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let answer = handle.await_response().await.unwrap();
    let ServerResult::CallToolResult(result) = answer else {
        panic!("expected a tool result, got {answer:?}");
    };
    assert_eq!(text_of(&result), "counted to 3");
    let mut steps = Vec::new();
    for _ in 0..3 {
        let progress = next(&mut events.progress, "a progress notification").await;
        assert_eq!(
            progress.progress_token, token,
            "mapped back to the caller's token"
        );
        assert_eq!(progress.total, Some(3.0));
        steps.push(progress.progress as u32);
    }
    steps.sort();
    assert_eq!(steps, [1, 2, 3]);
    let log = next(&mut events.logs, "a log message").await;
    assert_eq!(log.logger.as_deref(), Some("ts-fixture"));
    assert!(
        log.data.as_str().unwrap().contains("of 3"),
        "{:?}",
        log.data
    );
}

/// A client's cancellation reaches the upstream: the TypeScript tool sees its abort signal.
#[tokio::test]
async fn cancellation_is_passed_to_the_upstream() {
    let (_time, _ts, gateway) = federation().await;
    let (client, mut events) = client(&gateway.mcp_url()).await;
    let request =
        ClientRequest::CallToolRequest(CallToolRequest::new(params("wait_for_cancel", json!({}))));
    let handle = client
        .send_request_with_option(request, Default::default())
        .await
        .unwrap();
    // The tool reports progress once it runs; then cancel.
    next(&mut events.progress, "the waiting tool's first progress").await;
    handle.cancel(Some("test cancels".into())).await.unwrap();
    // A second call returns once the upstream has counted the cancellation.
    let count = client
        .call_tool(params("cancellations", json!({"at_least": 1})))
        .await
        .unwrap();
    assert_eq!(text_of(&count), "1");
}

/// Many calls at once over one client session, to both upstreams, all answered correctly.
#[tokio::test]
async fn many_concurrent_calls_over_one_session() {
    let (_time, _ts, gateway) = federation().await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    let calls = (0..64).map(|i| {
        let client = client.peer().clone();
        async move {
            if i % 2 == 0 {
                let r = client
                    .call_tool(params("echo", json!({"text": format!("call {i}")})))
                    .await
                    .unwrap();
                assert_eq!(r.structured_content, Some(json!({"text": format!("call {i}")})));
            } else {
                let r = client
                    .call_tool(params("convert_time", json!({"time": "12:00", "source_timezone": "UTC", "target_timezone": "Asia/Tokyo"})))
                    .await
                    .unwrap();
                assert_eq!(r.structured_content.unwrap()["time_difference"], "+9h");
            }
        }
    });
    futures::future::join_all(calls).await;
}

/// An upstream's `tools/list_changed` is followed. The TypeScript fixture keeps a server per
/// session and adds the tool in the session of the client that asked, whose own upstream
/// session it is: that client is told, lists the new tool and calls it, as it would directly;
/// another client's list does not change, nor does the catalog everyone shares.
#[tokio::test]
async fn upstream_list_changes_are_followed_and_announced() {
    let (_time, _ts, gateway) = federation().await;
    let (client, mut events) = client(&gateway.mcp_url()).await;
    let (other, _other_events) = common::client(&gateway.mcp_url()).await;
    client
        .call_tool(params("add_tool", json!({"name": "late_arrival"})))
        .await
        .unwrap();
    next(
        &mut events.tools_changed,
        "list_changed after the upstream added a tool",
    )
    .await;
    let names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
        tools.iter().map(|t| t.name.to_string()).collect()
    };
    let listed = names(client.list_all_tools().await.unwrap());
    assert!(listed.iter().any(|n| n == "late_arrival"), "{listed:?}");
    let ran = client
        .call_tool(params("late_arrival", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&ran), "late_arrival ran");
    let theirs = names(other.list_all_tools().await.unwrap());
    assert!(!theirs.iter().any(|n| n == "late_arrival"), "{theirs:?}");
    assert!(!gateway.tool_names().iter().any(|n| n == "late_arrival"));
}

/// REST: list with upstream and health; call with the arguments object as body; errors in the
/// JSON error shape with the right status.
#[tokio::test]
async fn rest_lists_and_calls_tools() {
    let (_time, _ts, gateway) = federation().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let list: Value = http
        .get(format!("{}/api/tools", gateway.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let echo = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo listed");
    assert_eq!(echo["upstream"], "ts");
    assert_eq!(echo["upstream_status"], "up");
    assert!(
        echo["input_schema"]["properties"]["text"].is_object(),
        "{echo}"
    );
    assert_eq!(list["upstreams"].as_array().unwrap().len(), 2);

    let call = http
        .post(format!("{}/api/tools/convert_time", gateway.base()))
        .json(&json!({"time": "09:30", "source_timezone": "UTC", "target_timezone": "Asia/Kathmandu"}))
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    let body: Value = call.json().await.unwrap();
    assert_eq!(
        body["structuredContent"]["time_difference"], "+5h45m",
        "{body}"
    );

    let unknown = http
        .post(format!("{}/api/tools/nope", gateway.base()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let not_object = http
        .post(format!("{}/api/tools/echo", gateway.base()))
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(not_object.status(), 400);
    let body: Value = not_object.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object"),
        "{body}"
    );
}

/// `/ready` lists every upstream; `/metrics` has the gateway's series.
#[tokio::test]
async fn ready_and_metrics_describe_the_upstreams() {
    let (_time, _ts, gateway) = federation().await;
    let (client, _events) = client(&gateway.mcp_url()).await;
    client
        .call_tool(params("echo", json!({"text": "x"})))
        .await
        .unwrap();
    let ready = reqwest::get(format!("{}/ready", gateway.base()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["dependencies"]["ts"]["ready"], true, "{body}");
    assert_eq!(
        body["dependencies"]["time-client"]["detail"]["status"], "up",
        "{body}"
    );

    let metrics = reqwest::get(format!("{}/metrics", gateway.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let echo = [("tool", "echo"), ("upstream", "ts")];
    let ok = [
        ("tool", "echo"),
        ("upstream", "ts"),
        ("outcome", "ok"),
        ("service", "mcp-server"),
    ];
    assert_eq!(
        metric(&metrics, "mcp_tool_calls_total", &ok),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "mcp_tool_call_duration_seconds_count", &echo),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, "mcp_upstream_up", &[("upstream", "ts")]),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "mcp_upstream_circuit_state",
            &[("upstream", "time-client")]
        ),
        Some(0.0)
    );
}

/// A client on protocol 2026-07-28 (no `initialize`; `subscriptions/listen` for changes) is
/// told about list changes on its listen stream.
#[tokio::test]
async fn modern_clients_get_list_changes_on_their_listen_stream() {
    use rmcp::{
        ClientLifecycleMode, ClientServiceExt,
        model::{ProtocolVersion, ServerNotification, SubscriptionFilter},
        transport::StreamableHttpClientTransport,
    };
    let (_time, _ts, gateway) = federation().await;
    let transport = StreamableHttpClientTransport::from_uri(gateway.mcp_url());
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover with the gateway");
    let mut subscription = client
        .listen(SubscriptionFilter::builder().tools_list_changed().build())
        .await
        .unwrap();
    let added = client
        .call_tool(params("add_tool", json!({"name": "for_modern_clients"})))
        .await
        .unwrap();
    assert_eq!(text_of(&added), "added for_modern_clients");
    let notification = tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("a notification in time")
        .unwrap();
    assert!(
        matches!(
            notification,
            Some(ServerNotification::ToolListChangedNotification(_))
        ),
        "{notification:?}"
    );
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.iter().any(|n| n == "for_modern_clients"), "{names:?}");
}

/// A tool name clients already call keeps working when another upstream with the same name
/// appears: the newcomer (later in the configuration) gets the prefix.
#[tokio::test]
async fn an_upstream_that_appears_later_does_not_rename_published_tools() {
    let time = time_client(any_port()).await;
    let port = TsUpstream::start(0).await.kill().await;
    let gateway = gateway(config(vec![
        upstream("time-client", &time.mcp_url()),
        upstream("ts", &format!("http://127.0.0.1:{port}/mcp")),
    ]))
    .await;
    gateway
        .wait_for("the time-client listed", |c| {
            c.tools.iter().any(|t| t.name == "get_current_time")
        })
        .await;
    let _ts = TsUpstream::start(port).await;
    gateway
        .wait_for("the TypeScript upstream listed", |c| {
            c.tools.iter().any(|t| t.name == "echo")
        })
        .await;
    let names = gateway.tool_names();
    assert!(
        names.iter().any(|n| n == "get_current_time")
            && names.iter().any(|n| n == "ts_get_current_time"),
        "{names:?}"
    );
}
