//! The envelope of a JSON-RPC message: the fields that tell what it is, the rest unparsed.
//!
//! rmcp parses a message into untagged unions of every request or result type, which serde
//! resolves by buffering the message and trying each type in turn. A hot path (a `tools/call`
//! reaching the MCP endpoint, its answer reaching the gateway from an upstream) reads the
//! envelope first and parses the one type it names; anything else still gets rmcp's parse.

use rmcp::model::RequestId;
use serde::{Deserialize, de::IgnoredAny};
use serde_json::value::RawValue;

#[derive(Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub jsonrpc: &'a str,
    #[serde(default)]
    pub id: Option<RequestId>,
    /// Borrowed: a method name with JSON escapes fails the envelope (rmcp's parse then decides).
    #[serde(borrow, default)]
    pub method: Option<&'a str>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(default)]
    pub error: Option<IgnoredAny>,
}

impl<'a> Envelope<'a> {
    /// The envelope of `bytes`, if they are a JSON-RPC 2.0 message this struct can borrow from.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes)
            .ok()
            .filter(|envelope| envelope.jsonrpc == "2.0")
    }
}
