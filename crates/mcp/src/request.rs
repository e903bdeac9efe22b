//! A `tools/call` as the decision request the engine decides: the action
//! and resource from the tool's mapping and the call's arguments, the plan,
//! snapshot and confidence from the call's `_meta`
//! (`clearance/plan_id`, `clearance/snapshot`, `clearance/confidence`,
//! and `clearance/rationale`, recorded only).
//!
//! The request carries the digest of the server, tool and arguments, so an
//! approval covers that exact call and no variation of it.
//!
//! A call whose arguments or `_meta` cannot make a request, or would make
//! one larger than the HTTP API takes, is refused here with the field
//! named — the same as a malformed HTTP request: it is not decided, and
//! nothing is forwarded.

use clearance_engine::{
    ARGUMENTS_MAX_BYTES, Confidence, DecisionRequest, Resource, Snapshot,
    bundle::mcp::{READ_ONLY_KIND, Template},
    digest_of_json,
};
use clearance_http::MAX_BODY_BYTES;
use rmcp::model::JsonObject;
use serde_json::Value;

use crate::catalog::{DecidedAs, Route};

/// Why a call makes no request.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Refusal {
    /// What is wrong, naming the argument or `_meta` key.
    pub message: String,
}

/// The request `agent`'s call to `route` with `arguments` and `meta` is.
pub(crate) fn decision_request(
    agent: &str,
    route: &Route,
    arguments: &JsonObject,
    meta: &JsonObject,
) -> Result<DecisionRequest, Refusal> {
    let server = &route.server;
    // PostgreSQL refuses NUL in text: one call's NUL would fail the whole
    // batch of ledger writes it rides in, everyone's decisions with it.
    for (what, object) in [("arguments", arguments), ("_meta", meta)] {
        if object
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value))
        {
            return Err(Refusal {
                message: format!("the call's {what} hold a NUL character, which no field takes"),
            });
        }
    }
    let (action, resource) = match &route.decided_as {
        DecidedAs::Mapped(mapping) => {
            let at = |field: &str| {
                format!(
                    "mcp_servers.{}.tools.{}.resource.{field}",
                    server.id, route.tool
                )
            };
            let render = |template: &Template, field: &str| {
                template.render(arguments).map_err(|error| Refusal {
                    message: format!("{error} (the resource's {field}, {})", at(field)),
                })
            };
            let resource = Resource {
                kind: render(&mapping.resource.kind, "kind")?,
                namespace: render(&mapping.resource.namespace, "namespace")?,
                name: render(&mapping.resource.name, "name")?,
            };
            (mapping.action.clone(), resource)
        }
        DecidedAs::ReadOnly => (
            server.read_only_action(),
            Resource {
                kind: READ_ONLY_KIND.to_owned(),
                namespace: server.id.clone(),
                name: route.tool.clone(),
            },
        ),
    };
    let call = bind_call(&server.id, &route.tool, arguments)?;
    let request = DecisionRequest {
        agent: agent.to_owned(),
        action,
        resource,
        level: None,
        plan_id: text(meta, "clearance/plan_id")?,
        snapshot: meta
            .get("clearance/snapshot")
            .map(|value| {
                let refusal = |why: String| Refusal {
                    message: format!(
                        "_meta `clearance/snapshot` is not {{\"version\": …, \"observed_at\": …}}: {why}"
                    ),
                };
                // An object only: serde would also take a positional array.
                if !value.is_object() {
                    return Err(refusal(format!("{value} is not an object")));
                }
                serde_json::from_value::<Snapshot>(value.clone())
                    .map_err(|error| refusal(error.to_string()))
            })
            .transpose()?,
        confidence: meta
            .get("clearance/confidence")
            .map(|value| {
                value.as_f64().and_then(Confidence::new).ok_or_else(|| Refusal {
                    message: format!(
                        "_meta `clearance/confidence` must be a number from 0 to 1, not {value}"
                    ),
                })
            })
            .transpose()?,
        rationale: text(meta, "clearance/rationale")?,
        approval_id: None,
        arguments_digest: Some(call.digest),
        arguments: call.shown,
    };
    within_the_http_limit(&request)?;
    Ok(request)
}

/// A call's request, its arguments aside (bound by their digest, shown to
/// an approver up to [`ARGUMENTS_MAX_BYTES`]), holds no more text than the
/// HTTP API takes in a whole body ([`MAX_BODY_BYTES`]): each is recorded in
/// the ledger, and a path argument or a rationale of megabytes would make
/// every record of the call that large. The largest field is named.
fn within_the_http_limit(request: &DecisionRequest) -> Result<(), Refusal> {
    let length = |text: Option<&String>| text.map_or(0, String::len);
    let fields = [
        ("the resource's kind", request.resource.kind.len()),
        ("the resource's namespace", request.resource.namespace.len()),
        ("the resource's name", request.resource.name.len()),
        (
            "_meta `clearance/plan_id`",
            length(request.plan_id.as_ref()),
        ),
        (
            "_meta `clearance/snapshot`",
            length(request.snapshot.as_ref().map(|s| &s.version)),
        ),
        (
            "_meta `clearance/rationale`",
            length(request.rationale.as_ref()),
        ),
    ];
    let total: usize = fields.iter().map(|(_, bytes)| bytes).sum();
    match fields.iter().max_by_key(|(_, bytes)| *bytes) {
        Some((largest, bytes)) if total > MAX_BODY_BYTES => Err(Refusal {
            message: format!(
                "{largest} is {bytes} bytes: a call's request, its arguments aside, holds at most {MAX_BODY_BYTES} bytes, as an HTTP request's body does"
            ),
        }),
        _ => Ok(()),
    }
}

/// The call as a request carries it.
struct CallBound {
    /// `sha256:…` of the call's JSON.
    digest: String,
    /// The same JSON, for an operator asked to approve it; `None` beyond
    /// [`ARGUMENTS_MAX_BYTES`].
    shown: Option<Value>,
}

/// An approval is for this call: another tool, or other arguments on the
/// same resource (a different replica count, file content or command),
/// make another request. The call is written once, borrowed, and the
/// operator is shown those very bytes read back.
fn bind_call(server: &str, tool: &str, arguments: &JsonObject) -> Result<CallBound, Refusal> {
    // Keys in sorted order, as a JSON object read back is written again
    // whether or not serde_json keeps insertion order: the digest of what
    // the operator is shown is the digest bound.
    #[derive(serde::Serialize)]
    struct Call<'a> {
        arguments: &'a JsonObject,
        server: &'a str,
        tool: &'a str,
    }
    let unreadable = |error: serde_json::Error| Refusal {
        message: format!("the call's arguments cannot be read as JSON: {error}"),
    };
    let text = serde_json::to_vec(&Call {
        arguments,
        server,
        tool,
    })
    .map_err(unreadable)?;
    if text.len() > ARGUMENTS_MAX_BYTES {
        return Ok(CallBound {
            digest: digest_of_json(&text),
            shown: None,
        });
    }
    // Digested as the value the approver is shown is written: a number
    // read back may be written with other digits than the client's, and
    // the digest must be of what is shown, byte for byte.
    let shown: Value = serde_json::from_slice(&text).map_err(unreadable)?;
    let written = serde_json::to_vec(&shown).map_err(unreadable)?;
    Ok(CallBound {
        digest: digest_of_json(&written),
        shown: Some(shown),
    })
}

/// Whether a string anywhere in `value`, or an object key, holds a NUL.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

fn text(meta: &JsonObject, key: &str) -> Result<Option<String>, Refusal> {
    match meta.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(Refusal {
            message: format!("_meta `{key}` must be text, not {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc};

    use clearance_engine::bundle::mcp::{
        Annotations, McpServer, ResourceTemplate, ToolMapping, Upstream,
    };
    use serde_json::json;

    use super::*;

    fn route(decided_as: DecidedAs) -> Route {
        Route {
            server: Arc::new(McpServer {
                id: "files".into(),
                upstream: Upstream::Url("http://127.0.0.1:1/mcp".into()),
                env: BTreeMap::new(),
                headers: BTreeMap::new(),
                timeout_seconds: 30,
                approval_wait_seconds: 0,
                annotations: Annotations::Trust,
                tools: BTreeMap::new(),
            }),
            tool: "write_file".into(),
            decided_as,
            revision: "rev".into(),
        }
    }

    fn mapped() -> DecidedAs {
        let t = |text: &str| Template::parse(text).unwrap_or_else(|e| unreachable!("{e}"));
        DecidedAs::Mapped(ToolMapping {
            action: "fs:write".into(),
            resource: ResourceTemplate {
                kind: t("file"),
                namespace: t("runbooks"),
                name: t("{path}"),
            },
        })
    }

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            _ => JsonObject::new(),
        }
    }

    #[test]
    fn arguments_and_meta_make_the_request() {
        let request = decision_request(
            "bot",
            &route(mapped()),
            &object(json!({ "path": "/srv/a.md", "content": "x" })),
            &object(json!({
                "clearance/plan_id": "plan-1",
                "clearance/confidence": 0.9,
                "clearance/snapshot": { "version": "42", "observed_at": "2026-11-21T10:00:00Z" },
                "progressToken": 7
            })),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(request.action, "fs:write");
        assert_eq!(request.resource.name, "/srv/a.md");
        assert_eq!(request.resource.namespace, "runbooks");
        assert_eq!(request.plan_id.as_deref(), Some("plan-1"));
        assert_eq!(request.snapshot.map(|s| s.version).as_deref(), Some("42"));
        assert!(request.confidence.is_some());
    }

    #[test]
    fn the_call_is_shown_as_the_digest_binds_it_up_to_the_limit() {
        let arguments = object(json!({
            "path": "/srv/a.md", "content": "x", "mode": 420,
            "weights": [0.1, 1.234567890123457, 1e-7, 1.7976931348623157e308, 5e-324, 2.5e-300]
        }));
        let request = decision_request("bot", &route(mapped()), &arguments, &JsonObject::new())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            request.arguments,
            Some(json!({ "arguments": arguments, "server": "files", "tool": "write_file" }))
        );
        assert_eq!(request.check_arguments(), Ok(()));

        let other = object(json!({ "path": "/srv/a.md", "content": "y", "mode": 420 }));
        let differs = decision_request("bot", &route(mapped()), &other, &JsonObject::new())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_ne!(differs.arguments_digest, request.arguments_digest);

        let whole_file = "x".repeat(ARGUMENTS_MAX_BYTES);
        let large = object(json!({ "path": "/srv/a.md", "content": whole_file }));
        let request = decision_request("bot", &route(mapped()), &large, &JsonObject::new())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            request.arguments, None,
            "beyond the limit: the digest alone"
        );
        assert!(request.arguments_digest.is_some());
        assert_eq!(request.check_arguments(), Ok(()));
    }

    #[test]
    fn a_missing_argument_or_malformed_meta_is_refused_naming_it() {
        let missing = decision_request(
            "bot",
            &route(mapped()),
            &JsonObject::new(),
            &JsonObject::new(),
        );
        let message = missing.map(|_| ()).unwrap_err().message;
        assert!(message.contains("`path`"), "{message}");
        assert!(
            message.contains("mcp_servers.files.tools.write_file.resource.name"),
            "{message}"
        );
        for (key, value) in [
            ("clearance/confidence", json!(1.5)),
            ("clearance/confidence", json!("high")),
            ("clearance/plan_id", json!(7)),
            ("clearance/snapshot", json!(["42", "2026-11-21T10:00:00Z"])),
        ] {
            let meta = object(json!({ key: value }));
            let refused = decision_request(
                "bot",
                &route(mapped()),
                &object(json!({ "path": "a" })),
                &meta,
            );
            let message = refused.map(|_| ()).unwrap_err().message;
            assert!(message.contains(key), "{key}: {message}");
        }
    }

    #[test]
    fn a_request_larger_than_the_http_api_takes_is_refused_naming_its_largest_field() {
        let long = "x".repeat(MAX_BODY_BYTES);
        for (arguments, meta, named) in [
            (json!({ "path": long }), json!({}), "the resource's name"),
            (
                json!({ "path": "a" }),
                json!({ "clearance/rationale": long }),
                "_meta `clearance/rationale`",
            ),
            (
                json!({ "path": "a" }),
                json!({ "clearance/snapshot": { "version": long, "observed_at": "2026-11-21T10:00:00Z" } }),
                "_meta `clearance/snapshot`",
            ),
        ] {
            let refused =
                decision_request("bot", &route(mapped()), &object(arguments), &object(meta));
            let message = refused.map(|_| ()).unwrap_err().message;
            assert!(message.starts_with(named), "{message}");
        }
        // Up to the limit, fields together: made.
        let half = "x".repeat(MAX_BODY_BYTES / 2 - 8);
        let made = decision_request(
            "bot",
            &route(mapped()),
            &object(json!({ "path": half })),
            &object(json!({ "clearance/rationale": half })),
        );
        assert!(made.is_ok());
        // The arguments are bound by their digest, whatever their size.
        let whole_file = "x".repeat(4 * MAX_BODY_BYTES);
        let large = object(json!({ "path": "a", "content": whole_file }));
        assert!(decision_request("bot", &route(mapped()), &large, &JsonObject::new()).is_ok());
    }

    #[test]
    fn a_nul_anywhere_in_a_call_is_refused() {
        for (arguments, meta) in [
            (json!({ "path": "a\u{0}b" }), json!({})),
            (
                json!({ "path": "a", "lines": [{ "x": "\u{0}" }] }),
                json!({}),
            ),
            (
                json!({ "path": "a" }),
                json!({ "clearance/rationale": "\u{0}" }),
            ),
        ] {
            let refused =
                decision_request("bot", &route(mapped()), &object(arguments), &object(meta));
            let message = refused.map(|_| ()).unwrap_err().message;
            assert!(message.contains("NUL"), "{message}");
        }
    }

    #[test]
    fn trusted_read_only_tools_are_reads_of_the_servers_read_only_action() {
        let request = decision_request(
            "bot",
            &route(DecidedAs::ReadOnly),
            &JsonObject::new(),
            &JsonObject::new(),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(request.action, "files:read-only");
        assert_eq!(request.resource.kind, READ_ONLY_KIND);
        assert_eq!(request.resource.namespace, "files");
        assert_eq!(request.resource.name, "write_file");
    }
}
