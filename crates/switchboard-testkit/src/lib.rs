//! Test helpers for Switchboard's integration and end-to-end tests, and the load generator's
//! stand-in LLM.
//!
//! # Layout
//!
//! - [`service`]: the one harness for running a service in the test's process: [`spawn`]
//!   serves any [`switchboard_runtime::Service`] on `127.0.0.1:0` and returns once it is
//!   ready; the [`Running`] it returns stops the service when dropped.
//! - [`raw_mcp`]: [`raw_mcp::RawSession`], MCP 2025-11-25 spoken on the wire for the tests
//!   of tasks (which rmcp's client does not model), with a listener for notifications.
//! - [`llm`]: [`ScriptedLlm`], a scripted LLM server speaking the OpenAI-compatible and the
//!   Ollama-native chat APIs — the one test double of the suite (everything else in a test
//!   is a real service on an ephemeral port). The load generator serves it with an endless
//!   [`Rule`] for benchmarks.
//! - [`tls`]: [`tls::TestCa`], a certificate authority made at test time, and
//!   [`tls::TlsFront`], HTTPS in front of any test server.

pub mod llm;
pub mod raw_mcp;
pub mod service;
pub mod tls;

pub use llm::{Recorded, Reply, Rule, Script, ScriptedLlm};
pub use service::{PATIENCE, Running, Spawn, Until, spawn, until_contains};
