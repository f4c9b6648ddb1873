//! Which messages the endpoint answers itself, and parsing them as rmcp does (a `tools/call`
//! the quick way).

use rmcp::model::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, GetMeta, JsonRpcMessage, JsonRpcRequest,
};

use crate::mcp_server::envelope::Envelope;

/// Parse a client's message as rmcp does, a `tools/call` the quick way.
///
/// rmcp's `ClientRequest` is an untagged union of every request type: serde buffers the
/// message and tries the types in turn (building a formatted error for each that does not
/// fit). A message whose envelope says `tools/call` is parsed as a `CallToolRequest` at once;
/// anything else, including every message rmcp would refuse, gets rmcp's parse.
pub fn decode(bytes: &[u8]) -> Result<ClientJsonRpcMessage, serde_json::Error> {
    if let Some(envelope) = Envelope::parse(bytes)
        && envelope.method == Some("tools/call")
        && envelope.result.is_none()
        && envelope.error.is_none()
        && let Some(id) = envelope.id
        && let Ok(request) = serde_json::from_slice::<CallToolRequest>(bytes)
    {
        return Ok(JsonRpcMessage::Request(JsonRpcRequest::new(
            id,
            ClientRequest::CallToolRequest(request),
        )));
    }
    serde_json::from_slice(bytes)
}

/// Requests of a session answered here: those whose handling is the handler's alone (and the
/// handler's own `custom` methods), without a per-request version.
pub fn answerable(request: &ClientRequest, custom: &[&str]) -> bool {
    (method_and_name(request).is_some()
        || matches!(request, ClientRequest::CustomRequest(c) if custom.contains(&c.method.as_str())))
        && request.get_meta().protocol_version().is_none()
}

/// The method of a request whose handling is the handler's alone, answered here in either
/// revision, and the value its `Mcp-Name` header carries (2026-07-28) when it has one.
pub fn method_and_name(request: &ClientRequest) -> Option<(&'static str, Option<&str>)> {
    Some(match request {
        ClientRequest::CallToolRequest(call) => ("tools/call", Some(call.params.name.as_ref())),
        ClientRequest::ListToolsRequest(_) => ("tools/list", None),
        ClientRequest::ReadResourceRequest(read) => ("resources/read", Some(&read.params.uri)),
        ClientRequest::ListResourcesRequest(_) => ("resources/list", None),
        ClientRequest::ListResourceTemplatesRequest(_) => ("resources/templates/list", None),
        ClientRequest::GetPromptRequest(get) => ("prompts/get", Some(&get.params.name)),
        ClientRequest::ListPromptsRequest(_) => ("prompts/list", None),
        ClientRequest::PingRequest(_) => ("ping", None),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use rmcp::model::ClientJsonRpcMessage;

    use super::*;

    #[test]
    fn tool_calls_decode_as_rmcp_decodes_them() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"progressToken":3,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},"name":"get_current_time","arguments":{"timezone":"UTC"}}}"#;
        let quick = serde_json::to_value(decode(call).expect("decodes")).expect("encodes");
        let full: ClientJsonRpcMessage = serde_json::from_slice(call).expect("rmcp decodes");
        assert_eq!(quick, serde_json::to_value(full).expect("encodes"));
        let Ok(JsonRpcMessage::Request(request)) = decode(call) else {
            panic!("a request");
        };
        assert!(request.request.get_meta().get_progress_token().is_some());
        // What rmcp refuses, decode refuses too.
        for bad in [
            &br#"{"jsonrpc":"1.0","id":7,"method":"tools/call","params":{"name":"x"}}"#[..],
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","result":{},"params":{"name":"x"}}"#,
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#,
        ] {
            assert_eq!(
                decode(bad).is_ok(),
                serde_json::from_slice::<ClientJsonRpcMessage>(bad).is_ok(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_handler_requests_without_a_per_request_version_are_answered_here() {
        use rmcp::model::{CallToolRequest, CallToolRequestParams, InitializeRequest};
        let call =
            ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new("x")));
        assert!(answerable(&call, &[]));
        let mut versioned = call.clone();
        versioned
            .get_meta_mut()
            .set_protocol_version(rmcp::model::ProtocolVersion::V_2026_07_28);
        assert!(!answerable(&versioned, &[]));
        let initialize = ClientRequest::InitializeRequest(InitializeRequest::new(
            rmcp::model::ClientConfig::default(),
        ));
        assert!(!answerable(&initialize, &[]));
    }
}
