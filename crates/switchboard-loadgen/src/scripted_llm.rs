//! The `scripted-llm` command: the test suite's scripted LLM
//! ([`switchboard_testkit::ScriptedLlm`]) with an endless [`Rule`], so a middleware benchmark
//! measures the middleware and not a model. Every request is answered at once:
//!
//! 1. the last message is a tool result (`role: "tool"`): answer with text, ending the turn;
//! 2. tools are offered (and `tool_choice` is not `"none"`) and the last user message contains
//!    the word `tool`: call `--tool` with `--tool-arguments`;
//! 3. anything else: answer `hello` with text.
//!
//! It speaks the OpenAI-compatible API (`/v1/chat/completions`, plain JSON or SSE; `/v1/models`)
//! and Ollama's. This is a test double for the external LLM API only; everything else in a
//! benchmark is real.

use serde_json::Value;
use switchboard_testkit::{Rule, Script, llm};
use tokio::net::TcpListener;

use crate::{Error, args::ScriptedLlmArgs};

/// Listen on `args.listen`, print `listening on IP:PORT` on stdout, serve until Ctrl-C/SIGTERM.
pub async fn serve(args: &ScriptedLlmArgs) -> Result<(), Error> {
    let arguments: Value = serde_json::from_str(&args.tool_arguments)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Error::usage(format!(
                "--tool-arguments {}: expected a JSON object",
                args.tool_arguments
            ))
        })?;
    let script = Script::endless(Rule::calling(&args.tool, arguments));
    let addr = args.listen.to_string();
    let io = |source| Error::Serve {
        addr: addr.clone(),
        source,
    };
    let listener = TcpListener::bind(args.listen).await.map_err(io)?;
    println!("listening on {}", listener.local_addr().map_err(io)?);
    llm::serve(listener, script, stopped()).await.map_err(io)
}

/// Resolves on Ctrl-C or SIGTERM: how every serving command of the load generator stops.
pub(crate) async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
