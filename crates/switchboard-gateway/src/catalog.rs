//! The federated catalog: what the gateway lists, and where each public name is routed.
//!
//! A catalog is immutable. The gateway builds a new one whenever an upstream's state or
//! listing changes and swaps it in atomically; calls read the current one without a lock.
//!
//! A client whose own upstream session lists something else than the gateway's shared
//! session (a stateful upstream that offers a client what it created in its session, or only
//! the tools its capabilities allow: see `crate::upstream::pool`) gets a catalog of its own,
//! built the same way with its own listing of that upstream in place of the shared one
//! (`crate::gateway::own_lists`). Everyone else shares the global one.
//!
//! Public names are computed over every upstream that has ever been listed, down or not (see
//! [`crate::naming`]), so a name does not change because another upstream went away. Only the
//! items of upstreams that are up are listed; routes to the others remain, so a caller holding
//! an old list gets "upstream down" instead of "unknown tool".

use std::{borrow::Cow, collections::HashMap, sync::Arc};

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use crate::{
    metrics::{GatewayMetrics, ToolMetrics},
    naming::{self, Renamed},
    upstream::{Listing, Upstream},
};

/// Where a public tool name goes.
pub struct ToolRoute {
    /// Index into the gateway's upstreams.
    pub upstream: usize,
    /// The name the upstream knows it by.
    pub original: Cow<'static, str>,
    pub metrics: ToolMetrics,
    /// Whether its results are cached (set by `crate::cache::Cache::plan_catalog`).
    pub cache: crate::cache::Plan,
    /// The tool's `execution` (`taskSupport`) as the upstream declares it. rmcp's `Tool` has no
    /// such field, so the endpoint adds it to `tools/list` answers (`crate::endpoint`).
    pub execution: Option<serde_json::Value>,
}

/// A tool with its upstream, for `GET /api/tools`.
pub struct ToolEntry {
    pub tool: Tool,
    pub upstream: usize,
}

#[derive(Default)]
pub struct Catalog {
    /// `tools/list`: tools of upstreams that are up, under their public names.
    pub tools: Vec<Tool>,
    /// Every known tool, down upstreams included, in upstream order.
    pub entries: Vec<ToolEntry>,
    pub tool_routes: HashMap<String, ToolRoute>,
    pub resources: Vec<Resource>,
    pub resource_templates: Vec<ResourceTemplate>,
    /// Public URI to (upstream, original URI).
    resource_routes: HashMap<String, (usize, String)>,
    /// Literal prefix of each listed URI template (up to its first `{`), and its upstream.
    template_prefixes: Vec<(String, usize)>,
    /// Public URI template to (upstream, original template): where `completion/complete`
    /// for a `ref/resource` goes.
    pub template_routes: HashMap<String, (usize, String)>,
    pub prompts: Vec<Prompt>,
    pub prompt_routes: HashMap<String, (usize, String)>,
    /// The `tasks` capability the gateway declares (MCP 2025-11-25): what its upstreams
    /// declare of what it routes (`crate::gateway::tasks`); `None` when none offers tasks.
    pub tasks: Option<serde_json::Value>,
}

impl Catalog {
    /// Build from the upstreams' current listings, or from `own[i]` for upstream `i` where
    /// that is set (a client's own listing). Returns the catalog and the renames.
    pub fn build(
        upstreams: &[Arc<Upstream>],
        metrics: &GatewayMetrics,
        own: &[Option<Arc<Listing>>],
    ) -> (Self, Vec<Renamed>) {
        let snapshot: Vec<(Arc<Listing>, bool, bool)> = upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (listing, listed) = match own.get(i) {
                    Some(Some(own)) => (own.clone(), true),
                    _ => u.listing(),
                };
                (listing, listed, u.is_up())
            })
            .collect();
        let known: Vec<usize> = (0..upstreams.len()).filter(|&i| snapshot[i].1).collect();
        let mut catalog = Catalog::default();

        // Tools.
        let offers: Vec<(&str, Vec<&str>)> = known
            .iter()
            .map(|&i| {
                let names = snapshot[i]
                    .0
                    .tools
                    .iter()
                    .map(|t| t.name.as_ref())
                    .collect();
                (upstreams[i].config.name.as_str(), names)
            })
            .collect();
        let (public, mut renamed) = naming::assign(&offers);
        for (k, &i) in known.iter().enumerate() {
            let upstream_name = upstreams[i].config.name.as_str();
            let tasks = upstreams[i].tasks();
            for (tool, name) in snapshot[i].0.tools.iter().zip(&public[k]) {
                let mut published = tool.clone();
                published.name = Cow::Owned(name.clone());
                catalog.tool_routes.insert(
                    name.clone(),
                    ToolRoute {
                        upstream: i,
                        original: tool.name.clone(),
                        metrics: metrics.tool(name, upstream_name),
                        cache: Default::default(),
                        execution: tasks.executions.get(tool.name.as_ref()).cloned(),
                    },
                );
                if snapshot[i].2 {
                    catalog.tools.push(published.clone());
                }
                catalog.entries.push(ToolEntry {
                    tool: published,
                    upstream: i,
                });
            }
        }

        // Prompts: the same naming rule.
        let offers: Vec<(&str, Vec<&str>)> = known
            .iter()
            .map(|&i| {
                let names = snapshot[i]
                    .0
                    .prompts
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                (upstreams[i].config.name.as_str(), names)
            })
            .collect();
        let (public, prompt_renames) = naming::assign(&offers);
        renamed.extend(prompt_renames);
        for (k, &i) in known.iter().enumerate() {
            for (prompt, name) in snapshot[i].0.prompts.iter().zip(&public[k]) {
                catalog
                    .prompt_routes
                    .insert(name.clone(), (i, prompt.name.clone()));
                if snapshot[i].2 {
                    let mut published = prompt.clone();
                    published.name = name.clone();
                    catalog.prompts.push(published);
                }
            }
        }

        // Resources and templates: URIs stay unless two upstreams offer the same one.
        let offers: Vec<(&str, Vec<&str>)> = known
            .iter()
            .map(|&i| {
                let uris = snapshot[i]
                    .0
                    .resources
                    .iter()
                    .map(|r| r.uri.as_str())
                    .collect();
                (upstreams[i].config.name.as_str(), uris)
            })
            .collect();
        let public = naming::assign_uris(&offers);
        for (k, &i) in known.iter().enumerate() {
            for (resource, uri) in snapshot[i].0.resources.iter().zip(&public[k]) {
                catalog
                    .resource_routes
                    .insert(uri.clone(), (i, resource.uri.clone()));
                if snapshot[i].2 {
                    let mut published = resource.clone();
                    published.uri = uri.clone();
                    catalog.resources.push(published);
                }
            }
        }
        let offers: Vec<(&str, Vec<&str>)> = known
            .iter()
            .map(|&i| {
                let templates = snapshot[i]
                    .0
                    .resource_templates
                    .iter()
                    .map(|t| t.uri_template.as_str())
                    .collect();
                (upstreams[i].config.name.as_str(), templates)
            })
            .collect();
        let public = naming::assign_uris(&offers);
        for (k, &i) in known.iter().enumerate() {
            for (template, uri) in snapshot[i].0.resource_templates.iter().zip(&public[k]) {
                catalog
                    .template_routes
                    .insert(uri.clone(), (i, template.uri_template.clone()));
                if !uri.starts_with(naming::URI_PREFIX) {
                    let prefix = uri.split('{').next().unwrap_or_default().to_owned();
                    catalog.template_prefixes.push((prefix, i));
                }
                if snapshot[i].2 {
                    let mut published = template.clone();
                    published.uri_template = uri.clone();
                    catalog.resource_templates.push(published);
                }
            }
        }
        catalog
            .template_prefixes
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        catalog.tasks = crate::gateway::tasks::capability(upstreams);
        (catalog, renamed)
    }

    /// Which upstream serves `uri`, and under which URI: a listed resource, a rewritten
    /// `switchboard://<upstream>/...` URI, or the longest matching template prefix.
    pub fn route_resource(
        &self,
        uri: &str,
        upstreams: &[Arc<Upstream>],
    ) -> Option<(usize, String)> {
        if let Some((i, original)) = self.resource_routes.get(uri) {
            return Some((*i, original.clone()));
        }
        if let Some((name, original)) = naming::split_uri(uri)
            && let Some(i) = upstreams.iter().position(|u| u.config.name == name)
        {
            return Some((i, original.to_owned()));
        }
        self.template_prefixes
            .iter()
            .find(|(prefix, _)| !prefix.is_empty() && uri.starts_with(prefix.as_str()))
            .map(|(_, i)| (*i, uri.to_owned()))
    }
}
