//! [`Catalog`]: what the gateway offers an MCP client — the upstream tools
//! it can reach, renamed `<server>__<tool>`, and how each call is decided —
//! built from the active bundle and what the connected servers list.
//!
//! A tool is listed only when the bundle maps it (or, under
//! `annotations: trust`, the server annotates it read-only) and every
//! placeholder of its resource template names an argument of the tool's
//! input schema; a tool whose definition upstream stops matching its
//! mapping is hidden — and unreachable — until the two agree again.

use std::{collections::HashMap, sync::Arc};

use clearance_engine::{
    Bundle,
    bundle::mcp::{Annotations, McpServer, ToolMapping, exposed_name, is_client_tool_name},
};
use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use crate::{
    resources::{Claims, Unroutable},
    upstream::Offer,
};

/// Everything offered, at one moment.
#[derive(Default)]
pub(crate) struct Catalog {
    /// The tools a client lists.
    pub tools: Vec<Tool>,
    routes: HashMap<String, Route>,
    /// Resources, each with the server that offers it.
    pub resources: Vec<(String, Resource)>,
    /// Resource templates, each with its server.
    pub templates: Vec<(String, ResourceTemplate)>,
    /// Prompts, renamed `<server>__<prompt>`, with the server and the
    /// upstream name.
    pub prompts: Vec<(String, String, Prompt)>,
    /// Who offers which resource URIs, for reads.
    claims: Claims,
    /// The revision of the bundle whose mappings route its tools.
    revision: Arc<str>,
}

/// Where a listed tool goes and what a call to it is.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The server.
    pub server: Arc<McpServer>,
    /// The tool's name upstream.
    pub tool: String,
    /// What a call is decided as.
    pub decided_as: DecidedAs,
    /// The revision of the bundle that routes it so: a call routed here is
    /// decided under that bundle only (a reload may map the tool anew).
    pub revision: Arc<str>,
}

/// What a call to a tool is decided as.
#[derive(Clone, Debug)]
pub(crate) enum DecidedAs {
    /// The bundle's mapping.
    Mapped(ToolMapping),
    /// Unmapped, annotated read-only by a trusted server: a read of
    /// `<server>:read-only`.
    ReadOnly,
}

impl Catalog {
    /// Builds the catalog of `bundle`'s servers from what they offer.
    pub(crate) fn build(bundle: &Bundle, offers: &HashMap<String, Offer>) -> Catalog {
        let mut catalog = Catalog {
            revision: bundle.revision().into(),
            ..Catalog::default()
        };
        // Claims first: whether a resource is listed depends on them all.
        for id in bundle.mcp_servers().keys() {
            if let Some(offer) = offers.get(id) {
                catalog.claims.add(id, &offer.resources, &offer.templates);
            }
        }
        // A server listing one URI twice lists it once.
        let mut uris = std::collections::HashSet::new();
        for (id, config) in bundle.mcp_servers() {
            let Some(offer) = offers.get(id) else {
                continue;
            };
            let server = Arc::new(config.clone());
            for tool in &offer.tools {
                catalog.add_tool(&server, tool);
            }
            // A URI a server lists is claimed by it: it is that server's
            // alone, or contested.
            let (mut contested, mut first) = (0usize, None);
            for resource in &offer.resources {
                match catalog.claims.server(&resource.uri) {
                    Ok(_) => {
                        if uris.insert(resource.uri.as_str()) {
                            catalog.resources.push((id.clone(), resource.clone()));
                        }
                    }
                    Err(why) => {
                        contested += 1;
                        first.get_or_insert((resource.uri.as_str(), why));
                    }
                }
            }
            if let Some((example, why)) = first {
                tracing::warn!(server = %id, contested, example, "resources not listed, nor read: {why}");
            }
            for template in &offer.templates {
                catalog.templates.push((id.clone(), template.clone()));
            }
            for prompt in &offer.prompts {
                let name = exposed_name(id, &prompt.name);
                let mut exposed = prompt.clone();
                exposed.name = name;
                catalog
                    .prompts
                    .push((id.clone(), prompt.name.clone(), exposed));
            }
        }
        catalog
    }

    fn add_tool(&mut self, server: &Arc<McpServer>, tool: &Tool) {
        let name = exposed_name(&server.id, &tool.name);
        let decided_as = match server.tools.get(tool.name.as_ref()) {
            Some(mapping) => match mismatch(mapping, tool) {
                None => DecidedAs::Mapped(mapping.clone()),
                Some(missing) => {
                    tracing::warn!(
                        server = %server.id,
                        tool = %tool.name,
                        "hidden: its resource template names `{missing}`, which the tool's input schema does not have (mcp_servers.{}.tools.{})",
                        server.id,
                        tool.name
                    );
                    return;
                }
            },
            None if server.annotations == Annotations::Trust
                && tool
                    .annotations
                    .as_ref()
                    .and_then(|a| a.read_only_hint)
                    .unwrap_or(false) =>
            {
                DecidedAs::ReadOnly
            }
            None => return,
        };
        if !is_client_tool_name(&name) {
            tracing::warn!(server = %server.id, tool = %tool.name, "hidden: `{name}` is not a tool name clients accept");
            return;
        }
        let mut exposed = tool.clone();
        exposed.name = name.clone().into();
        // A call that is not forwarded answers with the gateway's own
        // `structuredContent` (`clearance`), which no upstream output schema
        // describes: clients that validate results against the schema would
        // reject it. Results that are forwarded pass through unchanged.
        exposed.output_schema = None;
        self.tools.push(exposed);
        self.routes.insert(
            name,
            Route {
                server: server.clone(),
                tool: tool.name.to_string(),
                decided_as,
                revision: self.revision.clone(),
            },
        );
    }

    /// The route of the tool a client calls by `name`.
    pub(crate) fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    /// The one server that offers the resource at `uri`.
    pub(crate) fn resource_server(&self, uri: &str) -> Result<&str, Unroutable> {
        self.claims.server(uri)
    }

    /// The server and upstream name of the prompt a client gets by `name`.
    pub(crate) fn prompt(&self, name: &str) -> Option<(&str, &str)> {
        self.prompts
            .iter()
            .find(|(_, _, exposed)| exposed.name == name)
            .map(|(server, upstream, _)| (server.as_str(), upstream.as_str()))
    }
}

/// The first argument `mapping`'s templates read that `tool`'s input schema
/// does not declare, if its schema lists its properties at all.
fn mismatch(mapping: &ToolMapping, tool: &Tool) -> Option<String> {
    let properties = tool.input_schema.get("properties")?.as_object()?;
    let resource = &mapping.resource;
    [&resource.kind, &resource.namespace, &resource.name]
        .into_iter()
        .flat_map(|template| template.arguments())
        .find(|argument| !properties.contains_key(argument))
}
