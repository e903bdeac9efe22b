//! Approval binding (this exact request, unexpired, unused), kill switches,
//! hard stops, levels, and the requests the engine must refuse outright.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::{
    Impact, Level, Outcome, Phase, RequestHash,
    facts::{Approval, ApprovalStatus, Execution, Identity, KillScope, KillSwitch},
};
use common::{at, bundle, facts, request};

fn approval_for(req: &clearance_engine::DecisionRequest) -> Approval {
    Approval {
        id: "apr-1".into(),
        request_hash: RequestHash::of(req).to_string(),
        status: ApprovalStatus::Approved,
        approvers: vec!["alice@example.com".into()],
        expires_at: at(600),
        used: false,
        required: 1,
        snapshot_version: req.snapshot.as_ref().map(|s| s.version.clone()),
    }
}

fn claimed(impact: Impact) -> clearance_engine::DecisionRequest {
    let mut req = request(impact);
    req.approval_id = Some("apr-1".into());
    req
}

fn reason_codes(decision: &clearance_engine::Decision) -> Vec<&'static str> {
    decision.reasons.iter().map(|r| r.code).collect()
}

#[test]
fn a_bound_approval_allows_once_and_is_recorded() {
    let bundle = bundle();
    for impact in [Impact::Medium, Impact::High] {
        let req = claimed(impact);
        let mut f = facts(Phase::Remediate);
        f.approval = Some(approval_for(&req));
        let decision = bundle.decide(&req, &f);
        assert_eq!(
            decision.outcome,
            Outcome::Allow,
            "{impact}: {:?}",
            decision.reasons
        );
        assert_eq!(decision.approval_id.as_deref(), Some("apr-1"));
        assert_eq!(decision.approval_chain, ["alice@example.com"]);
    }
}

#[test]
fn an_approval_for_a_different_request_does_not_count() {
    let bundle = bundle();
    let req = claimed(Impact::High);
    let approval = approval_for(&req);
    let changes: [fn(&mut clearance_engine::DecisionRequest); 5] = [
        |r| r.resource.name = "other".into(),
        |r| r.action = "tool:critical".into(),
        |r| r.plan_id = Some("plan-2".into()),
        |r| r.snapshot.as_mut().unwrap().version = "v2".into(),
        |r| r.resource.kind = "statefulset".into(),
    ];
    for change in changes {
        let mut mismatched = req.clone();
        change(&mut mismatched);
        let mut f = facts(Phase::Remediate);
        f.approval = Some(approval.clone());
        f.simulations[0].plan_id = mismatched.plan_id.clone().unwrap();
        let decision = bundle.decide(&mismatched, &f);
        assert_eq!(decision.outcome, Outcome::Deny, "{:?}", decision.reasons);
        // Only the snapshot version differs: the state drifted.
        let drifted = mismatched.snapshot != req.snapshot;
        let expected = if drifted {
            "approval_drifted"
        } else {
            "approval_invalid"
        };
        assert!(
            reason_codes(&decision).contains(&expected),
            "{:?}",
            decision.reasons
        );
        assert_eq!(approval.drifted_from(&mismatched), drifted);
        assert!(decision.approval_id.is_none());
    }
}

#[test]
fn a_repeat_on_another_snapshot_version_is_drift_and_nothing_else_is() {
    let req = claimed(Impact::High);
    let approval = approval_for(&req);
    assert!(!approval.drifted_from(&req), "the approved request itself");
    let mut moved = req.clone();
    moved.snapshot.as_mut().unwrap().version = "v9".into();
    assert!(approval.drifted_from(&moved));
    // Another version *and* another resource is another request, not drift.
    moved.resource.name = "other".into();
    assert!(!approval.drifted_from(&moved));
    // A repeat without a snapshot has no version to drift from.
    let mut bare = req.clone();
    bare.snapshot = None;
    assert!(!approval.drifted_from(&bare));
    // An approval given without a snapshot cannot drift.
    let unversioned = Approval {
        snapshot_version: None,
        ..approval
    };
    let mut moved = req.clone();
    moved.snapshot.as_mut().unwrap().version = "v9".into();
    assert!(!unversioned.drifted_from(&moved));
}

#[test]
fn an_approval_counts_only_with_as_many_approvers_as_it_requires() {
    let bundle = bundle();
    let req = claimed(Impact::High);
    let mut f = facts(Phase::Remediate);
    f.approval = Some(Approval {
        required: 2,
        ..approval_for(&req)
    });
    let decision = bundle.decide(&req, &f);
    assert_eq!(decision.outcome, Outcome::Deny, "{:?}", decision.reasons);
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| r.code == "approval_invalid" && r.message.contains("1 of the 2 approvals")),
        "{:?}",
        decision.reasons
    );
    f.approval = Some(Approval {
        required: 2,
        approvers: vec!["alice@example.com".into(), "bob@example.com".into()],
        ..approval_for(&req)
    });
    let decision = bundle.decide(&req, &f);
    assert_eq!(decision.outcome, Outcome::Allow, "{:?}", decision.reasons);
    assert_eq!(
        decision.approval_chain,
        ["alice@example.com", "bob@example.com"]
    );
}

#[test]
fn expired_used_unapproved_or_unknown_approvals_do_not_count() {
    let bundle = bundle();
    let req = claimed(Impact::High);
    type Spoil = fn(&mut Approval);
    let variants: [(&str, Spoil); 7] = [
        ("expired", |a| a.expires_at = at(-1)),
        ("expires now", |a| a.expires_at = at(0)),
        ("used", |a| a.used = true),
        ("pending", |a| a.status = ApprovalStatus::Pending),
        ("denied", |a| a.status = ApprovalStatus::Denied),
        ("voided", |a| a.status = ApprovalStatus::Voided),
        ("other id", |a| a.id = "apr-2".into()),
    ];
    for (what, change) in variants {
        let mut approval = approval_for(&req);
        change(&mut approval);
        let mut f = facts(Phase::Remediate);
        f.approval = Some(approval);
        let decision = bundle.decide(&req, &f);
        assert_eq!(decision.outcome, Outcome::Deny, "{what}");
        assert_eq!(reason_codes(&decision), ["approval_invalid"], "{what}");
    }
    let mut f = facts(Phase::Remediate);
    f.approval = None;
    assert_eq!(
        bundle.decide(&req, &f).outcome,
        Outcome::Deny,
        "claimed but not stored"
    );
}

#[test]
fn an_approval_does_not_excuse_missing_evidence() {
    let bundle = bundle();
    let req = claimed(Impact::High);
    let mut f = facts(Phase::Remediate);
    f.approval = Some(approval_for(&req));
    f.rollback_tests.clear();
    let decision = bundle.decide(&req, &f);
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(reason_codes(&decision), ["missing_evidence"]);
}

#[test]
fn kill_switches_deny_what_they_cover_and_nothing_else() {
    let bundle = bundle();
    let cases = [
        (KillScope::Global, None, true),
        (KillScope::Agent, Some("bot"), true),
        (KillScope::Agent, Some("other-bot"), false),
        (KillScope::Tool, Some("tool"), true),
        (KillScope::Tool, Some("kubectl"), false),
        (KillScope::Resource, Some("deployment/inside/api"), true),
        (KillScope::Resource, Some("*/inside/*"), true),
        (KillScope::Resource, Some("*/elsewhere/*"), false),
    ];
    for (scope, target, covers) in cases {
        let mut f = facts(Phase::Autonomous);
        f.kill_switches.push(KillSwitch {
            id: Some("ks".into()),
            scope,
            target: target.map(Into::into),
            reason: Some("test".into()),
        });
        for impact in [Impact::Read, Impact::Medium, Impact::Critical] {
            let decision = bundle.decide(&request(impact), &f);
            if covers {
                assert_eq!(
                    decision.outcome,
                    Outcome::Deny,
                    "{scope:?} {target:?} {impact}"
                );
                assert_eq!(reason_codes(&decision), ["kill_switch"]);
            } else {
                assert_ne!(
                    decision.outcome,
                    Outcome::Deny,
                    "{scope:?} {target:?} {impact}"
                );
            }
        }
    }
}

#[test]
fn hard_stops_count_executions_at_or_above_their_impact_in_the_window() {
    let bundle = bundle();
    let execution = |impact, offset| Execution {
        impact,
        at: at(offset),
    };
    let mut f = facts(Phase::Autonomous);
    f.recent_executions = vec![
        execution(Impact::High, -600),
        execution(Impact::Critical, -300),
        execution(Impact::Medium, -200),
        execution(Impact::High, -3_601),
    ];
    assert_eq!(
        bundle.decide(&request(Impact::High), &f).outcome,
        Outcome::Allow,
        "2 counted of max 3"
    );
    f.recent_executions.push(execution(Impact::High, -10));
    let decision = bundle.decide(&request(Impact::Critical), &f);
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(reason_codes(&decision), ["hard_stop"]);
    assert_eq!(
        bundle.decide(&request(Impact::Medium), &f).outcome,
        Outcome::Allow,
        "medium is below the stop"
    );
    assert_eq!(
        bundle.decide(&request(Impact::Read), &f).outcome,
        Outcome::Allow,
        "reads are not executions"
    );
}

/// Regression: a concurrent request that read the clock a moment before a
/// reservation was stamped must still count it (the hard stop was exceeded
/// under load when only executions at or before `now` counted).
#[test]
fn hard_stops_count_executions_stamped_after_now() {
    let bundle = bundle();
    let mut f = facts(Phase::Autonomous);
    f.recent_executions = (0..3)
        .map(|n| Execution {
            impact: Impact::High,
            at: at(n + 1),
        })
        .collect();
    let decision = bundle.decide(&request(Impact::High), &f);
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(reason_codes(&decision), ["hard_stop"]);
}

#[test]
fn simulation_is_allowed_in_every_phase_and_recommendation_from_assist() {
    let bundle = bundle();
    for phase in Phase::ALL {
        let mut req = request(Impact::Critical);
        req.level = Some(Level::Simulate);
        assert_eq!(
            bundle.decide(&req, &facts(phase)).outcome,
            Outcome::Allow,
            "simulate in {phase}"
        );
        req.level = Some(Level::Recommend);
        let expected = if phase == Phase::Shadow {
            Outcome::Shadow
        } else {
            Outcome::Allow
        };
        assert_eq!(
            bundle.decide(&req, &facts(phase)).outcome,
            expected,
            "recommend in {phase}"
        );
    }
}

#[test]
fn observe_cannot_carry_a_write() {
    let bundle = bundle();
    let mut req = request(Impact::Critical);
    req.level = Some(Level::Observe);
    let decision = bundle.decide(&req, &facts(Phase::Autonomous));
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(reason_codes(&decision), ["level_mismatch"]);
}

#[test]
fn the_level_defaults_to_observe_for_reads_and_execute_for_writes() {
    let bundle = bundle();
    let mut read = request(Impact::Read);
    read.level = None;
    assert_eq!(
        bundle.decide(&read, &facts(Phase::Shadow)).level,
        Level::Observe
    );
    let mut write = request(Impact::Low);
    write.level = None;
    let decision = bundle.decide(&write, &facts(Phase::Shadow));
    assert_eq!(
        (decision.level, decision.outcome),
        (Level::Execute, Outcome::Shadow)
    );
}

#[test]
fn unknown_agents_actions_impersonation_and_a_missing_clock_are_denied() {
    let bundle = bundle();
    let mut unknown_agent = request(Impact::Read);
    unknown_agent.agent = "ghost".into();
    let decision = bundle.decide(&unknown_agent, &facts(Phase::Autonomous));
    assert_eq!((decision.outcome, decision.phase), (Outcome::Deny, None));
    assert_eq!(reason_codes(&decision), ["unknown_agent"]);

    let mut unknown_action = request(Impact::Read);
    unknown_action.action = "tool:exec".into();
    let decision = bundle.decide(&unknown_action, &facts(Phase::Autonomous));
    assert_eq!(
        (decision.outcome, decision.impact),
        (Outcome::Deny, Impact::Critical)
    );
    assert_eq!(reason_codes(&decision)[0], "unknown_action");

    let mut impostor = facts(Phase::Autonomous);
    impostor.identity = Some(Identity {
        agent: "other".into(),
        credential_scope: "k8s:sa/bot".into(),
    });
    let decision = bundle.decide(&request(Impact::Read), &impostor);
    assert_eq!(reason_codes(&decision), ["impersonation"]);

    let mut no_clock = facts(Phase::Autonomous);
    no_clock.now = None;
    let decision = bundle.decide(&request(Impact::Read), &no_clock);
    assert_eq!(
        (decision.outcome, reason_codes(&decision)),
        (Outcome::Deny, vec!["no_clock"])
    );
}

#[test]
fn the_bundle_phase_is_the_default_and_the_facts_phase_wins() {
    let bundle = bundle();
    let mut f = facts(Phase::Autonomous);
    f.phase = None;
    let decision = bundle.decide(&request(Impact::Low), &f);
    assert_eq!(
        (decision.phase, decision.outcome),
        (Some(Phase::Shadow), Outcome::Shadow)
    );
}

#[test]
fn forbid_beats_permit_and_errors_deny() {
    let forbid =
        r#"@id("no-critical") forbid (principal, action in Action::"impact:critical", resource);"#;
    let unguarded = r#"@id("unguarded-confidence") permit (principal, action, resource) when { context.confidence_permille > 500 };"#;
    let bundle = common::bundle_with(
        common::CONFIG,
        &[
            ("policies/a.cedar", common::POLICY),
            ("policies/b.cedar", forbid),
        ],
    )
    .unwrap();
    let decision = bundle.decide(&request(Impact::Critical), &facts(Phase::Autonomous));
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(decision.policy_ids, ["no-critical"]);
    assert_eq!(
        bundle
            .decide(&request(Impact::High), &facts(Phase::Autonomous))
            .outcome,
        Outcome::Allow
    );

    // `confidence_permille` is optional, so strict validation refuses the unguarded read.
    let refused =
        common::bundle_with(common::CONFIG, &[("policies/c.cedar", unguarded)]).unwrap_err();
    assert!(
        refused.to_string().contains("unguarded-confidence"),
        "{refused}"
    );
}

#[test]
fn a_forbid_that_fails_to_evaluate_denies_although_cedar_would_allow() {
    // Cedar skips a policy whose evaluation errors, so on its own it would
    // let the permit through. clearance treats any error as a denial.
    let overflowing = r#"@id("overflows") forbid (principal, action, resource)
        when { context.impact_rank * 9223372036854775807 > 9223372036854775806 };"#;
    let bundle = common::bundle_with(
        common::CONFIG,
        &[
            ("policies/a.cedar", common::POLICY),
            ("policies/b.cedar", overflowing),
        ],
    )
    .unwrap();
    let decision = bundle.decide(&request(Impact::Critical), &facts(Phase::Autonomous));
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(reason_codes(&decision)[0], "out_of_scope");
    assert!(
        decision.reasons[0]
            .message
            .contains("policy evaluation failed"),
        "{}",
        decision.reasons[0].message
    );
    assert_eq!(
        bundle
            .decide(&request(Impact::Read), &facts(Phase::Autonomous))
            .outcome,
        Outcome::Allow,
        "rank 0 does not overflow"
    );
}

#[test]
fn policies_see_confidence_in_permille_when_the_agent_sends_one() {
    let guarded = r#"@id("sure-enough") permit (principal, action, resource)
        when { context has confidence_permille && context.confidence_permille >= 900 };"#;
    let bundle = common::bundle_with(common::CONFIG, &[("policies/c.cedar", guarded)]).unwrap();
    let mut req = request(Impact::Medium);
    let outcome = |req: &clearance_engine::DecisionRequest| {
        bundle.decide(req, &facts(Phase::Autonomous)).outcome
    };
    req.confidence = clearance_engine::Confidence::new(0.9);
    assert_eq!(outcome(&req), Outcome::Allow);
    req.confidence = clearance_engine::Confidence::new(0.8994);
    assert_eq!(outcome(&req), Outcome::Deny, "0.8994 rounds to 899");
    req.confidence = None;
    assert_eq!(outcome(&req), Outcome::Deny, "absent is not high");
}

#[test]
fn regression_a_kill_switch_reason_is_quoted_verbatim() {
    // The message was once lower-cased whole, mangling the operator's text.
    let mut f = facts(Phase::Autonomous);
    f.kill_switches.push(KillSwitch {
        id: Some("KS-7".into()),
        scope: KillScope::Tool,
        target: Some("tool".into()),
        reason: Some("Paging storm on DB-01".into()),
    });
    let decision = bundle().decide(&request(Impact::Low), &f);
    assert_eq!(
        decision.reasons[0].message,
        "kill switch `KS-7` (tool scope) is tripped: Paging storm on DB-01"
    );
}

/// A simulation report that names its plan's steps vouches for them only:
/// any agent may name any plan, so a request that is none of its steps —
/// another action, or the same action on another resource — is missing the
/// simulation. Without steps, the plan alone counts, unless the bundle
/// sets `checks.simulation.require_steps`.
#[test]
fn a_simulation_vouches_only_for_the_steps_it_simulated() {
    use clearance_engine::{Evidence, Resource, facts::PlanStep};
    let bundle = bundle();
    let req = request(Impact::High);
    let step = |action: &str, name: &str| PlanStep {
        action: action.into(),
        resource: Resource {
            kind: "deployment".into(),
            namespace: "inside".into(),
            name: name.into(),
        },
    };
    let with_steps = |steps: Vec<PlanStep>| {
        let mut f = facts(Phase::Autonomous);
        f.simulations[0].steps = steps;
        bundle.decide(&req, &f)
    };
    assert_eq!(
        with_steps(vec![step("tool:high", "api")]).outcome,
        Outcome::Allow
    );
    for other in [step("tool:high", "db"), step("tool:medium", "api")] {
        let decision = with_steps(vec![other]);
        assert_eq!(decision.outcome, Outcome::Deny);
        assert_eq!(decision.missing_evidence, [Evidence::Simulation]);
        let check = decision
            .checks
            .iter()
            .find(|c| c.check == Evidence::Simulation)
            .unwrap();
        assert!(
            check
                .detail
                .contains("does not include tool:high on deployment/inside/api"),
            "{}",
            check.detail
        );
    }
    assert_eq!(
        with_steps(Vec::new()).outcome,
        Outcome::Allow,
        "no steps: the plan alone"
    );
    let strict = common::bundle_with(
        &format!(
            "{}checks: {{ simulation: {{ require_steps: true }} }}\n",
            common::CONFIG
        ),
        &[("policies/scope.cedar", common::POLICY)],
    )
    .unwrap();
    let decision = strict.decide(&req, &facts(Phase::Autonomous));
    assert_eq!(decision.missing_evidence, [Evidence::Simulation]);
}
