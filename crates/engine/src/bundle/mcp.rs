//! [`McpServer`]: an upstream MCP server the gateway holds (`mcp_servers:`)
//! — how to reach it, and how each of its tools maps onto the inventory:
//! the action a call is, and the [`ResourceTemplate`] that builds the
//! resource from the call's arguments.
//!
//! Pure: templates render from a call's JSON arguments here; connecting to
//! servers and forwarding calls is the MCP face's.

pub mod env;
pub mod header;
pub mod reference;

use std::collections::BTreeMap;

use serde_json::Value;

/// An upstream MCP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpServer {
    /// Its id: letters, digits and `-`; its tools are exposed as `<id>__<tool>`.
    pub id: String,
    /// Where it is.
    pub upstream: Upstream,
    /// Extra environment for a child (credentials live here, not in the
    /// agent), as written: `${NAME}` is filled in at connect
    /// ([`env`](mod@env)).
    pub env: BTreeMap<String, String>,
    /// Extra HTTP headers on every request to a `url` upstream (its
    /// credentials, as `env` holds a child's): names valid HTTP tokens, none
    /// the transport sets itself, values printable ASCII.
    pub headers: BTreeMap<String, String>,
    /// How long one call may take.
    pub timeout_seconds: u64,
    /// How long a pending call waits for its approval (0: answer at once).
    pub approval_wait_seconds: u64,
    /// Whether an unmapped tool the server marks read-only counts as a read.
    pub annotations: Annotations,
    /// Mapped tools, by the server's tool name.
    pub tools: BTreeMap<String, ToolMapping>,
}

/// How the gateway reaches an upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// A stdio child process: the program and its arguments.
    Command {
        /// The program.
        program: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A streamable-HTTP server.
    Url(String),
}

/// What an unmapped tool's annotations are worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Annotations {
    /// Unmapped tools are never reachable.
    Ignore,
    /// An unmapped tool annotated `readOnlyHint: true` is a `read` of
    /// `<server>:<tool>`; any other unmapped tool stays unreachable.
    Trust,
}

/// One mapped tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolMapping {
    /// The inventory action a call is (`tool:verb`).
    pub action: String,
    /// How the resource is built from the call's arguments.
    pub resource: ResourceTemplate,
}

/// `kind`, `namespace` and `name`, each a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceTemplate {
    /// The resource's kind.
    pub kind: Template,
    /// Its namespace (empty for cluster-scoped objects).
    pub namespace: Template,
    /// Its name.
    pub name: Template,
}

/// Text with `{arg}` (a top-level argument) and `{/a/b}` (a JSON Pointer
/// into the arguments) placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A JSON Pointer (`/path`, `/metadata/name`).
    Argument(String),
}

/// Why a template did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{` without `}`.
    #[error("`{{` without a closing `}}`")]
    Unclosed,
    /// `}` without `{`.
    #[error("`}}` without an opening `{{`")]
    Unopened,
    /// `{}` or `{/}`.
    #[error("an empty placeholder: write `{{arg}}` or `{{/json/pointer}}`")]
    Empty,
}

/// Why a template did not render for a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// The call lacks the argument.
    #[error("the call has no argument `{0}`")]
    Missing(String),
    /// The argument is not text or a number.
    #[error("argument `{0}` is not text or a number")]
    NotScalar(String),
}

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    /// An unclosed, unopened or empty placeholder.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '{' => {
                    let mut name = String::new();
                    let closed = loop {
                        match chars.next() {
                            Some('}') => break true,
                            Some('{') | None => break false,
                            Some(c) => name.push(c),
                        }
                    };
                    if !closed {
                        return Err(TemplateError::Unclosed);
                    }
                    let pointer = if name.starts_with('/') {
                        name
                    } else {
                        format!("/{}", name.replace('~', "~0").replace('/', "~1"))
                    };
                    if pointer == "/" || name_is_empty(&pointer) {
                        return Err(TemplateError::Empty);
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Argument(pointer));
                }
                '}' => return Err(TemplateError::Unopened),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The top-level arguments it reads (the first segment of each pointer).
    pub fn arguments(&self) -> impl Iterator<Item = String> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Argument(pointer) => pointer
                .split('/')
                .nth(1)
                .map(|s| s.replace("~1", "/").replace("~0", "~")),
            Part::Literal(_) => None,
        })
    }

    /// The text for a call with `arguments`.
    ///
    /// # Errors
    /// A placeholder the arguments lack, or one that is an object, a list
    /// or null.
    pub fn render(
        &self,
        arguments: &serde_json::Map<String, Value>,
    ) -> Result<String, ArgumentError> {
        let root = Value::Object(arguments.clone());
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Argument(pointer) => {
                    let shown = pointer.trim_start_matches('/').to_owned();
                    match root.pointer(pointer) {
                        Some(Value::String(text)) => out.push_str(text),
                        Some(Value::Number(n)) => out.push_str(&n.to_string()),
                        Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                        None => return Err(ArgumentError::Missing(shown)),
                        Some(_) => return Err(ArgumentError::NotScalar(shown)),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn name_is_empty(pointer: &str) -> bool {
    pointer.split('/').skip(1).any(str::is_empty)
}

/// The verb of `<server>:read-only`, the action unmapped tools a trusted
/// server annotates read-only are decided as.
pub const READ_ONLY_VERB: &str = "read-only";

/// The resource kind of a call to an unmapped read-only tool; its
/// namespace is the server id, its name the tool's.
pub const READ_ONLY_KIND: &str = "mcp-tool";

impl McpServer {
    /// `<id>:read-only`: what an unmapped tool this server annotates
    /// read-only is, under `annotations: trust`.
    pub fn read_only_action(&self) -> String {
        format!("{}:{READ_ONLY_VERB}", self.id)
    }
}

/// The name a client sees for `tool` of `server`.
pub fn exposed_name(server: &str, tool: &str) -> String {
    format!("{server}__{tool}")
}

/// Whether `name` is a name MCP clients accept: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn is_client_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> serde_json::Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    #[test]
    fn templates_render_arguments_and_pointers_and_name_what_is_missing() {
        let t = Template::parse("{/metadata/namespace}/{name}-x").unwrap();
        let call = args(json!({ "name": "api", "metadata": { "namespace": "shop" } }));
        assert_eq!(t.render(&call).unwrap(), "shop/api-x");
        assert_eq!(t.arguments().collect::<Vec<_>>(), ["metadata", "name"]);
        assert_eq!(
            t.render(&args(json!({ "name": "api" }))),
            Err(ArgumentError::Missing("metadata/namespace".into()))
        );
        assert_eq!(
            Template::parse("{path}")
                .unwrap()
                .render(&args(json!({ "path": ["a"] }))),
            Err(ArgumentError::NotScalar("path".into()))
        );
        assert_eq!(
            Template::parse("runbooks").unwrap().render(&call).unwrap(),
            "runbooks"
        );
        assert_eq!(Template::parse("{a"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("a}"), Err(TemplateError::Unopened));
        assert_eq!(Template::parse("{}"), Err(TemplateError::Empty));
        assert_eq!(Template::parse("{//x}"), Err(TemplateError::Empty));
    }

    #[test]
    fn client_tool_names_are_bounded() {
        assert!(is_client_tool_name("files__read_text_file"));
        assert!(!is_client_tool_name("files__read.text"));
        assert!(!is_client_tool_name(&"a".repeat(65)));
    }
}
