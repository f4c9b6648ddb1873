//! Resources and prompts under the policy: the lists a caller sees, and the decision (with its
//! audit record when it is a refusal) on reading, subscribing, getting and completing.

use rmcp::model::{Prompt, Resource, ResourceTemplate};
use switchboard_runtime::{audit::Record, auth::Identity};

use super::Gateway;
use crate::{
    policy::{Item, Permissions},
    upstream::Owner,
};

impl Gateway {
    /// The `resources/list` a caller with `permissions` sees, of `owner`'s catalog.
    pub fn visible_resources(
        &self,
        permissions: Option<&Permissions>,
        owner: &Owner,
    ) -> Vec<Resource> {
        let catalog = self.catalog_for(owner);
        let Some(permissions) = permissions else {
            return catalog.resources.clone();
        };
        catalog
            .resources
            .iter()
            .filter(|r| permissions.may_use(Item::Resource(&r.uri)))
            .cloned()
            .collect()
    }

    /// The `resources/templates/list` a caller with `permissions` sees: templates whose URI
    /// template text a `resources` pattern matches.
    pub fn visible_resource_templates(
        &self,
        permissions: Option<&Permissions>,
        owner: &Owner,
    ) -> Vec<ResourceTemplate> {
        let catalog = self.catalog_for(owner);
        let Some(permissions) = permissions else {
            return catalog.resource_templates.clone();
        };
        catalog
            .resource_templates
            .iter()
            .filter(|t| permissions.may_use(Item::Resource(&t.uri_template)))
            .cloned()
            .collect()
    }

    /// The `prompts/list` a caller with `permissions` sees, of `owner`'s catalog.
    pub fn visible_prompts(&self, permissions: Option<&Permissions>, owner: &Owner) -> Vec<Prompt> {
        let catalog = self.catalog_for(owner);
        let Some(permissions) = permissions else {
            return catalog.prompts.clone();
        };
        catalog
            .prompts
            .iter()
            .filter(|p| permissions.may_use(Item::Prompt(&p.name)))
            .cloned()
            .collect()
    }

    /// Let `identity` do `action` (`resources/read`, `prompts/get`, ...) with `item`, or say
    /// why not; a refusal is an audit record (`outcome: denied`). Decided before the item is
    /// looked up, so a caller learns nothing of what it may not use.
    pub fn admit_use(
        &self,
        identity: Option<&Identity>,
        action: &'static str,
        item: Item<'_>,
    ) -> Result<(), String> {
        let Some(permissions) = self.permissions(identity) else {
            return Ok(());
        };
        if permissions.may_use(item) {
            return Ok(());
        }
        let why = permissions.denial_of(item);
        let nobody = Identity::anonymous();
        // Best effort, as for a denied tool call: the request is refused whatever the log says.
        let _ = self.audit().record(
            Record::new(
                crate::SERVICE,
                action,
                identity.unwrap_or(&nobody),
                "denied",
            )
            .with_target(item.name())
            .with_detail(why.clone())
            .with_trace_id_of_current_span(),
        );
        Err(why)
    }
}
