//! The fast path is Cedar: on generated bundles and requests, `authorize`
//! (core types, only the policies that can apply) gives what a plain
//! `Authorizer::is_authorized` gives over the whole policy set with the
//! request and entities built through the public API — the same decision,
//! the same determining policies, the same errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid, Request,
    RestrictedExpression,
};
use proptest::{prelude::*, sample::select};

use super::ScopeQuery;
use crate::{
    Bundle, BundleSource, Confidence, DecisionRequest, Impact, Level, Phase, Resource, SourceFile,
};

const AGENTS: [&str; 3] = ["a0", "a1", "a2"];
const ACTIONS: [(&str, Impact); 6] = [
    ("t0:read", Impact::Read),
    ("t0:low", Impact::Low),
    ("t0:high", Impact::High),
    ("t1:read", Impact::Read),
    ("t1:medium", Impact::Medium),
    ("t1:critical", Impact::Critical),
];
const NAMESPACES: [&str; 4] = ["ns0", "ns1", "ns2", "kube-system"];

const CONFIG: &str = r#"
policy_owner: platform@example.com
agents:
  a0: { owner: o0@example.com, phase: shadow, credential_scope: k8s:sa/a0, domains: [ns0] }
  a1: { owner: o1@example.com, phase: assist, credential_scope: k8s:sa/a1, domains: [ns1, ns2] }
  a2: { owner: o1@example.com, phase: autonomous, credential_scope: k8s:sa/a2, domains: [] }
tools:
  t0:
    read: { impact: read }
    low:  { impact: low }
    high: { impact: high, rollback: undo }
  t1:
    read:     { impact: read }
    medium:   { impact: medium }
    critical: { impact: critical, rollback: undo }
rollbacks:
  undo: { description: undo it, cost: "< 1 min" }
"#;

fn principal() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("principal".to_owned()),
        1 => select(AGENTS.to_vec()).prop_map(|a| format!("principal == Agent::\"{a}\"")),
        1 => select(AGENTS.to_vec()).prop_map(|a| format!("principal in Agent::\"{a}\"")),
        1 => select(AGENTS.to_vec()).prop_map(|a| format!("principal is Agent in Agent::\"{a}\"")),
        1 => Just("principal is Agent".to_owned()),
    ]
}

fn action() -> impl Strategy<Value = String> {
    let action = select(ACTIONS.map(|(name, _)| name).to_vec());
    let group = select(vec![
        "impact:read",
        "impact:low",
        "impact:medium",
        "impact:high",
        "impact:critical",
        "tool:t0",
        "tool:t1",
    ]);
    prop_oneof![
        3 => Just("action".to_owned()),
        2 => action.clone().prop_map(|a| format!("action == Action::\"{a}\"")),
        2 => group.clone().prop_map(|g| format!("action in Action::\"{g}\"")),
        1 => (action, group).prop_map(|(a, g)| format!("action in [Action::\"{a}\", Action::\"{g}\"]")),
    ]
}

/// Conditions over everything a policy can read, including one that fails
/// at run time (an overflow for phases above 1).
fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal.domains.contains(resource.namespace)".to_owned()),
        (0i64..=4).prop_map(|n| format!("context.impact_rank >= {n}")),
        (1i64..=4).prop_map(|n| format!("principal.phase == {n}")),
        (1i64..=4).prop_map(|n| format!("context.phase > {n}")),
        (0i64..=1000).prop_map(|n| format!(
            "context has confidence_permille && context.confidence_permille >= {n}"
        )),
        select(vec!["observe", "recommend", "simulate", "execute"])
            .prop_map(|l| format!("context.level == \"{l}\"")),
        select(vec!["read", "high", "critical"]).prop_map(|i| format!("context.impact == \"{i}\"")),
        Just("resource.kind == \"deployment\"".to_owned()),
        Just("resource.name like \"api*\"".to_owned()),
        Just("[\"kube-system\"].contains(resource.namespace)".to_owned()),
        Just("principal.owner == \"o1@example.com\"".to_owned()),
        Just("principal.phase * 9223372036854775807 > 0".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        principal(),
        action(),
        prop_oneof![3 => Just("resource"), 1 => Just("resource is Resource")],
        proptest::collection::vec(condition(), 0..=2),
        proptest::option::of(condition()),
    )
        .prop_map(|(permit, principal, action, resource, when, unless)| {
            let mut text = format!(
                "{} ({principal}, {action}, {resource})",
                if permit { "permit" } else { "forbid" }
            );
            if !when.is_empty() {
                text.push_str(&format!(" when {{ {} }}", when.join(" && ")));
            }
            if let Some(unless) = unless {
                text.push_str(&format!(" unless {{ {unless} }}"));
            }
            text.push(';');
            text
        })
}

fn bundle(policies: &[String]) -> Bundle {
    let text: String = policies
        .iter()
        .enumerate()
        .map(|(n, policy)| format!("@id(\"p{n}\")\n{policy}\n"))
        .collect();
    Bundle::compile(&BundleSource {
        config: SourceFile {
            path: "clearance.yaml".into(),
            text: CONFIG.into(),
        },
        policies: vec![SourceFile {
            path: "policies/generated.cedar".into(),
            text,
        }],
        revision: Some("generated".into()),
    })
    .unwrap_or_else(|errors| panic!("generated policies must validate: {errors}\n{policies:#?}"))
}

#[derive(Debug, Clone)]
struct Asked {
    agent: &'static str,
    action: (&'static str, Impact),
    namespace: &'static str,
    name: &'static str,
    kind: &'static str,
    phase: Phase,
    level: Level,
    confidence: Option<f64>,
}

fn asked() -> impl Strategy<Value = Asked> {
    (
        select(AGENTS.to_vec()),
        select(ACTIONS.to_vec()),
        select(NAMESPACES.to_vec()),
        select(vec!["api-gateway", "web"]),
        select(vec!["deployment", "pod"]),
        select(Phase::ALL.to_vec()),
        select(vec![
            Level::Observe,
            Level::Recommend,
            Level::Simulate,
            Level::Execute,
        ]),
        proptest::option::of(0.0f64..=1.0),
    )
        .prop_map(
            |(agent, action, namespace, name, kind, phase, level, confidence)| Asked {
                agent,
                action,
                namespace,
                name,
                kind,
                phase,
                level,
                confidence,
            },
        )
}

/// What a plain `is_authorized` says, everything built the public way.
fn plain_cedar(
    bundle: &Bundle,
    asked: &Asked,
    request: &DecisionRequest,
) -> (bool, Vec<String>, Vec<String>) {
    let uid = |text: String| -> EntityUid { text.parse().unwrap() };
    let agent_config = bundle.agent(asked.agent).unwrap();
    let agent = Entity::new(
        uid(format!("Agent::\"{}\"", asked.agent)),
        HashMap::from([
            (
                "phase".to_owned(),
                RestrictedExpression::new_long(asked.phase.number().into()),
            ),
            (
                "owner".to_owned(),
                RestrictedExpression::new_string(agent_config.owner.clone()),
            ),
            (
                "domains".to_owned(),
                RestrictedExpression::new_set(
                    agent_config
                        .domains
                        .iter()
                        .map(|d| RestrictedExpression::new_string(d.clone())),
                ),
            ),
            (
                "credential_scope".to_owned(),
                RestrictedExpression::new_string(agent_config.credential_scope.clone()),
            ),
        ]),
        HashSet::new(),
    )
    .unwrap();
    let (name, impact) = asked.action;
    let tool = name.split(':').next().unwrap();
    let action = Entity::new_no_attrs(
        uid(format!("Action::\"{name}\"")),
        HashSet::from([
            uid(format!("Action::\"impact:{impact}\"")),
            uid(format!("Action::\"tool:{tool}\"")),
        ]),
    );
    let resource = Entity::new(
        uid(format!(
            "Resource::\"{}/{}/{}\"",
            asked.kind, asked.namespace, asked.name
        )),
        HashMap::from([
            (
                "kind".to_owned(),
                RestrictedExpression::new_string(asked.kind.into()),
            ),
            (
                "namespace".to_owned(),
                RestrictedExpression::new_string(asked.namespace.into()),
            ),
            (
                "name".to_owned(),
                RestrictedExpression::new_string(asked.name.into()),
            ),
        ]),
        HashSet::new(),
    )
    .unwrap();
    let mut context = vec![
        (
            "phase".to_owned(),
            RestrictedExpression::new_long(asked.phase.number().into()),
        ),
        (
            "impact".to_owned(),
            RestrictedExpression::new_string(impact.name().into()),
        ),
        (
            "impact_rank".to_owned(),
            RestrictedExpression::new_long(impact.rank()),
        ),
        (
            "level".to_owned(),
            RestrictedExpression::new_string(asked.level.name().into()),
        ),
    ];
    if let Some(confidence) = request.confidence {
        context.push((
            "confidence_permille".to_owned(),
            RestrictedExpression::new_long(confidence.permille()),
        ));
    }
    let request = Request::new(
        agent.uid(),
        action.uid(),
        resource.uid(),
        Context::from_pairs(context).unwrap(),
        None,
    )
    .unwrap();
    let entities = Entities::from_entities([agent, action, resource], None).unwrap();
    let response = Authorizer::new().is_authorized(&request, bundle.scope().policies(), &entities);
    let mut reasons: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|id| id.to_string())
        .collect();
    reasons.sort();
    let mut errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(|e| e.to_string())
        .collect();
    errors.sort();
    (response.decision() == CedarDecision::Allow, reasons, errors)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_indexed_evaluation_is_plain_cedar(
        policies in proptest::collection::vec(policy(), 0..8),
        requests in proptest::collection::vec(asked(), 1..12),
    ) {
        let bundle = bundle(&policies);
        for asked in &requests {
            let request = DecisionRequest {
                agent: asked.agent.into(),
                action: asked.action.0.into(),
                resource: Resource {
                    kind: asked.kind.into(),
                    namespace: asked.namespace.into(),
                    name: asked.name.into(),
                },
                level: Some(asked.level),
                plan_id: None,
                snapshot: None,
                confidence: asked.confidence.and_then(Confidence::new),
                rationale: None,
                approval_id: None,
                arguments_digest: None,
                arguments: None,
            };
            let fast = bundle.scope().authorize(&ScopeQuery {
                agent: &bundle.agent(asked.agent).unwrap().cedar,
                action: &bundle.action(asked.action.0).unwrap().cedar,
                request: &request,
                phase: asked.phase,
                impact: asked.action.1,
                level: asked.level,
            });
            let (allowed, reasons, errors) = plain_cedar(&bundle, asked, &request);
            let mut fast_reasons = fast.policy_ids.clone();
            fast_reasons.sort();
            let mut fast_errors = fast.errors.clone();
            fast_errors.sort();
            prop_assert_eq!(&fast_reasons, &reasons, "policies {:#?}\nrequest {:?}", policies, asked);
            prop_assert_eq!(&fast_errors, &errors, "policies {:#?}\nrequest {:?}", policies, asked);
            prop_assert_eq!(fast.permitted, allowed && errors.is_empty());
        }
    }
}

/// The generators reach every answer: permitted, not permitted with no
/// policy, forbidden by a policy, and errors.
#[test]
fn the_generators_reach_every_answer() {
    let bundle = bundle(&[
        "permit (principal, action, resource) when { principal.domains.contains(resource.namespace) };".into(),
        "forbid (principal, action in Action::\"impact:critical\", resource);".into(),
        "permit (principal == Agent::\"a2\", action, resource) when { principal.phase * 9223372036854775807 > 0 };".into(),
    ]);
    let ask = |agent: &'static str, action: (&'static str, Impact), namespace: &'static str| {
        let request = DecisionRequest {
            agent: agent.into(),
            action: action.0.into(),
            resource: Resource {
                kind: "deployment".into(),
                namespace: namespace.into(),
                name: "web".into(),
            },
            level: Some(Level::Execute),
            plan_id: None,
            snapshot: None,
            confidence: None,
            rationale: None,
            approval_id: None,
            arguments_digest: None,
            arguments: None,
        };
        bundle.scope().authorize(&ScopeQuery {
            agent: &bundle.agent(agent).unwrap().cedar,
            action: &bundle.action(action.0).unwrap().cedar,
            request: &request,
            phase: Phase::Autonomous,
            impact: action.1,
            level: Level::Execute,
        })
    };
    let permitted = ask("a0", ACTIONS[1], "ns0");
    assert!(permitted.permitted && permitted.policy_ids == ["p0"] && permitted.errors.is_empty());
    let nothing = ask("a0", ACTIONS[1], "ns1");
    assert!(!nothing.permitted && nothing.policy_ids.is_empty() && nothing.errors.is_empty());
    let forbidden = ask("a1", ACTIONS[5], "ns1");
    assert!(!forbidden.permitted && forbidden.policy_ids == ["p1"]);
    let error = ask("a2", ACTIONS[1], "ns0");
    assert!(!error.permitted && error.errors.len() == 1, "{error:?}");
    assert!(error.errors[0].contains("p2"), "{error:?}");
}
