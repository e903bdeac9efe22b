//! Properties that must hold for every request and every state of the
//! world, not only the ones a table lists:
//! - nothing unknown (agent, action) is ever allowed;
//! - no high or critical execution is allowed unless all five checks pass;
//! - demoting an agent never turns a non-`allow` into `allow`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use clearance_engine::{
    Bundle, Confidence, DecisionRequest, Facts, Impact, Level, Outcome, Phase, RequestHash,
    facts::{
        Approval, ApprovalStatus, Execution, Identity, KillScope, KillSwitch, RecordedFacts,
        RollbackTest, SimulationReport,
    },
};
use common::at;
use proptest::{prelude::*, sample::select};
use std::sync::OnceLock;

fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(common::bundle)
}

fn phase() -> impl Strategy<Value = Phase> {
    select(Phase::ALL.to_vec())
}

fn impact() -> impl Strategy<Value = Impact> {
    select(Impact::ALL.to_vec())
}

/// Seconds relative to `now`: often recent, sometimes old, sometimes in
/// the future.
fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![3 => -240i64..0, 1 => -10 * 86_400i64..0, 1 => -600i64..600]
}

/// Mostly `good`, sometimes anything `other` yields: each piece of evidence
/// is usually present, so that worlds with all five are common.
fn usually<T: std::fmt::Debug + Clone + 'static>(
    good: T,
    other: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![4 => Just(good), 1 => other].boxed()
}

/// A request anywhere in the fixture's space: known or unknown verbs, in
/// or out of scope, with or without each piece of evidence.
fn request() -> impl Strategy<Value = DecisionRequest> {
    (
        select(vec![
            "tool:read",
            "tool:low",
            "tool:medium",
            "tool:high",
            "tool:critical",
            "tool:exec",
            "kubectl:scale",
        ]),
        select(vec!["inside", "outside", "kube-system"]),
        proptest::option::of(select(vec![
            Level::Observe,
            Level::Recommend,
            Level::Simulate,
            Level::Execute,
        ])),
        usually(
            Some("plan-1"),
            proptest::option::of(select(vec!["plan-1", "plan-2"])),
        ),
        usually(
            Some(("v1", -60)),
            proptest::option::of((select(vec!["v1", "v2"]), offset())),
        ),
        usually(Some(0.9), proptest::option::of(0.0f64..=1.0)),
        usually(None, proptest::option::of(select(vec!["apr-1", "apr-2"]))),
    )
        .prop_map(
            |(action, namespace, level, plan, snapshot, confidence, approval)| {
                let mut req = common::request(Impact::Read);
                req.action = action.into();
                req.resource.namespace = namespace.into();
                req.level = level;
                req.plan_id = plan.map(Into::into);
                req.snapshot = snapshot.map(|(version, offset)| clearance_engine::Snapshot {
                    version: version.into(),
                    observed_at: at(offset),
                });
                req.confidence = confidence.and_then(Confidence::new);
                req.approval_id = approval.map(Into::into);
                req
            },
        )
}

fn facts_for(req: DecisionRequest) -> impl Strategy<Value = (DecisionRequest, Facts)> {
    let good_simulation = SimulationReport {
        plan_id: "plan-1".into(),
        branches: 40,
        survived: 40,
        produced_at: at(-3_600),
        steps: Vec::new(),
    };
    let good_test = RollbackTest {
        playbook: "undo".into(),
        passed: true,
        tested_at: at(-3_600),
    };
    let simulation = (
        select(vec!["plan-1", "plan-2"]),
        0u32..50,
        0u32..50,
        offset(),
    )
        .prop_map(|(plan, branches, survived, offset)| SimulationReport {
            plan_id: plan.into(),
            branches,
            survived,
            produced_at: at(offset),
            steps: Vec::new(),
        });
    let rollback_test = (select(vec!["undo", "other"]), any::<bool>(), offset()).prop_map(
        |(playbook, passed, offset)| RollbackTest {
            playbook: playbook.into(),
            passed,
            tested_at: at(offset),
        },
    );
    let switch = (
        select(vec![
            KillScope::Global,
            KillScope::Agent,
            KillScope::Tool,
            KillScope::Resource,
        ]),
        select(vec!["bot", "tool", "*/inside/*", "x"]),
    )
        .prop_map(|(scope, target)| KillSwitch {
            id: None,
            scope,
            target: Some(target.into()),
            reason: None,
        });
    let hash = RequestHash::of(&req).to_string();
    let approval = (
        select(vec!["apr-1", "apr-2"]),
        any::<bool>(),
        select(vec![
            ApprovalStatus::Approved,
            ApprovalStatus::Pending,
            ApprovalStatus::Denied,
            ApprovalStatus::Voided,
        ]),
        offset(),
        any::<bool>(),
        proptest::collection::vec(Just("alice".to_owned()), 0..2),
    )
        .prop_map(
            move |(id, bound, status, expires, used, approvers)| Approval {
                id: id.into(),
                request_hash: if bound {
                    hash.clone()
                } else {
                    "sha256:other".into()
                },
                status,
                approvers,
                expires_at: at(expires),
                used,
                required: 1,
                snapshot_version: None,
            },
        );
    (
        proptest::option::of(phase()),
        usually(
            vec![good_simulation],
            proptest::collection::vec(simulation, 0..3),
        ),
        usually(
            vec![good_test],
            proptest::collection::vec(rollback_test, 0..3),
        ),
        usually(vec![], proptest::collection::vec(switch, 0..2)),
        proptest::collection::vec(
            (impact(), offset()).prop_map(|(impact, offset)| Execution {
                impact,
                at: at(offset),
            }),
            0..5,
        ),
        proptest::option::of(approval),
        usually(
            Some("k8s:sa/bot"),
            proptest::option::of(select(vec!["k8s:sa/bot", "k8s:sa/admin"])),
        ),
    )
        .prop_map(
            move |(
                phase,
                simulations,
                rollback_tests,
                kill_switches,
                recent_executions,
                approval,
                scope,
            )| {
                let facts = Facts {
                    now: Some(common::now()),
                    phase,
                    identity: scope.map(|s| Identity {
                        agent: "bot".into(),
                        credential_scope: s.into(),
                    }),
                    kill_switches,
                    recent_executions,
                    simulations,
                    rollback_tests,
                    approval,
                };
                (req.clone(), facts)
            },
        )
}

fn world() -> impl Strategy<Value = (DecisionRequest, Facts)> {
    request().prop_flat_map(facts_for)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn nothing_unknown_is_ever_allowed((mut req, facts) in world(), unknown_agent in any::<bool>(), name in "[a-z:_-]{0,12}") {
        if unknown_agent {
            req.agent = format!("ghost-{name}");
        } else {
            req.action = format!("tool:{name}x");
        }
        let decision = bundle().decide(&req, &facts);
        prop_assert_eq!(decision.outcome, Outcome::Deny);
    }

    #[test]
    fn no_high_impact_execution_is_allowed_without_all_five((req, facts) in world()) {
        let decision = bundle().decide(&req, &facts);
        if decision.outcome == Outcome::Allow && decision.level == Level::Execute && decision.impact.needs_evidence() {
            prop_assert_eq!(decision.checks.len(), 5);
            prop_assert!(decision.checks.iter().all(|c| c.passed), "{:?}", decision.checks);
            prop_assert!(decision.missing_evidence.is_empty());
        }
    }

    #[test]
    fn demotion_never_turns_a_refusal_into_allow((req, mut facts) in world(), (higher, lower) in phase().prop_flat_map(|p| (Just(p), select(Phase::ALL.into_iter().filter(|l| *l < p).collect::<Vec<_>>().into_iter().chain([Phase::Shadow]).collect::<Vec<_>>())))) {
        facts.phase = Some(higher);
        let before = bundle().decide(&req, &facts);
        facts.phase = Some(lower);
        let after = bundle().decide(&req, &facts);
        if before.outcome != Outcome::Allow {
            prop_assert_ne!(after.outcome, Outcome::Allow, "{:?} in {} became allow in {}", before.outcome, higher, lower);
        }
    }

    #[test]
    fn no_write_runs_before_remediate((req, mut facts) in world(), phase in select(vec![Phase::Shadow, Phase::Assist])) {
        facts.phase = Some(phase);
        let decision = bundle().decide(&req, &facts);
        if decision.level == Level::Execute && decision.impact.is_write() {
            prop_assert_ne!(decision.outcome, Outcome::Allow);
        }
    }

    #[test]
    fn a_decision_replays_from_what_its_record_keeps((req, facts) in world()) {
        let decided = bundle().decide(&req, &facts);
        let now = facts.now.unwrap();
        let recorded = facts.recorded(bundle(), &req);
        // As the ledger keeps it: through JSON.
        let text = serde_json::to_string(&recorded).unwrap();
        let read: RecordedFacts = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&read, &recorded);
        let replayed = bundle().decide(&req, &read.facts(bundle(), &req.agent, now));
        prop_assert_eq!(replayed, decided);
    }

    #[test]
    fn without_a_clock_everything_is_denied((req, mut facts) in world()) {
        facts.now = None;
        prop_assert_eq!(bundle().decide(&req, &facts).outcome, Outcome::Deny);
    }
}

/// The properties above only mean something if the generated worlds reach
/// the interesting outcomes; this pins that they do.
#[test]
fn the_generated_worlds_reach_allowed_high_impact_executions() {
    use proptest::strategy::ValueTree as _;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = world();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20_000 {
        let (req, facts) = strategy.new_tree(&mut runner).unwrap().current();
        let decision = bundle().decide(&req, &facts);
        let high_execution = decision.level == Level::Execute && decision.impact.needs_evidence();
        seen.insert((decision.outcome, high_execution));
    }
    for outcome in [
        Outcome::Allow,
        Outcome::Deny,
        Outcome::Shadow,
        Outcome::Recommend,
        Outcome::Pending,
    ] {
        assert!(
            seen.contains(&(outcome, true)),
            "no high-impact execution ended {outcome}: {seen:?}"
        );
    }
}

/// A record keeps only what the decision could read: an in-scope read
/// under a busy world records its phase and nothing else; a high-impact
/// execution keeps the switch covering it, the executions the hard stop
/// counts, its plan's report and its playbook's tests — not the others.
#[test]
fn a_record_keeps_only_what_its_decision_could_read() {
    let facts = Facts {
        now: Some(common::now()),
        phase: Some(Phase::Autonomous),
        identity: Some(Identity {
            agent: "bot".into(),
            credential_scope: "k8s:sa/bot".into(),
        }),
        kill_switches: vec![
            KillSwitch {
                id: Some("elsewhere".into()),
                scope: KillScope::Resource,
                target: Some("*/search/*".into()),
                reason: None,
            },
            KillSwitch {
                id: Some("kubectl".into()),
                scope: KillScope::Tool,
                target: Some("kubectl".into()),
                reason: None,
            },
        ],
        recent_executions: vec![
            Execution {
                impact: Impact::High,
                at: at(-60),
            },
            Execution {
                impact: Impact::High,
                at: at(-7_200),
            },
            Execution {
                impact: Impact::Medium,
                at: at(-60),
            },
        ],
        simulations: vec![
            SimulationReport {
                plan_id: "plan-1".into(),
                branches: 4,
                survived: 4,
                produced_at: at(-60),
                steps: Vec::new(),
            },
            SimulationReport {
                plan_id: "plan-2".into(),
                branches: 4,
                survived: 0,
                produced_at: at(-60),
                steps: Vec::new(),
            },
        ],
        rollback_tests: vec![
            RollbackTest {
                playbook: "undo".into(),
                passed: true,
                tested_at: at(-60),
            },
            RollbackTest {
                playbook: "other".into(),
                passed: false,
                tested_at: at(-60),
            },
        ],
        approval: None,
    };
    let mut read = common::request(Impact::Read);
    read.action = "tool:read".into();
    read.resource.namespace = "search".into();
    let kept = serde_json::to_value(facts.clone().recorded(bundle(), &read)).unwrap();
    assert_eq!(
        kept,
        serde_json::json!({ "phase": "autonomous", "kill_switches": [{ "id": "elsewhere", "scope": "resource", "target": "*/search/*", "reason": null }] })
    );
    read.resource.namespace = "inside".into();
    let kept = serde_json::to_value(facts.clone().recorded(bundle(), &read)).unwrap();
    assert_eq!(kept, serde_json::json!({ "phase": "autonomous" }));

    let mut high = common::request(Impact::High);
    high.action = "tool:high".into();
    high.resource.namespace = "inside".into();
    high.plan_id = Some("plan-1".into());
    let kept = facts.recorded(bundle(), &high);
    assert!(kept.kill_switches.is_empty());
    assert_eq!(
        kept.executions,
        vec![Execution {
            impact: Impact::High,
            at: at(-60)
        }]
    );
    assert_eq!(kept.simulations.len(), 1);
    assert_eq!(kept.simulations[0].plan_id, "plan-1");
    assert_eq!(kept.rollback_tests.len(), 1);
    assert_eq!(kept.rollback_tests[0].playbook, "undo");
    assert!(kept.identity.is_none() && !kept.unauthenticated);
}
