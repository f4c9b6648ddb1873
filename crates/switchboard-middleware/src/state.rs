//! What every request handler shares.

use std::sync::Arc;

use switchboard_runtime::{Error, Metrics};

use crate::{
    config::Config, gateway::Gateway, health::LlmProbe, llm::Llm, metrics::ChatMetrics,
    sessions::Conversations,
};

/// The middleware's shared state: settings, the gateway session, the LLM client (none: the
/// offline planner answers), metrics, the cached LLM health probe and the conversations with
/// their sandbox sessions.
pub struct Shared {
    pub config: Config,
    pub gateway: Gateway,
    pub llm: Option<Llm>,
    pub metrics: ChatMetrics,
    pub llm_probe: LlmProbe,
    pub conversations: Conversations,
}

/// The state as axum handlers receive it.
pub type AppState = Arc<Shared>;

impl Shared {
    pub fn new(config: Config, metrics: &Metrics) -> Result<Self, Error> {
        let llm = match &config.llm {
            Some(settings) => Some(Llm::new(settings.clone()).map_err(|e| {
                Error::Config(format!("llm_base_url (--llm-base-url / LLM_BASE_URL): {e}"))
            })?),
            None => None,
        };
        Ok(Self {
            gateway: Gateway::new(
                config.gateway_url.clone(),
                switchboard_runtime::client::ClientOptions::from_http(&config.http)
                    .with_bearer(config.gateway_token.clone()),
            )?,
            llm,
            metrics: ChatMetrics::register(metrics),
            llm_probe: LlmProbe::default(),
            conversations: Conversations::default(),
            config,
        })
    }
}
