//! Prompts through the gateway: `prompts/get` by public prompt name, and
//! `completion/complete` for the prompt or resource template it names.

use rmcp::model::{
    ClientRequest, CompleteRequest, CompleteRequestParams, CompleteResult, GetPromptRequest,
    GetPromptRequestParams, GetPromptResponse, Reference, ServerResult,
};
use tokio_util::sync::CancellationToken;

use super::{Gateway, complete};
use crate::{
    error::CallError,
    upstream::{Owner, handler::Caller},
};

impl Gateway {
    /// Route a `prompts/get` by public prompt name.
    pub async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        owner: &Owner,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<GetPromptResponse, CallError> {
        let catalog = self.catalog_for(owner);
        let Some((index, original)) = catalog.prompt_routes.get(&params.name) else {
            return Err(CallError::Unknown {
                kind: "prompt",
                name: params.name,
                list: "prompts/list",
            });
        };
        let upstream = &self.inner.upstreams[*index];
        params.name.clone_from(original);
        let request = |params| ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
        match super::rounds::request(upstream, params, request, owner, caller, ct).await? {
            ServerResult::GetPromptResult(mut result) => {
                complete(&mut result.result_type);
                Ok(GetPromptResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(r) => Ok(GetPromptResponse::InputRequired(r)),
            _ => Err(CallError::Unexpected {
                upstream: upstream.config.name.clone(),
            }),
        }
    }

    /// Route a `completion/complete` to the upstream of the prompt or resource template it
    /// names, under that upstream's own name for it.
    pub async fn complete(
        &self,
        mut params: CompleteRequestParams,
        owner: &Owner,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<CompleteResult, CallError> {
        let catalog = self.catalog_for(owner);
        let index = match &mut params.r#ref {
            Reference::Prompt(prompt) => {
                let Some((index, original)) = catalog.prompt_routes.get(&prompt.name) else {
                    return Err(CallError::Unknown {
                        kind: "prompt",
                        name: prompt.name.clone(),
                        list: "prompts/list",
                    });
                };
                prompt.name.clone_from(original);
                *index
            }
            Reference::Resource(resource) => {
                let route = catalog
                    .template_routes
                    .get(&resource.uri)
                    .cloned()
                    .or_else(|| catalog.route_resource(&resource.uri, &self.inner.upstreams));
                let Some((index, original)) = route else {
                    return Err(CallError::Unknown {
                        kind: "resource template",
                        name: resource.uri.clone(),
                        list: "resources/templates/list",
                    });
                };
                resource.uri = original;
                index
            }
            // A reference kind of a later revision: nothing to route it by.
            _ => {
                return Err(CallError::Unknown {
                    kind: "completion reference",
                    name: "(unsupported kind)".to_owned(),
                    list: "prompts/list or resources/templates/list",
                });
            }
        };
        let upstream = &self.inner.upstreams[index];
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
        match upstream.request(request, owner, caller, ct).await? {
            ServerResult::CompleteResult(mut result) => {
                complete(&mut result.result_type);
                Ok(result)
            }
            _ => Err(CallError::Unexpected {
                upstream: upstream.config.name.clone(),
            }),
        }
    }
}
