//! The transport of an upstream session: rmcp's Streamable HTTP client, with every arriving
//! notification shown to [`Routes::observe`] first, in arrival order.
//!
//! Why a wrapper and not only the `ClientHandler`: rmcp delivers a request's answer to the
//! waiting caller directly from its receive loop, but runs notification handlers in tasks of
//! their own. A progress or log message sent just before the answer could then be handled
//! after the caller has finished and left the routing table. Seen here, it is routed while
//! its request is certainly still in flight.

use std::{sync::Arc, time::Duration};

use rmcp::{
    RoleClient,
    model::JsonRpcMessage,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{
        StreamableHttpClientTransport, Transport,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

use super::handler::Routes;

pub struct Observed<T> {
    inner: T,
    routes: Arc<Routes>,
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Observed<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await;
        if let Some(JsonRpcMessage::Notification(n)) = &message {
            self.routes.observe(&n.notification);
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

/// The Streamable HTTP transport to `url`, observed. (The same client set-up as
/// `switchboard_protocol::mcp_client::connect_with`, which takes no transport wrapper.)
pub fn streamable_http(
    url: &str,
    connect_timeout: Duration,
    max_concurrent_requests: usize,
    routes: Arc<Routes>,
) -> Result<Observed<StreamableHttpClientTransport<reqwest::Client>>, reqwest::Error> {
    let http = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .build()?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .max_concurrent_requests(max_concurrent_requests);
    Ok(Observed {
        inner: StreamableHttpClientTransport::with_client(http, config),
        routes,
    })
}
