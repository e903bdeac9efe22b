//! The decision table of DESIGN §1: every phase × impact class × in or out
//! of scope, and each of the five pieces of evidence missing alone and all
//! together.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::{Evidence, Impact, Outcome, Phase, facts::Identity};
use common::{bundle, facts, request};

/// What an in-scope request with every piece of evidence becomes.
fn expected_in_scope(phase: Phase, impact: Impact) -> Outcome {
    if !impact.is_write() {
        return Outcome::Allow;
    }
    match phase {
        Phase::Shadow => Outcome::Shadow,
        Phase::Assist => Outcome::Recommend,
        Phase::Remediate => Outcome::Pending,
        Phase::Autonomous => Outcome::Allow,
    }
}

#[test]
fn every_phase_and_impact_in_scope_with_full_evidence() {
    let bundle = bundle();
    for phase in Phase::ALL {
        for impact in Impact::ALL {
            let decision = bundle.decide(&request(impact), &facts(phase));
            assert_eq!(
                decision.outcome,
                expected_in_scope(phase, impact),
                "{phase} × {impact}: {:?}",
                decision.reasons
            );
            assert_eq!(decision.phase, Some(phase));
            assert_eq!(decision.impact, impact);
            assert!(
                decision.missing_evidence.is_empty(),
                "{phase} × {impact}: {:?}",
                decision.missing_evidence
            );
            assert_eq!(decision.policy_ids, ["inside-domains"]);
            assert_eq!(
                decision.checks.len(),
                if impact.needs_evidence() { 5 } else { 0 }
            );
        }
    }
}

#[test]
fn every_phase_and_impact_out_of_scope_is_denied() {
    let bundle = bundle();
    for phase in Phase::ALL {
        for impact in Impact::ALL {
            let mut outside = request(impact);
            outside.resource.namespace = "outside".into();
            let decision = bundle.decide(&outside, &facts(phase));
            assert_eq!(decision.outcome, Outcome::Deny, "{phase} × {impact}");
            assert_eq!(decision.reasons[0].code, "out_of_scope");
            if impact.needs_evidence() {
                assert_eq!(decision.missing_evidence, [Evidence::ScopedPermission]);
            }
        }
    }
}

#[test]
fn high_impact_without_evidence_is_recorded_in_phases_one_and_two_and_denied_after() {
    let bundle = bundle();
    for impact in [Impact::High, Impact::Critical] {
        for phase in Phase::ALL {
            let mut bare = facts(phase);
            bare.simulations.clear();
            bare.rollback_tests.clear();
            let decision = bundle.decide(&request(impact), &bare);
            let expected = match phase {
                Phase::Shadow => Outcome::Shadow,
                Phase::Assist => Outcome::Recommend,
                Phase::Remediate | Phase::Autonomous => Outcome::Deny,
            };
            assert_eq!(decision.outcome, expected, "{phase} × {impact}");
            assert_eq!(
                decision.missing_evidence,
                [Evidence::Simulation, Evidence::Rollback],
                "{phase} × {impact}"
            );
            assert!(
                decision
                    .reasons
                    .iter()
                    .any(|r| r.code == "missing_evidence")
            );
        }
    }
}

/// Removes exactly one piece of evidence from an otherwise complete request.
fn without(
    evidence: Evidence,
    req: &mut clearance_engine::DecisionRequest,
    facts: &mut clearance_engine::Facts,
) {
    match evidence {
        Evidence::ScopedPermission => req.resource.namespace = "outside".into(),
        Evidence::FreshState => req.snapshot = None,
        Evidence::Simulation => facts.simulations.clear(),
        Evidence::Rollback => facts.rollback_tests.clear(),
        Evidence::Lineage => {
            facts.identity = Some(Identity {
                agent: "bot".into(),
                credential_scope: "k8s:sa/cluster-admin".into(),
            });
        }
    }
}

#[test]
fn each_piece_of_evidence_missing_alone_is_named_alone() {
    let bundle = bundle();
    for impact in [Impact::High, Impact::Critical] {
        for evidence in Evidence::ALL {
            let (mut req, mut facts) = (request(impact), facts(Phase::Autonomous));
            without(evidence, &mut req, &mut facts);
            let decision = bundle.decide(&req, &facts);
            assert_eq!(
                decision.outcome,
                Outcome::Deny,
                "{impact} without {evidence}"
            );
            assert_eq!(
                decision.missing_evidence,
                [evidence],
                "{impact} without {evidence}"
            );
            let failed: Vec<_> = decision
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.check)
                .collect();
            assert_eq!(failed, [evidence]);
        }
    }
}

#[test]
fn all_five_missing_are_all_named() {
    let bundle = bundle();
    let (mut req, mut facts) = (request(Impact::Critical), facts(Phase::Autonomous));
    for evidence in Evidence::ALL {
        without(evidence, &mut req, &mut facts);
    }
    let decision = bundle.decide(&req, &facts);
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(decision.missing_evidence, Evidence::ALL);
    let message = &decision
        .reasons
        .iter()
        .find(|r| r.code == "missing_evidence")
        .unwrap()
        .message;
    for evidence in Evidence::ALL {
        assert!(
            message.contains(evidence.name()),
            "{evidence} not named in {message}"
        );
    }
}

#[test]
fn evidence_is_not_required_below_high_impact() {
    let bundle = bundle();
    let mut bare = facts(Phase::Autonomous);
    bare.simulations.clear();
    bare.rollback_tests.clear();
    let mut req = request(Impact::Medium);
    req.snapshot = None;
    let decision = bundle.decide(&req, &bare);
    assert_eq!(decision.outcome, Outcome::Allow);
    assert!(decision.checks.is_empty());
}

#[test]
fn stale_and_future_snapshots_are_not_fresh() {
    let bundle = bundle();
    for offset in [-301, 120] {
        let mut req = request(Impact::High);
        req.snapshot.as_mut().unwrap().observed_at = common::at(offset);
        let decision = bundle.decide(&req, &facts(Phase::Autonomous));
        assert_eq!(
            decision.missing_evidence,
            [Evidence::FreshState],
            "offset {offset}"
        );
    }
}

#[test]
fn simulation_must_be_recent_and_survived() {
    let bundle = bundle();
    let cases: [(u32, u32, i64, bool); 5] = [
        (100, 95, -3_600, true),
        (100, 94, -3_600, false),
        (100, 100, -86_401, false),
        (0, 0, -60, false),
        (100, 100, 3_600, false),
    ];
    for (branches, survived, offset, passes) in cases {
        let mut f = facts(Phase::Autonomous);
        f.simulations[0].branches = branches;
        f.simulations[0].survived = survived;
        f.simulations[0].produced_at = common::at(offset);
        let decision = bundle.decide(&request(Impact::High), &f);
        assert_eq!(
            decision.missing_evidence.is_empty(),
            passes,
            "{survived}/{branches} at {offset}s"
        );
    }
}

#[test]
fn only_the_latest_rollback_test_counts() {
    let bundle = bundle();
    let mut f = facts(Phase::Autonomous);
    f.rollback_tests
        .push(clearance_engine::facts::RollbackTest {
            playbook: "undo".into(),
            passed: false,
            tested_at: common::at(-60),
        });
    assert_eq!(
        bundle.decide(&request(Impact::High), &f).missing_evidence,
        [Evidence::Rollback]
    );
    f.rollback_tests[0].tested_at = common::at(-30);
    assert!(
        bundle
            .decide(&request(Impact::High), &f)
            .missing_evidence
            .is_empty()
    );
    f.rollback_tests.truncate(1);
    f.rollback_tests[0].tested_at = common::at(-8 * 86_400);
    assert_eq!(
        bundle.decide(&request(Impact::High), &f).missing_evidence,
        [Evidence::Rollback]
    );
}

#[test]
fn autonomy_escalates_below_the_confidence_threshold() {
    let bundle = bundle();
    let mut req = request(Impact::High);
    req.confidence = clearance_engine::Confidence::new(0.79);
    assert_eq!(
        bundle.decide(&req, &facts(Phase::Autonomous)).outcome,
        Outcome::Pending
    );
    req.confidence = None;
    assert_eq!(
        bundle.decide(&req, &facts(Phase::Autonomous)).outcome,
        Outcome::Pending
    );
    req.confidence = clearance_engine::Confidence::new(0.8);
    assert_eq!(
        bundle.decide(&req, &facts(Phase::Autonomous)).outcome,
        Outcome::Allow
    );
}
