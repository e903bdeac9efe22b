//! The Cedar schema clearance owns, generated from the tool inventory so
//! that a policy naming an action the inventory lacks fails validation.
//!
//! It is built in Cedar's JSON schema format rather than its human syntax:
//! the same schema, without the human syntax's parser, which cost half of
//! a large bundle's schema build (a lexer per identifier).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::vocabulary::Impact;

/// The schema, in Cedar's JSON schema format, for these `(tool, verb,
/// impact)` actions; `Err` with the name when an action is named like an
/// action group (`impact:read`, `tool:<tool>`) or like another action.
///
/// Cedar's human syntax refused such a schema as a duplicate declaration;
/// in a JSON map the second would silently replace the first, and a policy
/// on the group would then cover the action too. Tool and verb names are
/// checked to be plain identifiers before they get here.
pub fn schema_json<'a>(
    actions: impl IntoIterator<Item = (&'a str, &'a str, Impact)>,
) -> Result<Value, String> {
    let string = || json!({ "type": "String" });
    let long = || json!({ "type": "Long" });
    let mut groups: BTreeSet<String> = Impact::ALL
        .iter()
        .map(|impact| format!("impact:{impact}"))
        .collect();
    let mut declared = Map::new();
    for (tool, verb, impact) in actions {
        groups.insert(format!("tool:{tool}"));
        let name = format!("{tool}:{verb}");
        if declared.contains_key(&name) {
            return Err(name);
        }
        declared.insert(
            name,
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
    for group in groups {
        if declared.contains_key(&group) {
            return Err(group);
        }
        declared.insert(group, json!({}));
    }
    Ok(json!({ "": {
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
    } }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use cedar_policy::{EntityUid, Schema};

    use super::schema_json;
    use crate::vocabulary::Impact;

    /// The schema as Cedar's human syntax wrote it before the JSON form.
    const AS_TEXT: &str = r#"
entity Agent = { phase: Long, owner: String, domains: Set<String>, credential_scope: String };
entity Resource = { kind: String, namespace: String, name: String };
type RequestContext = { phase: Long, impact: String, impact_rank: Long, level: String, confidence_permille?: Long };
action "impact:read"; action "impact:low"; action "impact:medium"; action "impact:high"; action "impact:critical";
action "tool:kubectl"; action "tool:fs";
action "kubectl:get" in ["impact:read", "tool:kubectl"] appliesTo { principal: [Agent], resource: [Resource], context: RequestContext };
action "kubectl:delete" in ["impact:critical", "tool:kubectl"] appliesTo { principal: [Agent], resource: [Resource], context: RequestContext };
action "fs:write" in ["impact:medium", "tool:fs"] appliesTo { principal: [Agent], resource: [Resource], context: RequestContext };
"#;

    fn sorted(uids: impl Iterator<Item = EntityUid>) -> Vec<String> {
        let mut all: Vec<String> = uids.map(|u| u.to_string()).collect();
        all.sort();
        all
    }

    fn types<'a>(
        names: Option<impl Iterator<Item = &'a cedar_policy::EntityTypeName>>,
    ) -> Vec<String> {
        let mut all: Vec<String> = names
            .into_iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        all.sort();
        all
    }

    #[test]
    fn the_json_schema_is_the_one_the_human_syntax_wrote() {
        let (text, _) = Schema::from_cedarschema_str(AS_TEXT).unwrap();
        let json = Schema::from_json_value(
            schema_json([
                ("kubectl", "get", Impact::Read),
                ("kubectl", "delete", Impact::Critical),
                ("fs", "write", Impact::Medium),
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            sorted(json.actions().cloned()),
            sorted(text.actions().cloned())
        );
        assert_eq!(
            sorted(json.action_groups().cloned()),
            sorted(text.action_groups().cloned())
        );
        let entities = |s: &Schema| {
            let mut all: Vec<(String, Vec<String>)> = s
                .action_entities()
                .unwrap()
                .iter()
                .map(|e| {
                    let (uid, _, ancestors) = e.clone().into_inner();
                    (uid.to_string(), sorted(ancestors.into_iter()))
                })
                .collect();
            all.sort();
            all
        };
        assert_eq!(entities(&json), entities(&text), "actions and their groups");
        for action in text.actions() {
            assert_eq!(
                types(json.principals_for_action(action)),
                types(text.principals_for_action(action))
            );
            assert_eq!(
                types(json.resources_for_action(action)),
                types(text.resources_for_action(action))
            );
        }
        // Every attribute with its type, and the optional one as optional:
        // a policy that uses them validates, or fails, the same under both.
        let valid = "permit (principal, action, resource) when { principal.phase > 1 && principal.owner == \"o\" && principal.domains.contains(\"d\") && principal.credential_scope == \"s\" && resource.kind == \"k\" && resource.namespace == \"n\" && resource.name == \"m\" && context.phase > 0 && context.impact == \"read\" && context.impact_rank > 0 && context.level == \"observe\" && (context has confidence_permille && context.confidence_permille > 5) };";
        let wrong_type = "permit (principal, action, resource) when { principal.phase == \"4\" };";
        let unguarded =
            "permit (principal, action, resource) when { context.confidence_permille > 5 };";
        for (policy, passes) in [(valid, true), (wrong_type, false), (unguarded, false)] {
            for schema in [&text, &json] {
                let policies: cedar_policy::PolicySet = policy.parse().unwrap();
                let answer = cedar_policy::Validator::new(schema.clone())
                    .validate(&policies, cedar_policy::ValidationMode::Strict);
                assert_eq!(answer.validation_passed(), passes, "{policy}");
            }
        }
    }

    #[test]
    fn an_action_named_like_a_group_is_refused() {
        assert_eq!(
            schema_json([("impact", "read", Impact::Read)]).unwrap_err(),
            "impact:read"
        );
        assert_eq!(
            schema_json([("tool", "fs", Impact::Low), ("fs", "write", Impact::Medium)])
                .unwrap_err(),
            "tool:fs"
        );
        assert!(schema_json([("impact", "look", Impact::Read)]).is_ok());
    }
}
