//! `mcp_servers:` exactly as written: one entry per upstream MCP server the
//! gateway holds, and the mapping of its tools onto the inventory. Nothing
//! here is validated beyond its type: `bundle::compile::mcp` does that.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcpServer {
    /// A stdio child: the program and its arguments.
    pub command: Option<Spanned<Vec<String>>>,
    /// Or a streamable-HTTP upstream.
    pub url: Option<Spanned<String>>,
    /// Extra environment for the child (its credentials live here).
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    /// Extra HTTP headers on every request to a `url` upstream (its
    /// credentials live here).
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Per call; default 30s.
    pub timeout: Option<Spanned<String>>,
    /// How long a pending call waits for its approval; default 0s.
    pub approval_wait: Option<Spanned<String>>,
    /// `ignore` (default) or `trust`.
    pub annotations: Option<Spanned<String>>,
    /// MCP tool → inventory action and resource.
    #[serde(default)]
    pub tools: BTreeMap<String, Spanned<RawMcpTool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcpTool {
    pub action: Spanned<String>,
    pub resource: Spanned<RawResourceTemplate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResourceTemplate {
    pub kind: Spanned<String>,
    #[serde(default)]
    pub namespace: Option<Spanned<String>>,
    pub name: Spanned<String>,
}
