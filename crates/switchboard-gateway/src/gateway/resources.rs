//! Resources through the gateway: `resources/read` and the subscriptions of 2025-11-25
//! (`resources/subscribe` / `unsubscribe`), routed by URI to the upstream that serves it.

use std::sync::Arc;

use rmcp::model::{
    ClientRequest, ReadResourceRequest, ReadResourceRequestParams, ReadResourceResponse,
    ResourceContents, ServerResult,
};
use tokio_util::sync::CancellationToken;

use super::{Gateway, complete};
use crate::{
    error::CallError,
    upstream::{Owner, Upstream, handler::Caller},
};

impl Gateway {
    /// Route a `resources/read` by URI, in `owner`'s catalog.
    pub async fn read_resource(
        &self,
        mut params: ReadResourceRequestParams,
        owner: &Owner,
        caller: Option<Caller>,
        ct: &CancellationToken,
    ) -> Result<ReadResourceResponse, CallError> {
        let catalog = self.catalog_for(owner);
        let public = params.uri.clone();
        let Some((index, original)) = catalog.route_resource(&public, &self.inner.upstreams) else {
            return Err(CallError::Unknown {
                kind: "resource",
                name: public,
                list: "resources/list and resources/templates/list",
            });
        };
        let upstream = &self.inner.upstreams[index];
        params.uri = original.clone();
        let request = |params| ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params));
        match super::rounds::request(upstream, params, request, owner, caller, ct).await? {
            ServerResult::ReadResourceResult(mut result) => {
                complete(&mut result.result_type);
                if original != public {
                    for contents in &mut result.contents {
                        match contents {
                            ResourceContents::TextResourceContents { uri, .. }
                            | ResourceContents::BlobResourceContents { uri, .. }
                                if *uri == original =>
                            {
                                uri.clone_from(&public)
                            }
                            _ => {}
                        }
                    }
                }
                Ok(ReadResourceResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(r) => Ok(ReadResourceResponse::InputRequired(r)),
            _ => Err(CallError::Unexpected {
                upstream: upstream.config.name.clone(),
            }),
        }
    }

    /// `resources/subscribe`: the session of `caller` hears of updates to `uri` (a public URI
    /// of this gateway) from the upstream that serves it.
    pub async fn subscribe_resource(
        &self,
        uri: String,
        owner: &Owner,
        caller: Caller,
        ct: &CancellationToken,
    ) -> Result<(), CallError> {
        let (upstream, original) = self.resource_owner(&uri, owner)?;
        let subscriber = crate::upstream::subscriptions::Subscriber {
            peer: caller.peer,
            session: caller.session,
            public: uri,
        };
        upstream
            .subscribe_resource(original, subscriber, owner, ct)
            .await
    }

    /// `resources/unsubscribe` of `session`.
    pub async fn unsubscribe_resource(
        &self,
        uri: String,
        owner: &Owner,
        session: Option<Arc<str>>,
        ct: &CancellationToken,
    ) -> Result<(), CallError> {
        let (upstream, original) = self.resource_owner(&uri, owner)?;
        upstream
            .unsubscribe_resource(original, session.as_ref(), owner, ct)
            .await
    }

    /// The upstream a subscription to `uri` belongs to: the one that lists it (or a template
    /// it matches); a URI no listing names goes to the only upstream, if there is one (a
    /// server may accept subscriptions to resources it does not list, e.g. ones that do not
    /// exist yet).
    fn resource_owner(
        &self,
        uri: &str,
        owner: &Owner,
    ) -> Result<(&Arc<Upstream>, String), CallError> {
        let catalog = self.catalog_for(owner);
        match catalog.route_resource(uri, &self.inner.upstreams) {
            Some((index, original)) => Ok((&self.inner.upstreams[index], original)),
            None if self.inner.upstreams.len() == 1 => {
                Ok((&self.inner.upstreams[0], uri.to_owned()))
            }
            None => Err(CallError::Unknown {
                kind: "resource",
                name: uri.to_owned(),
                list: "resources/list and resources/templates/list",
            }),
        }
    }
}
