//! `subscriptions/listen` (protocol 2026-07-28 and later): a stream of the `list_changed`
//! notifications of the catalog the caller sees — everyone's, and its own where it has one
//! (`crate::gateway::own_lists`) — until the client ends it.

use rmcp::{
    ErrorData as McpError,
    model::ServerNotification,
    service::{SubscriptionContext, SubscriptionSendError},
};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    gateway::Gateway,
    sessions::{Change, ListChanges},
    upstream::Owner,
};

/// A `subscriptions/listen` stream of `owner`: list changes until the client ends it.
pub(super) async fn list_changes(
    gateway: &Gateway,
    owner: Owner,
    context: SubscriptionContext,
) -> Result<(), McpError> {
    let mut changes = gateway.sessions().changes();
    loop {
        let change = tokio::select! {
            () = context.cancelled() => return Ok(()),
            change = changes.recv() => change,
        };
        let change = match change {
            Ok(Change { owner: None, lists }) => lists,
            Ok(Change {
                owner: Some(theirs),
                lists,
            }) if theirs == owner => lists,
            Ok(_) => continue, // another caller's own lists
            // Missed some: say everything may have changed.
            Err(RecvError::Lagged(_)) => ListChanges {
                tools: true,
                resources: true,
                prompts: true,
            },
            Err(RecvError::Closed) => return Ok(()),
        };
        let mut notifications = Vec::new();
        if change.tools {
            notifications.push(ServerNotification::ToolListChangedNotification(
                Default::default(),
            ));
        }
        if change.resources {
            notifications.push(ServerNotification::ResourceListChangedNotification(
                Default::default(),
            ));
        }
        if change.prompts {
            notifications.push(ServerNotification::PromptListChangedNotification(
                Default::default(),
            ));
        }
        for notification in notifications {
            match context.sink().send(notification).await {
                Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
                Err(_) => return Ok(()),
            }
        }
    }
}
