//! `approvals.rules` and `approvals.barred`: how many distinct operators a
//! pending request needs, which rule decided it, and who may not sign.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::{
    DecisionRequest, Impact, Resource,
    bundle::approvals::{ApproverCheck, Requirement},
    facts::{KillScope, KillSwitch},
};
use common::{CONFIG, POLICY, bundle_with};

const RULES: &str = r#"
approvals:
  expire_after: 15m
  rules:
    - { match: { impact: critical }, approvers: 2 }
    - { id: payments-high, match: { namespace: payments, impact: high }, approvers: 3 }
    - { match: { action: "tool:medium", kind: deployment }, approvers: 1 }
  barred: [agent_owner, kill_switch_tripper]
"#;

fn policy_bundle() -> clearance_engine::Bundle {
    bundle_with(
        &format!("{CONFIG}{RULES}"),
        &[("policies/scope.cedar", POLICY)],
    )
    .unwrap()
}

fn request(action: &str, namespace: &str) -> DecisionRequest {
    DecisionRequest {
        agent: "bot".into(),
        action: action.into(),
        resource: Resource {
            kind: "deployment".into(),
            namespace: namespace.into(),
            name: "api".into(),
        },
        level: None,
        plan_id: None,
        snapshot: None,
        confidence: None,
        rationale: None,
        approval_id: None,
        arguments_digest: None,
        arguments: None,
    }
}

fn required(rule: Option<&str>, approvers: u32) -> Requirement {
    Requirement {
        rule: rule.map(Into::into),
        approvers,
    }
}

#[test]
fn the_strictest_matching_rule_applies_whatever_the_order() {
    let bundle = policy_bundle();
    let policy = bundle.approval_policy();
    // Critical in payments: both the first and the second rule match; the
    // second asks more.
    assert_eq!(
        policy.requirement(&request("tool:critical", "payments"), Impact::Critical),
        required(Some("payments-high"), 3)
    );
    // `impact: high` counts high and above, as hard stops do.
    assert_eq!(
        policy.requirement(&request("tool:high", "payments"), Impact::High),
        required(Some("payments-high"), 3)
    );
    assert_eq!(
        policy.requirement(&request("tool:critical", "shop"), Impact::Critical),
        required(Some("rules[0]"), 2)
    );
    assert_eq!(
        policy.requirement(&request("tool:high", "shop"), Impact::High),
        required(None, 1)
    );
    assert_eq!(
        policy.requirement(&request("tool:medium", "shop"), Impact::Medium),
        required(Some("rules[2]"), 1)
    );
}

#[test]
fn without_rules_one_operator_approves() {
    let bundle = bundle_with(CONFIG, &[("policies/scope.cedar", POLICY)]).unwrap();
    let policy = bundle.approval_policy();
    assert!(policy.rules.is_empty() && policy.barred.is_empty());
    assert_eq!(
        policy.requirement(&request("tool:critical", "payments"), Impact::Critical),
        required(None, 1)
    );
}

#[test]
fn the_owner_and_the_tripper_of_a_covering_switch_are_barred() {
    let bundle = policy_bundle();
    let policy = bundle.approval_policy();
    let asked = request("tool:high", "payments");
    let agent_switch = KillSwitch {
        id: Some("ks_1".into()),
        scope: KillScope::Agent,
        target: Some("bot".into()),
        reason: None,
    };
    let other_switch = KillSwitch {
        id: Some("ks_2".into()),
        scope: KillScope::Agent,
        target: Some("other-bot".into()),
        reason: None,
    };
    let trips = [(&agent_switch, "alice"), (&other_switch, "bob")];
    let check = |operator| {
        policy.barred(&ApproverCheck {
            operator,
            agent_owner: "oncall@example.com",
            request: &asked,
            trips: &trips,
        })
    };
    assert!(check("oncall@example.com").unwrap().contains("agent_owner"));
    assert!(check("alice").unwrap().contains("ks_1"));
    // Bob's switch covers another agent.
    assert_eq!(check("bob"), None);
    assert_eq!(check("carol"), None);
}

#[test]
fn nobody_is_barred_unless_the_bundle_says_so() {
    let bundle = bundle_with(CONFIG, &[("policies/scope.cedar", POLICY)]).unwrap();
    let asked = request("tool:high", "payments");
    let barred = bundle.approval_policy().barred(&ApproverCheck {
        operator: "oncall@example.com",
        agent_owner: "oncall@example.com",
        request: &asked,
        trips: &[],
    });
    assert_eq!(barred, None);
}

#[test]
fn misconfigured_rules_are_refused_each_located() {
    let config = format!(
        "{CONFIG}approvals:
  rules:
    - {{ match: {{ impact: high }}, approvers: 0 }}
    - {{ match: {{ agent: ghost, action: \"tool:fly\", tool: nope }}, approvers: 2 }}
    - {{ id: \"bad id\", approvers: 2 }}
    - {{ id: twice, approvers: 2 }}
    - {{ id: twice, approvers: 11 }}
    - {{ id: twice, match: {{ namespace: \"\" }}, approvers: 2 }}
    - {{ id: again, approvers: 2 }}
    - {{ id: again, approvers: 3 }}
  barred: [agent_owner, nobody, agent_owner]
"
    );
    let errors = bundle_with(&config, &[("policies/scope.cedar", POLICY)])
        .expect_err("the bundle must be refused");
    insta::assert_snapshot!(errors.to_string());
}

#[test]
fn an_unknown_key_in_a_rule_is_an_error() {
    let config = format!(
        "{CONFIG}approvals:\n  rules:\n    - {{ match: {{ namspace: payments }}, approvers: 2 }}\n"
    );
    let errors = bundle_with(&config, &[("policies/scope.cedar", POLICY)])
        .expect_err("the bundle must be refused");
    assert!(errors.to_string().contains("namspace"), "{errors}");
}
