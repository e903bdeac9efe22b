//! Demotion: no human needed. Accuracy drifting below its floor or a
//! rollback rate above its ceiling over a sliding window drops the agent one
//! phase; an action outside its scope drops it to shadow (by default) and
//! locks it until an investigation is recorded.
//!
//! A rule's sample floor keeps a handful of samples from demoting, but only
//! while they could still be outweighed: once the outcome at the floor is
//! known whatever the samples still to come bring (3 rollbacks in 5 are
//! above 2 % even if the next 15 complete), the rule decides at once.

use jiff::Timestamp;
use serde::Serialize;

use super::{Sample, Statistic, Tally, wilson_lower, wilson_upper};
use crate::{duration::BundleDuration, vocabulary::Phase};

/// When an agent is demoted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DemotionSettings {
    /// Diagnostic accuracy below this over the window drops one phase.
    pub accuracy_below: f64,
    /// The accuracy window.
    pub accuracy_window: BundleDuration,
    /// The sample floor of the accuracy rule: below it, the rule demotes
    /// only when the diagnoses still to come cannot lift accuracy at the
    /// floor above `accuracy_below` (one wrong diagnosis of three must not
    /// demote; three of three must).
    pub accuracy_min_samples: u64,
    /// What the accuracy rule compares: the observed rate, or (`wilson95`)
    /// the upper end of its 95 % Wilson interval, so that the rule demotes
    /// only when accuracy is below the floor with 95 % confidence. The
    /// interval accounts for how few samples there are: the sample floor
    /// does not apply to it.
    pub accuracy_statistic: Statistic,
    /// A rollback rate above this over the window drops one phase.
    pub rollback_above: f64,
    /// The rollback window.
    pub rollback_window: BundleDuration,
    /// The sample floor of the rollback rule: below it, the rule demotes
    /// only when the rate at the floor is past `rollback_above` even if
    /// every remediation still to come completes.
    pub rollback_min_samples: u64,
    /// What the rollback rule compares: the observed rate, or (`wilson95`)
    /// the lower end of its 95 % Wilson interval.
    pub rollback_statistic: Statistic,
    /// Where an out-of-scope action sends the agent.
    pub out_of_scope_to: Phase,
}

impl Default for DemotionSettings {
    fn default() -> Self {
        let thirty_days = THIRTY_DAYS;
        DemotionSettings {
            accuracy_below: 0.92,
            accuracy_window: thirty_days,
            accuracy_min_samples: 20,
            accuracy_statistic: Statistic::Plain,
            rollback_above: 0.02,
            rollback_window: thirty_days,
            rollback_min_samples: 20,
            rollback_statistic: Statistic::Plain,
            out_of_scope_to: Phase::Shadow,
        }
    }
}

const THIRTY_DAYS: BundleDuration = match BundleDuration::from_seconds_const(30 * 86_400) {
    Some(d) => d,
    None => BundleDuration::ONE_SECOND,
};

/// Why an agent was demoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DemotionRule {
    /// Diagnostic accuracy below the floor over the window.
    AccuracyDrift,
    /// Rollback rate above the ceiling over the window.
    RollbackRate,
    /// An action outside the permitted scope.
    OutOfScopeAction,
}

/// A demotion, with the numbers that tripped it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Demotion {
    /// The rule.
    pub rule: DemotionRule,
    /// From this phase.
    pub from: Phase,
    /// To this one (never higher).
    pub to: Phase,
    /// Whether the agent is locked until an investigation.
    pub lock: bool,
    /// The observed rate (absent for out-of-scope actions).
    pub value: Option<f64>,
    /// The threshold crossed.
    pub threshold: Option<f64>,
    /// The samples in the window.
    pub samples: u64,
    /// In words.
    pub detail: String,
}

/// Whether the agent in `phase`, with `tally` (which already counts
/// `latest`, when given), must be demoted at `now`. Evaluated on every new
/// sample and on a timer, since windows slide.
///
/// An action outside scope demotes when it is `latest` and also while the
/// tally still counts one: every demotion starts a new tally, so a counted
/// out-of-scope action is one whose demotion was never recorded (the
/// instance stopped, or its store failed, between the two records), and
/// the timer makes it.
pub fn check_demotion(
    phase: Phase,
    tally: &Tally,
    latest: Option<&Sample>,
    settings: &DemotionSettings,
    now: Timestamp,
) -> Option<Demotion> {
    if matches!(latest, Some(Sample::OutOfScopeAction)) || tally.out_of_scope_actions > 0 {
        let to = settings.out_of_scope_to.min(phase);
        return Some(Demotion {
            rule: DemotionRule::OutOfScopeAction,
            from: phase,
            to,
            lock: true,
            value: None,
            threshold: None,
            samples: tally.out_of_scope_actions,
            detail: format!(
                "an action outside the permitted scope: demoted to {to} and locked until an investigation is recorded"
            ),
        });
    }
    if phase == Phase::Shadow {
        return None;
    }
    demotion_readings(tally, settings, now)
        .into_iter()
        .find(|reading| reading.breached)
        .map(|reading| {
            drop_one(
                phase,
                reading.rule,
                reading.value.unwrap_or_default(),
                reading.threshold,
                reading.samples,
                reading.detail,
            )
        })
}

/// Where one rate rule of demotion stands: what it compares beside its
/// threshold, over its window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleReading {
    /// `accuracy_drift` or `rollback_rate`.
    pub rule: DemotionRule,
    /// What is compared: the observed rate, or a bound of its interval.
    pub statistic: Statistic,
    /// The observed rate over the window; absent without samples.
    pub rate: Option<f64>,
    /// What the rule compares with the threshold (the rate, or the
    /// conservative bound); absent without samples.
    pub value: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// Which side of the threshold demotes: `below` or `above`.
    pub demotes_when: &'static str,
    /// The samples in the window.
    pub samples: u64,
    /// The sample floor (plain statistic only).
    pub min_samples: u64,
    /// The window.
    pub window: BundleDuration,
    /// Whether the rule demotes now.
    pub breached: bool,
    /// In words, when breached.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Each rate rule of demotion, read at `now`: accuracy first, then the
/// rollback rate (the order in which they are applied).
pub fn demotion_readings(
    tally: &Tally,
    settings: &DemotionSettings,
    now: Timestamp,
) -> [RuleReading; 2] {
    let (diagnoses, correct) = tally.accuracy_days.over(now, settings.accuracy_window);
    let (remediations, rolled_back) = tally.rollback_days.over(now, settings.rollback_window);
    [
        RateRule {
            rule: DemotionRule::AccuracyDrift,
            name: "diagnostic accuracy",
            demotes_below: true,
            threshold: settings.accuracy_below,
            window: settings.accuracy_window,
            min_samples: settings.accuracy_min_samples,
            statistic: settings.accuracy_statistic,
            samples_to_come: ("diagnoses", "correct"),
        }
        .read(correct, diagnoses),
        RateRule {
            rule: DemotionRule::RollbackRate,
            name: "rollback rate",
            demotes_below: false,
            threshold: settings.rollback_above,
            window: settings.rollback_window,
            min_samples: settings.rollback_min_samples,
            statistic: settings.rollback_statistic,
            samples_to_come: ("remediations", "completed"),
        }
        .read(rolled_back, remediations),
    ]
}

/// A rate rule of demotion, as the settings give it.
struct RateRule {
    rule: DemotionRule,
    name: &'static str,
    /// Accuracy demotes below its threshold; the rollback rate above.
    demotes_below: bool,
    threshold: f64,
    window: BundleDuration,
    min_samples: u64,
    statistic: Statistic,
    /// The samples still to come, and what they are at best for the agent.
    samples_to_come: (&'static str, &'static str),
}

impl RateRule {
    /// The rule over `total` samples of which `hits` are what it counts
    /// (correct diagnoses, rolled-back remediations).
    fn read(self, hits: u64, total: u64) -> RuleReading {
        let rate = (total > 0).then(|| hits as f64 / total as f64);
        let past = |value: f64| {
            if self.demotes_below {
                value < self.threshold
            } else {
                value > self.threshold
            }
        };
        let (value, breached, because) = match self.statistic {
            Statistic::Plain => {
                // Below the floor, the best the agent can still reach
                // there: every sample still to come a good one.
                let floor = self.min_samples.max(1);
                let to_come = if self.demotes_below {
                    floor.saturating_sub(total)
                } else {
                    0
                };
                let at_floor = (hits + to_come) as f64 / floor.max(total) as f64;
                let (samples, good) = self.samples_to_come;
                (
                    rate,
                    past(at_floor),
                    already_decided(total, floor, samples, good, at_floor),
                )
            }
            Statistic::Wilson95 => {
                let (end, bound) = if self.demotes_below {
                    ("upper", wilson_upper(hits, total))
                } else {
                    ("lower", wilson_lower(hits, total))
                };
                (
                    bound,
                    bound.is_some_and(past),
                    format!(
                        " with 95% confidence (the {end} end of its Wilson interval is {:.1}%)",
                        bound.unwrap_or_default() * 100.0
                    ),
                )
            }
        };
        let side = if self.demotes_below { "below" } else { "above" };
        let detail = if breached {
            format!(
                "{} {:.1}% over the last {} ({hits}/{total}) is {side} {:.1}%{because}",
                self.name,
                rate.unwrap_or_default() * 100.0,
                self.window,
                self.threshold * 100.0,
            )
        } else {
            String::new()
        };
        RuleReading {
            rule: self.rule,
            statistic: self.statistic,
            rate,
            value,
            threshold: self.threshold,
            demotes_when: side,
            samples: total,
            min_samples: self.min_samples,
            window: self.window,
            breached,
            detail,
        }
    }
}

/// For a rule decided below its sample floor: why the samples still to come
/// cannot change the outcome there. Empty at or above the floor.
fn already_decided(total: u64, floor: u64, samples: &str, good: &str, at_floor: f64) -> String {
    if total >= floor {
        return String::new();
    }
    format!(
        "; decided before the {floor}-sample floor: even if the next {} {samples} are all {good}, it would be {:.1}% there",
        floor - total,
        at_floor * 100.0
    )
}

fn drop_one(
    phase: Phase,
    rule: DemotionRule,
    value: f64,
    threshold: f64,
    samples: u64,
    detail: String,
) -> Demotion {
    Demotion {
        rule,
        from: phase,
        to: phase.demoted(),
        lock: false,
        value: Some(value),
        threshold: Some(threshold),
        samples,
        detail,
    }
}
