//! `mcp_servers:` to [`McpServer`]s: ids well-formed, exactly one of
//! `command` and `url`, durations, every mapped action in the inventory,
//! every template well-formed, every exposed tool name one a client
//! accepts. Whether a template names a real argument of the tool needs the
//! server's tool schema: the gateway checks that when the server lists its
//! tools (`clearance check` cannot reach servers).
//!
//! A server with `annotations: trust` adds the read action
//! `<server>:read-only` to the inventory (unless the bundle declares it,
//! as a read): the action its unmapped read-only tools are decided as.

use std::collections::{BTreeMap, HashMap};

use serde_saphyr::Spanned;

use super::Config;
use crate::{
    Impact,
    bundle::{
        Action,
        mcp::{
            Annotations, McpServer, READ_ONLY_VERB, ResourceTemplate, Template, ToolMapping,
            Upstream, env, exposed_name, header, is_client_tool_name,
        },
        raw::{RawConfig, RawMcpServer, RawMcpTool},
    },
    scope::ActionEntity,
};

impl Config<'_> {
    pub(super) fn mcp_servers(
        &mut self,
        raw: &RawConfig,
        actions: &mut HashMap<String, Action>,
    ) -> BTreeMap<String, McpServer> {
        let servers: BTreeMap<String, McpServer> = raw
            .mcp_servers
            .iter()
            .filter_map(|(id, server)| self.mcp_server(id, server, actions))
            .map(|server| (server.id.clone(), server))
            .collect();
        for server in servers.values() {
            if server.annotations == Annotations::Trust {
                self.read_only_action(server, raw, actions);
            }
        }
        servers
    }

    /// Adds `<server>:read-only`, the read its trusted read-only tools are.
    fn read_only_action(
        &mut self,
        server: &McpServer,
        raw: &RawConfig,
        actions: &mut HashMap<String, Action>,
    ) {
        let name = server.read_only_action();
        if let Some(declared) = actions.get(&name) {
            if declared.impact != Impact::Read
                && let Some(at) = raw
                    .mcp_servers
                    .get(&server.id)
                    .and_then(|s| s.value.annotations.as_ref())
            {
                self.error_at(
                    "invalid-mcp-annotations",
                    &at.referenced,
                    format!("mcp_servers.{}.annotations: `trust` decides unmapped read-only tools as `{name}`, which the inventory declares {} impact, not read", server.id, declared.impact),
                );
            }
            return;
        }
        match ActionEntity::new(&server.id, READ_ONLY_VERB, Impact::Read) {
            Ok(cedar) => {
                actions.insert(
                    name.clone(),
                    Action {
                        name,
                        tool: server.id.clone(),
                        verb: READ_ONLY_VERB.to_owned(),
                        impact: Impact::Read,
                        rollback: None,
                        kubernetes: None,
                        aws: None,
                        cedar,
                        playbook: None,
                    },
                );
            }
            Err(error) => self.problems.push(crate::Diagnostic::error(
                "internal",
                crate::bundle::CONFIG_FILE,
                error,
            )),
        }
    }

    fn mcp_server(
        &mut self,
        id: &str,
        raw: &Spanned<RawMcpServer>,
        actions: &HashMap<String, Action>,
    ) -> Option<McpServer> {
        let at = &raw.referenced;
        let server = &raw.value;
        let mut ok = true;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            self.error_at(
                "invalid-mcp-server-id",
                at,
                format!("mcp_servers.{id}: a server id is letters, digits and `-`"),
            );
            ok = false;
        }
        let upstream = match (&server.command, &server.url) {
            (Some(command), None) => match command.value.split_first() {
                Some((program, args)) if !program.trim().is_empty() => Some(Upstream::Command {
                    program: program.clone(),
                    args: args.to_vec(),
                }),
                _ => {
                    self.error_at(
                        "invalid-mcp-upstream",
                        &command.referenced,
                        format!(
                            "mcp_servers.{id}.command: name the program to run, then its arguments"
                        ),
                    );
                    None
                }
            },
            (None, Some(url))
                if url.value.starts_with("http://") || url.value.starts_with("https://") =>
            {
                Some(Upstream::Url(url.value.clone()))
            }
            (None, Some(url)) => {
                self.error_at(
                    "invalid-mcp-upstream",
                    &url.referenced,
                    format!(
                        "mcp_servers.{id}.url: `{}` is not an http:// or https:// URL",
                        url.value
                    ),
                );
                None
            }
            _ => {
                self.error_at(
                    "invalid-mcp-upstream",
                    at,
                    format!("mcp_servers.{id}: give exactly one of `command` (a stdio child) and `url` (a streamable-HTTP server)"),
                );
                None
            }
        };
        let headers = self.headers(id, server);
        let env = self.env(id, server);
        let timeout = self.seconds(id, "timeout", server.timeout.as_ref(), 30, false);
        let approval_wait =
            self.seconds(id, "approval_wait", server.approval_wait.as_ref(), 0, true);
        let annotations = match server.annotations.as_ref().map(|a| a.value.as_str()) {
            None | Some("ignore") => Some(Annotations::Ignore),
            Some("trust") => Some(Annotations::Trust),
            Some(other) => {
                if let Some(raw) = &server.annotations {
                    self.error_at(
                        "invalid-mcp-annotations",
                        &raw.referenced,
                        format!(
                            "mcp_servers.{id}.annotations: `{other}` is not `ignore` or `trust`"
                        ),
                    );
                }
                None
            }
        };
        let mut tools = BTreeMap::new();
        for (tool, mapping) in &server.tools {
            match self.tool_mapping(id, tool, mapping, actions) {
                Some(mapping) => {
                    tools.insert(tool.clone(), mapping);
                }
                None => ok = false,
            }
        }
        Some(McpServer {
            id: id.to_owned(),
            upstream: upstream?,
            env: env?,
            headers: headers?,
            timeout_seconds: timeout?,
            approval_wait_seconds: approval_wait?,
            annotations: annotations?,
            tools,
        })
        .filter(|_| ok)
    }

    /// `headers`, for a `url` upstream only: each name an HTTP token that
    /// the transport does not set itself and no other name repeats in
    /// another case, each value printable ASCII (a line break would end
    /// the header and start another: a request the bundle never wrote).
    fn headers(&mut self, id: &str, server: &RawMcpServer) -> Option<BTreeMap<String, String>> {
        // A server with neither or both is refused as such already.
        let misplaced = (server.command.is_some() && server.url.is_none()).then(|| {
            format!(
                "mcp_servers.{id}.headers: only a `url` upstream is sent headers (a `command` child's credentials go in `env`)"
            )
        });
        let mut seen = BTreeMap::new();
        self.credentials(server.headers.as_ref(), "invalid-mcp-header", misplaced, |name, value| {
            if let Some(problem) = header::problem(name, value) {
                Some(format!("mcp_servers.{id}.headers.{name}: {problem}"))
            } else {
                seen.insert(name.to_ascii_lowercase(), name.to_owned())
                    .map(|first| {
                        format!(
                            "mcp_servers.{id}.headers.{name}: the same header as `{first}` (names are not case-sensitive)"
                        )
                    })
            }
        })
    }

    /// `env`, for a `command` child only: names and values the system can
    /// hold, references well formed.
    fn env(&mut self, id: &str, server: &RawMcpServer) -> Option<BTreeMap<String, String>> {
        let misplaced = (server.url.is_some() && server.command.is_none()).then(|| {
            format!(
                "mcp_servers.{id}.env: only a `command` child is given an environment (a `url` upstream's credentials go in `headers`)"
            )
        });
        self.credentials(
            server.env.as_ref(),
            "invalid-mcp-env",
            misplaced,
            |name, value| {
                env::problem(name, value)
                    .map(|problem| format!("mcp_servers.{id}.env.{name}: {problem}"))
            },
        )
    }

    /// A map of credentials (`headers` or `env`) as written, empty when it
    /// is not: `misplaced` when the server is of the wrong kind for it
    /// (and the map is not empty), then each entry's problem by `check`,
    /// every one reported under `code`; the map only when there are none.
    fn credentials(
        &mut self,
        raw: Option<&Spanned<BTreeMap<String, String>>>,
        code: &'static str,
        misplaced: Option<String>,
        mut check: impl FnMut(&str, &str) -> Option<String>,
    ) -> Option<BTreeMap<String, String>> {
        let Some(raw) = raw else {
            return Some(BTreeMap::new());
        };
        let misplaced = misplaced.filter(|_| !raw.value.is_empty());
        let problems: Vec<String> = misplaced
            .into_iter()
            .chain(
                raw.value
                    .iter()
                    .filter_map(|(name, value)| check(name, value)),
            )
            .collect();
        for problem in &problems {
            self.error_at(code, &raw.referenced, problem.clone());
        }
        problems.is_empty().then(|| raw.value.clone())
    }

    /// A duration key in whole seconds; `0s` only where `zero` allows it.
    fn seconds(
        &mut self,
        id: &str,
        key: &str,
        raw: Option<&Spanned<String>>,
        default: u64,
        zero: bool,
    ) -> Option<u64> {
        let Some(raw) = raw else { return Some(default) };
        let text = raw.value.trim();
        if zero
            && text
                .trim_end_matches(['s', 'm', 'h', 'd'])
                .chars()
                .all(|c| c == '0')
            && text.len() > 1
        {
            return Some(0);
        }
        match text.parse::<crate::duration::BundleDuration>() {
            Ok(duration) => Some(u64::try_from(duration.seconds()).unwrap_or(u64::MAX)),
            Err(error) => {
                self.error_at(
                    "invalid-duration",
                    &raw.referenced,
                    format!("mcp_servers.{id}.{key}: {error}"),
                );
                None
            }
        }
    }

    fn tool_mapping(
        &mut self,
        id: &str,
        tool: &str,
        raw: &Spanned<RawMcpTool>,
        actions: &HashMap<String, Action>,
    ) -> Option<ToolMapping> {
        let exposed = exposed_name(id, tool);
        let mut ok = true;
        if !is_client_tool_name(&exposed) {
            self.error_at(
                "invalid-mcp-tool-name",
                &raw.referenced,
                format!("mcp_servers.{id}.tools.{tool}: clients see it as `{exposed}`, which must be 1 to 64 letters, digits, `_` or `-`"),
            );
            ok = false;
        }
        let action = &raw.value.action;
        if !actions.contains_key(&action.value) {
            self.error_at(
                "unknown-action",
                &action.referenced,
                format!(
                    "mcp_servers.{id}.tools.{tool}.action: `{}` is not in the inventory (`tools:`)",
                    action.value
                ),
            );
            ok = false;
        }
        let resource = &raw.value.resource.value;
        let kind = self.template(id, tool, "kind", Some(&resource.kind));
        let namespace = self.template(id, tool, "namespace", resource.namespace.as_ref());
        let name = self.template(id, tool, "name", Some(&resource.name));
        let resource = ResourceTemplate {
            kind: kind?,
            namespace: namespace?,
            name: name?,
        };
        ok.then(|| ToolMapping {
            action: action.value.clone(),
            resource,
        })
    }

    fn template(
        &mut self,
        id: &str,
        tool: &str,
        field: &str,
        raw: Option<&Spanned<String>>,
    ) -> Option<Template> {
        let Some(raw) = raw else {
            return Template::parse("").ok();
        };
        match Template::parse(&raw.value) {
            Ok(template) => Some(template),
            Err(error) => {
                self.error_at(
                    "invalid-template",
                    &raw.referenced,
                    format!("mcp_servers.{id}.tools.{tool}.resource.{field}: {error}"),
                );
                None
            }
        }
    }
}
