//! The gateway's work per `tools/call` without the network, named in one place for
//! `benches/hop.rs`. Not an API: these are the functions the request path itself calls, made
//! public (and hidden) so that the benchmark measures them rather than copies of them.
//!
//! In the order of a call: [`decode`] and [`answerable`] read the client's POST body
//! (`switchboard_protocol::mcp_server::endpoint`); the catalog's `tool_routes` (public already) route the name; [`name_in`]
//! rewrites `_meta` for the upstream (`crate::gateway::calls`); [`encode_request`] writes the
//! upstream request and [`Direct::read_answer`] reads the upstream's answer, JSON or SSE
//! (`crate::upstream::exchange`); [`answer_message`] with [`json_response`] or [`sse_event`]
//! frames the answer for the client (`switchboard_protocol::mcp_server::endpoint`).

pub use switchboard_protocol::mcp_server::endpoint::{
    answer::{answer_message, event as sse_event, json as json_response},
    decode::{answerable, decode},
};

pub use crate::{
    gateway::calls::name_in,
    upstream::exchange::{Direct, Exchange, Link, encode_request},
};
