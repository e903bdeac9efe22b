//! The Cedar schema clearance owns, generated from the tool inventory so
//! that a policy naming an action the inventory lacks fails validation.
//!
//! It is built in Cedar's JSON schema format rather than its human syntax:
//! the same schema, without the human syntax's parser, which cost half of
//! a large bundle's schema build (a lexer per identifier).

use serde_json::{Map, Value, json};

use crate::vocabulary::Impact;

/// The schema, in Cedar's JSON schema format, for these `(tool, verb,
/// impact)` actions.
///
/// Tool and verb names are checked to be plain identifiers before they get
/// here; in JSON they would need no escaping anyway.
pub fn schema_json<'a>(actions: impl IntoIterator<Item = (&'a str, &'a str, Impact)>) -> Value {
    let string = || json!({ "type": "String" });
    let long = || json!({ "type": "Long" });
    let mut declared = Map::new();
    for impact in Impact::ALL {
        declared.insert(format!("impact:{impact}"), json!({}));
    }
    for (tool, verb, impact) in actions {
        declared
            .entry(format!("tool:{tool}"))
            .or_insert_with(|| json!({}));
        declared.insert(
            format!("{tool}:{verb}"),
            json!({
                "memberOf": [{ "id": format!("impact:{impact}") }, { "id": format!("tool:{tool}") }],
                "appliesTo": {
                    "principalTypes": ["Agent"],
                    "resourceTypes": ["Resource"],
                    "context": { "type": "RequestContext" },
                },
            }),
        );
    }
    json!({ "": {
        "commonTypes": {
            "RequestContext": { "type": "Record", "attributes": {
                "phase": long(),
                "impact": string(),
                "impact_rank": long(),
                "level": string(),
                "confidence_permille": { "type": "Long", "required": false },
            } },
        },
        "entityTypes": {
            "Agent": { "shape": { "type": "Record", "attributes": {
                "phase": long(),
                "owner": string(),
                "domains": { "type": "Set", "element": string() },
                "credential_scope": string(),
            } } },
            "Resource": { "shape": { "type": "Record", "attributes": {
                "kind": string(),
                "namespace": string(),
                "name": string(),
            } } },
        },
        "actions": declared,
    } })
}
