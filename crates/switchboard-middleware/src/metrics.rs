//! The middleware's own metrics, next to the HTTP metrics every service has.
//!
//! - `chat_requests_total{endpoint, source, outcome}`
//! - `llm_requests_total{provider, outcome}`, `llm_request_duration_seconds{provider}`
//! - `tool_calls_total{tool, outcome}`, `tool_call_duration_seconds{tool}`
//!
//! Tool labels are gateway tool names; a name the LLM made up is counted as `unknown`, so a
//! misbehaving model cannot create unbounded series.

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
};
use switchboard_runtime::{Metrics, metrics::latency_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChatLabels {
    endpoint: &'static str,
    source: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOutcome {
    provider: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Handles to the middleware's metric families. Cheap to clone.
#[derive(Clone)]
pub struct ChatMetrics {
    chats: Family<ChatLabels, Counter>,
    llm_requests: Family<ProviderOutcome, Counter>,
    llm_duration: Histograms<ProviderLabel>,
    tool_calls: Family<ToolOutcome, Counter>,
    tool_duration: Histograms<ToolLabel>,
}

impl ChatMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let this = Self {
            chats: Family::default(),
            llm_requests: Family::default(),
            llm_duration: Family::new_with_constructor(latency_histogram),
            tool_calls: Family::default(),
            tool_duration: Family::new_with_constructor(latency_histogram),
        };
        metrics.register(
            "chat_requests",
            "Chats answered, by endpoint (chat, openai), source (llm, offline_planner) and outcome (ok, error)",
            this.chats.clone(),
        );
        metrics.register(
            "llm_requests",
            "Requests to the LLM API, by provider and outcome (ok, unreachable, timeout, status, protocol)",
            this.llm_requests.clone(),
        );
        metrics.register(
            "llm_request_duration_seconds",
            "Time one LLM request took, streamed or not, by provider",
            this.llm_duration.clone(),
        );
        metrics.register(
            "tool_calls",
            "Tool calls made through the gateway, by tool and outcome (ok, tool_error, call_failed)",
            this.tool_calls.clone(),
        );
        metrics.register(
            "tool_call_duration_seconds",
            "Time one tool call took through the gateway, by tool",
            this.tool_duration.clone(),
        );
        this
    }

    pub fn chat(&self, endpoint: &'static str, source: &'static str, ok: bool) {
        self.chats
            .get_or_create(&ChatLabels {
                endpoint,
                source,
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    pub fn llm_request(&self, provider: &'static str, outcome: &'static str, took: Duration) {
        self.llm_requests
            .get_or_create(&ProviderOutcome { provider, outcome })
            .inc();
        self.llm_duration
            .get_or_create(&ProviderLabel { provider })
            .observe(took.as_secs_f64());
    }

    pub fn tool_call(&self, tool: Option<&str>, outcome: &'static str, took: Duration) {
        let tool = tool.unwrap_or("unknown").to_owned();
        self.tool_calls
            .get_or_create(&ToolOutcome {
                tool: tool.clone(),
                outcome,
            })
            .inc();
        self.tool_duration
            .get_or_create(&ToolLabel { tool })
            .observe(took.as_secs_f64());
    }
}
