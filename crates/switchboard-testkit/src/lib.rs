//! Test helpers for Switchboard's integration and end-to-end tests (a dev-dependency only).
//!
//! # Layout
//!
//! - [`llm`]: [`ScriptedLlm`], a scripted LLM server speaking the OpenAI-compatible and the
//!   Ollama-native chat APIs — the one test double of the suite (everything else in a test
//!   is a real service on an ephemeral port).

pub mod llm;

pub use llm::{Recorded, Reply, ScriptedLlm};
