//! Earned trust: the default gate table as fixtures (an agent meeting every
//! criterion is eligible; each criterion failing alone makes it ineligible
//! and is named), demotion rules, and the properties: demotion never raises
//! a phase, promotion never skips one, a gate never clears with fewer
//! samples than its minimum.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use clearance_engine::{
    Phase,
    trust::{
        DemotionRule, RemediationResult, Sample, Statistic, Tally, Transition, TrustSettings,
        check_demotion, demotion_readings, evaluate_gate, wilson_lower, wilson_upper,
    },
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn now() -> Timestamp {
    "2026-11-21T12:00:00Z".parse().unwrap()
}

fn ago(seconds: i64) -> Timestamp {
    now()
        .checked_sub(SignedDuration::from_secs(seconds))
        .unwrap()
}

fn repeat(tally: &mut Tally, sample: Sample, times: u64) {
    for i in 0..times {
        tally.add(&sample, ago(i as i64 % 86_400));
    }
}

fn diagnosis(correct: bool, domain: &str) -> Sample {
    Sample::Diagnosis {
        correct,
        domain: Some(domain.into()),
    }
}

/// Exactly enough to clear shadow → assist: 100 diagnoses in 3 domains, 96 % correct.
fn shadow_ready() -> Tally {
    let mut tally = Tally::new(ago(10 * 86_400));
    for domain in ["payments", "search", "checkout"] {
        repeat(&mut tally, diagnosis(true, domain), 32);
    }
    repeat(&mut tally, diagnosis(false, "payments"), 4);
    tally
}

/// 150 recommendations, 95 % accepted, 85 % with minimal edits, all in scope.
fn assist_ready() -> Tally {
    let mut tally = Tally::new(ago(10 * 86_400));
    repeat(
        &mut tally,
        Sample::Recommendation {
            accepted: true,
            edit_ratio: 0.05,
            in_scope: true,
        },
        128,
    );
    repeat(
        &mut tally,
        Sample::Recommendation {
            accepted: true,
            edit_ratio: 0.4,
            in_scope: true,
        },
        15,
    );
    repeat(
        &mut tally,
        Sample::Recommendation {
            accepted: false,
            edit_ratio: 0.0,
            in_scope: true,
        },
        7,
    );
    tally
}

/// 200 remediations, all completed, none rolled back; 40 escalations, 39 right.
fn remediate_ready() -> Tally {
    let mut tally = Tally::new(ago(10 * 86_400));
    repeat(
        &mut tally,
        Sample::Remediation {
            result: RemediationResult::Completed,
        },
        200,
    );
    repeat(&mut tally, Sample::Escalation { correct: true }, 39);
    repeat(&mut tally, Sample::Escalation { correct: false }, 1);
    tally
}

fn unmet(settings: &TrustSettings, phase: Phase, tally: &Tally) -> Vec<String> {
    let gate = settings.gate(phase).unwrap();
    evaluate_gate(gate, tally, settings.max_edit_ratio, now()).unmet()
}

#[test]
fn agents_meeting_every_default_criterion_are_eligible() {
    let settings = TrustSettings::default();
    for (phase, tally) in [
        (Phase::Shadow, shadow_ready()),
        (Phase::Assist, assist_ready()),
        (Phase::Remediate, remediate_ready()),
    ] {
        let progress = evaluate_gate(
            settings.gate(phase).unwrap(),
            &tally,
            settings.max_edit_ratio,
            now(),
        );
        assert!(progress.eligible, "{phase}: {:?}", progress.unmet());
        assert_eq!(progress.to, Transition::from_phase(phase).unwrap().to());
    }
    assert_eq!(settings.gate(Phase::Remediate).unwrap().signoffs, 2);
    assert!(settings.gate(Phase::Autonomous).is_none());
}

#[test]
fn each_shadow_criterion_failing_alone_is_named() {
    let settings = TrustSettings::default();
    let mut few = Tally::new(ago(86_400));
    repeat(&mut few, diagnosis(true, "a"), 33);
    repeat(&mut few, diagnosis(true, "b"), 33);
    repeat(&mut few, diagnosis(true, "c"), 33);
    assert_eq!(unmet(&settings, Phase::Shadow, &few), ["samples"]);

    let mut narrow = Tally::new(ago(86_400));
    repeat(&mut narrow, diagnosis(true, "payments"), 60);
    repeat(&mut narrow, diagnosis(true, "search"), 40);
    assert_eq!(unmet(&settings, Phase::Shadow, &narrow), ["domains"]);

    let mut inaccurate = shadow_ready();
    repeat(&mut inaccurate, diagnosis(false, "search"), 2);
    assert_eq!(
        unmet(&settings, Phase::Shadow, &inaccurate),
        ["diagnostic_accuracy"],
        "96/102 is not above 95 %"
    );

    let mut unsafe_ = shadow_ready();
    unsafe_.add(&Sample::UnsafeAttempt, now());
    assert_eq!(
        unmet(&settings, Phase::Shadow, &unsafe_),
        ["unsafe_attempts"]
    );
}

#[test]
fn each_assist_criterion_failing_alone_is_named() {
    let settings = TrustSettings::default();
    let mut few = Tally::new(ago(86_400));
    repeat(
        &mut few,
        Sample::Recommendation {
            accepted: true,
            edit_ratio: 0.0,
            in_scope: true,
        },
        149,
    );
    assert_eq!(unmet(&settings, Phase::Assist, &few), ["samples"]);

    // 135 of 150 accepted, all with minimal edits: agreement exactly 90 % (not above), minimal edits 90 %.
    let mut disagreed = Tally::new(ago(86_400));
    repeat(
        &mut disagreed,
        Sample::Recommendation {
            accepted: true,
            edit_ratio: 0.05,
            in_scope: true,
        },
        135,
    );
    repeat(
        &mut disagreed,
        Sample::Recommendation {
            accepted: false,
            edit_ratio: 0.0,
            in_scope: true,
        },
        15,
    );
    assert_eq!(
        unmet(&settings, Phase::Assist, &disagreed),
        ["operator_agreement"]
    );

    let mut outside = assist_ready();
    outside.add(
        &Sample::Recommendation {
            accepted: true,
            edit_ratio: 0.0,
            in_scope: false,
        },
        now(),
    );
    assert_eq!(
        unmet(&settings, Phase::Assist, &outside),
        ["out_of_scope_recommendations"]
    );

    let mut heavily_edited = Tally::new(ago(86_400));
    repeat(
        &mut heavily_edited,
        Sample::Recommendation {
            accepted: true,
            edit_ratio: 0.05,
            in_scope: true,
        },
        110,
    );
    repeat(
        &mut heavily_edited,
        Sample::Recommendation {
            accepted: true,
            edit_ratio: 0.3,
            in_scope: true,
        },
        40,
    );
    assert_eq!(
        unmet(&settings, Phase::Assist, &heavily_edited),
        ["minimal_edit_acceptance"]
    );
}

#[test]
fn each_remediate_criterion_failing_alone_is_named() {
    let settings = TrustSettings::default();
    let mut few = Tally::new(ago(86_400));
    repeat(
        &mut few,
        Sample::Remediation {
            result: RemediationResult::Completed,
        },
        99,
    );
    repeat(&mut few, Sample::Escalation { correct: true }, 20);
    assert_eq!(unmet(&settings, Phase::Remediate, &few), ["samples"]);

    let mut failing = remediate_ready();
    repeat(
        &mut failing,
        Sample::Remediation {
            result: RemediationResult::Failed,
        },
        3,
    );
    assert_eq!(unmet(&settings, Phase::Remediate, &failing), ["completion"]);

    let mut rolling_back = Tally::new(ago(86_400));
    repeat(
        &mut rolling_back,
        Sample::Remediation {
            result: RemediationResult::Completed,
        },
        297,
    );
    repeat(
        &mut rolling_back,
        Sample::Remediation {
            result: RemediationResult::RolledBack,
        },
        3,
    );
    repeat(&mut rolling_back, Sample::Escalation { correct: true }, 20);
    assert_eq!(
        unmet(&settings, Phase::Remediate, &rolling_back),
        ["completion", "rollback_rate"],
        "a rollback is not a completion either"
    );

    let mut misescalating = remediate_ready();
    repeat(&mut misescalating, Sample::Escalation { correct: false }, 2);
    assert_eq!(
        unmet(&settings, Phase::Remediate, &misescalating),
        ["escalation_correctness"]
    );

    let mut never_escalated = Tally::new(ago(86_400));
    repeat(
        &mut never_escalated,
        Sample::Remediation {
            result: RemediationResult::Completed,
        },
        100,
    );
    assert_eq!(
        unmet(&settings, Phase::Remediate, &never_escalated),
        ["escalation_correctness"],
        "no samples, no evidence"
    );
}

#[test]
fn a_wilson_bound_asks_for_more_evidence_than_the_plain_rate() {
    let mut settings = TrustSettings::default();
    let tally = shadow_ready();
    assert!(unmet(&settings, Phase::Shadow, &tally).is_empty());
    settings.gates[0].criteria[0].statistic = Statistic::Wilson95;
    assert_eq!(
        unmet(&settings, Phase::Shadow, &tally),
        ["diagnostic_accuracy"]
    );
}

#[test]
fn min_days_counts_from_the_first_sample_in_the_phase() {
    let mut settings = TrustSettings::default();
    settings.gates[0].min_days = 14;
    assert_eq!(unmet(&settings, Phase::Shadow, &shadow_ready()), ["days"]);
    let mut old = shadow_ready();
    old.add(&diagnosis(true, "payments"), ago(15 * 86_400));
    assert!(unmet(&settings, Phase::Shadow, &old).is_empty());
}

#[test]
fn accuracy_drift_drops_one_phase_but_not_on_a_handful_of_samples() {
    let settings = TrustSettings::default().demotion;
    let mut tally = Tally::new(ago(40 * 86_400));
    repeat(&mut tally, diagnosis(true, "payments"), 2);
    repeat(&mut tally, diagnosis(false, "payments"), 1);
    assert_eq!(
        check_demotion(Phase::Autonomous, &tally, None, &settings, now()),
        None,
        "1 wrong of 3: 17 correct ones would make it 95% at the floor"
    );
    repeat(&mut tally, diagnosis(true, "payments"), 17);
    repeat(&mut tally, diagnosis(false, "payments"), 1);
    let demotion = check_demotion(Phase::Autonomous, &tally, None, &settings, now()).unwrap();
    assert_eq!((demotion.to, demotion.lock), (Phase::Remediate, false));
    assert!(demotion.detail.contains("90.5%"), "{}", demotion.detail);
    assert!(
        !demotion.detail.contains("floor"),
        "decided past the floor: {}",
        demotion.detail
    );
}

#[test]
fn a_rule_decides_below_its_floor_once_the_outcome_there_is_known() {
    let settings = TrustSettings::default().demotion;
    let rolled_back = Sample::Remediation {
        result: RemediationResult::RolledBack,
    };
    let completed = Sample::Remediation {
        result: RemediationResult::Completed,
    };
    let mut tally = Tally::new(ago(86_400));
    repeat(&mut tally, completed, 2);
    assert_eq!(
        check_demotion(Phase::Autonomous, &tally, None, &settings, now()),
        None
    );
    tally.add(&rolled_back, now());
    let demotion = check_demotion(
        Phase::Autonomous,
        &tally,
        Some(&rolled_back),
        &settings,
        now(),
    )
    .unwrap();
    assert_eq!(
        (demotion.rule, demotion.to, demotion.samples),
        (DemotionRule::RollbackRate, Phase::Remediate, 3)
    );
    assert!(
        demotion.detail.contains("(1/3)")
            && demotion.detail.contains(
                "even if the next 17 remediations are all completed, it would be 5.0% there"
            ),
        "{}",
        demotion.detail
    );

    let mut wrong = Tally::new(ago(86_400));
    wrong.add(&diagnosis(false, "payments"), now());
    assert_eq!(
        check_demotion(Phase::Assist, &wrong, None, &settings, now()),
        None,
        "1 wrong of 1: 19 correct would make it 95% at the floor"
    );
    wrong.add(&diagnosis(false, "payments"), now());
    let demotion = check_demotion(Phase::Assist, &wrong, None, &settings, now()).unwrap();
    assert_eq!(
        (demotion.rule, demotion.to),
        (DemotionRule::AccuracyDrift, Phase::Shadow),
        "2 wrong of 2: at most 90% at the floor"
    );
}

#[test]
fn old_samples_slide_out_of_the_window() {
    let settings = TrustSettings::default().demotion;
    let mut tally = Tally::new(ago(90 * 86_400));
    for _ in 0..30 {
        tally.add(&diagnosis(false, "p"), ago(45 * 86_400));
    }
    repeat(&mut tally, diagnosis(true, "p"), 30);
    assert_eq!(
        check_demotion(Phase::Assist, &tally, None, &settings, now()),
        None
    );
}

#[test]
fn rollbacks_above_the_ceiling_drop_one_phase() {
    let settings = TrustSettings::default().demotion;
    let mut tally = Tally::new(ago(86_400));
    repeat(
        &mut tally,
        Sample::Remediation {
            result: RemediationResult::Completed,
        },
        45,
    );
    repeat(
        &mut tally,
        Sample::Remediation {
            result: RemediationResult::RolledBack,
        },
        2,
    );
    let demotion = check_demotion(Phase::Autonomous, &tally, None, &settings, now()).unwrap();
    assert_eq!(demotion.to, Phase::Remediate);
}

/// `statistic: wilson95`: a rule demotes when the conservative end of the
/// rate's 95 % interval is past the threshold, whatever the sample floor.
#[test]
fn a_wilson_demotion_rule_demotes_on_confidence_not_on_the_floor() {
    let mut settings = TrustSettings::default().demotion;
    settings.accuracy_statistic = Statistic::Wilson95;
    settings.rollback_statistic = Statistic::Wilson95;
    let completed = Sample::Remediation {
        result: RemediationResult::Completed,
    };
    let rolled_back = Sample::Remediation {
        result: RemediationResult::RolledBack,
    };

    // 2 rollbacks in 60: 3.3 % observed, above 2 %, and the plain rule
    // demotes; but the interval reaches down to 0.9 %: not demonstrably
    // above 2 %, so the Wilson rule waits for more evidence.
    let mut tally = Tally::new(ago(86_400));
    repeat(&mut tally, completed.clone(), 58);
    repeat(&mut tally, rolled_back.clone(), 2);
    let plain = TrustSettings::default().demotion;
    assert!(check_demotion(Phase::Autonomous, &tally, None, &plain, now()).is_some());
    assert!(check_demotion(Phase::Autonomous, &tally, None, &settings, now()).is_none());
    // 3 rollbacks in 5: the lower bound is 23 %, well above 2 %.
    let mut tally = Tally::new(ago(86_400));
    repeat(&mut tally, completed, 2);
    repeat(&mut tally, rolled_back, 3);
    let demotion = check_demotion(Phase::Autonomous, &tally, None, &settings, now()).unwrap();
    assert_eq!(demotion.rule, DemotionRule::RollbackRate);
    let bound = wilson_lower(3, 5).unwrap();
    assert_eq!(demotion.value, Some(bound));
    assert!(demotion.detail.contains("Wilson"), "{}", demotion.detail);

    // 2 of 3 correct: the upper bound (94 %) is above 92 %: no demotion;
    // 0 of 2: the upper bound is 66 %: demoted.
    let mut tally = Tally::new(ago(86_400));
    repeat(&mut tally, diagnosis(true, "payments"), 2);
    repeat(&mut tally, diagnosis(false, "payments"), 1);
    assert!(wilson_upper(2, 3).unwrap() > 0.92);
    assert!(check_demotion(Phase::Assist, &tally, None, &settings, now()).is_none());
    let mut tally = Tally::new(ago(86_400));
    repeat(&mut tally, diagnosis(false, "payments"), 2);
    let demotion = check_demotion(Phase::Assist, &tally, None, &settings, now()).unwrap();
    assert_eq!(demotion.rule, DemotionRule::AccuracyDrift);
}

/// What `clearance status` shows: each rule's value beside its threshold.
#[test]
fn readings_put_each_rule_value_beside_its_threshold() {
    let settings = TrustSettings::default().demotion;
    let mut tally = Tally::new(ago(86_400));
    repeat(&mut tally, diagnosis(true, "payments"), 9);
    repeat(&mut tally, diagnosis(false, "payments"), 1);
    let [accuracy, rollback] = demotion_readings(&tally, &settings, now());
    assert_eq!(accuracy.rule, DemotionRule::AccuracyDrift);
    assert_eq!((accuracy.rate, accuracy.value), (Some(0.9), Some(0.9)));
    assert_eq!((accuracy.threshold, accuracy.samples), (0.92, 10));
    assert_eq!(accuracy.demotes_when, "below");
    // 9 of 10 correct is below 92 %, but 10 more correct ones lift it to
    // 95 % at the 20-sample floor: not decided yet.
    assert!(!accuracy.breached);
    assert_eq!(rollback.rule, DemotionRule::RollbackRate);
    assert_eq!(
        (rollback.rate, rollback.value, rollback.samples),
        (None, None, 0)
    );
    assert!(!rollback.breached);
}

#[test]
fn an_out_of_scope_action_drops_to_shadow_and_locks() {
    let settings = TrustSettings::default().demotion;
    let mut tally = Tally::new(ago(86_400));
    tally.add(&Sample::OutOfScopeAction, now());
    for phase in Phase::ALL {
        let demotion = check_demotion(
            phase,
            &tally,
            Some(&Sample::OutOfScopeAction),
            &settings,
            now(),
        )
        .unwrap();
        assert_eq!(
            (demotion.to, demotion.lock),
            (Phase::Shadow, true),
            "{phase}"
        );
    }
}

/// A counted out-of-scope action whose demotion was never recorded is
/// still due on the timer's check, with no new sample; a tally without one
/// is not demoted for it.
#[test]
fn an_out_of_scope_action_still_in_the_tally_demotes_on_the_timer() {
    let settings = TrustSettings::default().demotion;
    let mut tally = Tally::new(ago(86_400));
    repeat(&mut tally, diagnosis(true, "payments"), 5);
    assert_eq!(
        check_demotion(Phase::Autonomous, &tally, None, &settings, now()),
        None
    );
    tally.add(&Sample::OutOfScopeAction, ago(60));
    let demotion = check_demotion(Phase::Autonomous, &tally, None, &settings, now()).unwrap();
    assert_eq!(
        (demotion.rule, demotion.to, demotion.lock),
        (DemotionRule::OutOfScopeAction, Phase::Shadow, true)
    );
}

/// A diagnosis (correct when `good`) or a remediation (completed when
/// `good`, else rolled back).
fn outcome_sample(is_diagnosis: bool, good: bool) -> Sample {
    if is_diagnosis {
        return diagnosis(good, "payments");
    }
    Sample::Remediation {
        result: if good {
            RemediationResult::Completed
        } else {
            RemediationResult::RolledBack
        },
    }
}

fn arbitrary_sample() -> impl Strategy<Value = Sample> {
    prop_oneof![
        (
            any::<bool>(),
            prop::sample::select(vec!["a", "b", "c", "d"])
        )
            .prop_map(|(correct, d)| diagnosis(correct, d)),
        (any::<bool>(), 0.0f64..=1.0, any::<bool>()).prop_map(
            |(accepted, edit_ratio, in_scope)| Sample::Recommendation {
                accepted,
                edit_ratio,
                in_scope
            }
        ),
        any::<bool>().prop_map(|correct| Sample::Escalation { correct }),
        Just(Sample::UnsafeAttempt),
        Just(Sample::OutOfScopeAction),
        prop::sample::select(vec![
            RemediationResult::Completed,
            RemediationResult::Failed,
            RemediationResult::RolledBack
        ])
        .prop_map(|result| Sample::Remediation { result }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// The early decision fires only when the floor's verdict is already
    /// known: the samples still to come at their best — every diagnosis
    /// correct, every remediation completed — up to the floor still demote,
    /// by the same rule.
    #[test]
    fn an_early_demotion_holds_whatever_the_samples_still_to_come(
        outcomes in prop::collection::vec((any::<bool>(), any::<bool>()), 0..25),
        accuracy_floor in 1u64..40,
        rollback_floor in 1u64..40,
        accuracy_below in 0.5f64..1.0,
        rollback_above in 0.0f64..0.5,
    ) {
        let mut settings = TrustSettings::default().demotion;
        settings.accuracy_min_samples = accuracy_floor;
        settings.rollback_min_samples = rollback_floor;
        settings.accuracy_below = accuracy_below;
        settings.rollback_above = rollback_above;
        let mut tally = Tally::new(ago(86_400));
        for (is_diagnosis, good) in &outcomes {
            tally.add(&outcome_sample(*is_diagnosis, *good), now());
        }
        let early = check_demotion(Phase::Autonomous, &tally, None, &settings, now());
        let Some(early) = early else { return Ok(()); };
        let mut completed = tally.clone();
        let (mut diagnoses, mut remediations) = (tally.diagnoses, tally.remediations);
        while diagnoses < accuracy_floor || remediations < rollback_floor {
            if diagnoses < accuracy_floor {
                completed.add(&outcome_sample(true, true), now());
                diagnoses += 1;
            }
            if remediations < rollback_floor {
                completed.add(&outcome_sample(false, true), now());
                remediations += 1;
            }
        }
        let at_floor = check_demotion(Phase::Autonomous, &completed, None, &settings, now());
        prop_assert!(at_floor.is_some(), "early {early:?}, but none at the floor");
        if let Some(at_floor) = at_floor {
            prop_assert_eq!(at_floor.rule, early.rule);
        }
    }

    #[test]
    fn a_wilson_rollback_rule_demotes_exactly_when_its_lower_bound_is_past_the_threshold(
        completed in 0u64..200,
        rolled_back in 0u64..20,
    ) {
        let mut settings = TrustSettings::default().demotion;
        settings.rollback_statistic = Statistic::Wilson95;
        let mut tally = Tally::new(ago(86_400));
        repeat(&mut tally, outcome_sample(false, true), completed);
        repeat(&mut tally, outcome_sample(false, false), rolled_back);
        let demoted = check_demotion(Phase::Autonomous, &tally, None, &settings, now())
            .is_some_and(|d| d.rule == DemotionRule::RollbackRate);
        let bound = wilson_lower(rolled_back, completed + rolled_back);
        prop_assert_eq!(demoted, bound.is_some_and(|b| b > settings.rollback_above));
    }

    #[test]
    fn demotion_never_raises_a_phase(samples in prop::collection::vec((arbitrary_sample(), 0i64..60 * 86_400), 0..300), phase in prop::sample::select(Phase::ALL.to_vec())) {
        let settings = TrustSettings::default().demotion;
        let mut tally = Tally::new(ago(90 * 86_400));
        for (sample, offset) in &samples {
            tally.add(sample, ago(*offset));
            if let Some(demotion) = check_demotion(phase, &tally, Some(sample), &settings, now()) {
                prop_assert!(demotion.to <= demotion.from && demotion.from == phase);
                prop_assert!(demotion.to < phase || phase == Phase::Shadow);
            }
        }
    }

    #[test]
    fn a_gate_never_clears_with_fewer_samples_than_its_minimum(samples in prop::collection::vec(arbitrary_sample(), 0..400), phase in prop::sample::select(vec![Phase::Shadow, Phase::Assist, Phase::Remediate])) {
        let settings = TrustSettings::default();
        let gate = settings.gate(phase).unwrap();
        let mut tally = Tally::new(ago(86_400));
        for sample in &samples {
            tally.add(sample, now());
        }
        let progress = evaluate_gate(gate, &tally, settings.max_edit_ratio, now());
        let samples_of_kind = match phase { Phase::Shadow => tally.diagnoses, Phase::Assist => tally.recommendations, _ => tally.remediations };
        if progress.eligible {
            prop_assert!(samples_of_kind >= gate.min_samples);
        }
        prop_assert_eq!(progress.to, gate.transition.to());
    }

    #[test]
    fn promotion_never_skips_a_phase(phase in prop::sample::select(Phase::ALL.to_vec())) {
        if let Some(transition) = Transition::from_phase(phase) {
            prop_assert_eq!(transition.from(), phase);
            prop_assert_eq!(transition.to().number(), phase.number() + 1);
        }
    }
}
