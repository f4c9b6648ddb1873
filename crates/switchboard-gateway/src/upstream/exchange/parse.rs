//! Reading one message of an upstream's answer on the direct path: the answer to the request,
//! parsed the quick way where that is exactly rmcp's parse, or any other message.

use rmcp::model::{
    CallToolResult, ClientRequest, CustomResult, ErrorData, JsonRpcMessage, RequestId,
    ServerJsonRpcMessage, ServerResult,
};

use switchboard_protocol::mcp_server::envelope::Envelope;

/// How the answer to a request is read.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Shape {
    /// A `tools/call`: as a `CallToolResult` first.
    Tool,
    /// A custom request (MCP 2025-11-25 tasks, `super::tasks`): the result as it came, a
    /// `CustomResult`. rmcp's parse would read a `CreateTaskResult` as an empty result.
    Raw,
    /// Anything else: rmcp's parse.
    Any,
}

impl Shape {
    pub(super) fn of(request: &ClientRequest) -> Self {
        match request {
            ClientRequest::CallToolRequest(_) => Shape::Tool,
            ClientRequest::CustomRequest(_) => Shape::Raw,
            _ => Shape::Any,
        }
    }
}

/// A message of an answer: the answer to the request, or anything else.
pub(super) enum Parsed {
    Answer(Result<ServerResult, ErrorData>),
    Message(ServerJsonRpcMessage),
}

/// Parse one message of the answer to request `id`.
///
/// rmcp parses any message into its `ServerJsonRpcMessage`, whose result is an untagged union
/// of about twenty result types: serde buffers the message and tries them in turn, building
/// an error (with a formatted message) for each that does not fit — a good part of the
/// gateway's CPU per call. The answer to a `tools/call` is parsed as a `CallToolResult`
/// directly instead; anything else, or a result that is not a complete `CallToolResult`
/// (`CallToolResult` refuses other result types), gets rmcp's full parse.
pub(super) fn parse(
    data: &[u8],
    id: &RequestId,
    shape: Shape,
) -> Result<Parsed, serde_json::Error> {
    if shape == Shape::Raw
        && let Some(envelope) = Envelope::parse(data)
        && envelope.method.is_none()
        && envelope.error.is_none()
        && envelope.id.as_ref() == Some(id)
        && let Some(result) = envelope.result
    {
        let result = serde_json::from_str(result.get())?;
        return Ok(Parsed::Answer(Ok(ServerResult::CustomResult(
            CustomResult(result),
        ))));
    }
    if shape == Shape::Tool
        && let Some(envelope) = Envelope::parse(data)
        && envelope.method.is_none()
        && envelope.error.is_none()
        && envelope.id.as_ref() == Some(id)
        && let Some(result) = envelope.result
        && let Ok(result) = serde_json::from_str::<CallToolResult>(result.get())
    {
        return Ok(Parsed::Answer(Ok(ServerResult::CallToolResult(result))));
    }
    Ok(
        match serde_json::from_slice::<ServerJsonRpcMessage>(data)? {
            JsonRpcMessage::Response(response) if response.id == *id => {
                Parsed::Answer(Ok(response.result))
            }
            JsonRpcMessage::Error(error) if error.id.as_ref() == Some(id) => {
                Parsed::Answer(Err(error.error))
            }
            message => Parsed::Message(message),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST_ID: i64 = super::super::FIRST_ID;

    #[test]
    fn answers_parse_as_rmcp_parses_them() {
        let id = RequestId::Number(FIRST_ID);
        let full = |data: &[u8]| match serde_json::from_slice::<ServerJsonRpcMessage>(data) {
            Ok(JsonRpcMessage::Response(r)) => serde_json::to_value(r.result).ok(),
            _ => None,
        };
        let quick = |data: &[u8]| match parse(data, &id, Shape::Tool) {
            Ok(Parsed::Answer(Ok(result))) => serde_json::to_value(result).ok(),
            _ => None,
        };
        for answer in [
            // A tool result, with structured content and `isError`.
            r#"{"jsonrpc":"2.0","id":1099511627776,"result":{"content":[{"type":"text","text":"hi"}],"structuredContent":{"a":1},"isError":false}}"#,
            // Not a complete tool result: rmcp's parse decides.
            r#"{"jsonrpc":"2.0","id":1099511627776,"result":{"resultType":"input_required","inputRequests":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1099511627776,"result":{}}"#,
        ] {
            assert_eq!(
                quick(answer.as_bytes()),
                full(answer.as_bytes()),
                "{answer}"
            );
        }
        let error =
            br#"{"jsonrpc":"2.0","id":1099511627776,"error":{"code":-32602,"message":"no"}}"#;
        assert!(
            matches!(parse(error, &id, Shape::Tool), Ok(Parsed::Answer(Err(e))) if e.message == "no")
        );
        let other = br#"{"jsonrpc":"2.0","id":5,"result":{"content":[]}}"#;
        assert!(matches!(
            parse(other, &id, Shape::Tool),
            Ok(Parsed::Message(_))
        ));
        let progress = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}"#;
        assert!(matches!(
            parse(progress, &id, Shape::Tool),
            Ok(Parsed::Message(JsonRpcMessage::Notification(_)))
        ));
    }
}
