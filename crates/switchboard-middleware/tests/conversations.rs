//! Conversations: a client names one with `conversation_id` and ends it with
//! `DELETE /conversations/{id}`. Behind a gateway without session tools (here a time-client)
//! chats work exactly as before: sessions degrade to nothing, never to an error.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Setup, stack};
use serde_json::json;

/// A named conversation is echoed in the answer; without session tools at the gateway the
/// chat still runs its tools, and ending the conversation (known or not) is a 204.
#[tokio::test]
async fn named_conversations_work_without_session_tools() {
    let s = stack(Setup::offline()).await;
    let (status, answer) = s
        .post(
            "/chat",
            json!({"message": "what's the time?", "conversation_id": "conv-1"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["conversation_id"], "conv-1");
    assert_eq!(answer["tool_calls"][0]["is_error"], false, "{answer}");
    assert!(
        answer["tool_calls"][0]["arguments"]
            .get("session_id")
            .is_none(),
        "no session is put into tools that take none: {answer}"
    );
    for id in ["conv-1", "never-seen"] {
        let response = s
            .http
            .delete(format!("{}/conversations/{id}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    // Without a conversation_id the answer names none.
    let (_, answer) = s.post("/chat", json!({"message": "time?"})).await;
    assert!(answer.get("conversation_id").is_none(), "{answer}");
}

/// Ids that could not sit in a URL path or a log line as they are, are refused.
#[tokio::test]
async fn bad_conversation_ids_are_refused() {
    let s = stack(Setup::offline()).await;
    for bad in ["", "a b", "x/y", &"z".repeat(129)] {
        let (status, body) = s
            .post("/chat", json!({"message": "time?", "conversation_id": bad}))
            .await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("conversation_id"),
            "{body}"
        );
    }
    let response = s
        .http
        .delete(format!("{}/conversations/a%20b", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
