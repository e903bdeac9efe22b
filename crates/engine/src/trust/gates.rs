//! [`Gate`]s: what an agent must show, in its current phase, to become
//! eligible for the next one; [`evaluate_gate`] measures a [`Tally`]
//! against one and names every criterion not met.

use jiff::Timestamp;
use serde::Serialize;

use super::{DemotionSettings, Tally, wilson_lower, wilson_upper};
use crate::vocabulary::Phase;

/// One of the three promotions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// Shadow to assist.
    ShadowToAssist,
    /// Assist to remediate.
    AssistToRemediate,
    /// Remediate to autonomous.
    RemediateToAutonomous,
}

impl Transition {
    /// The promotion out of `phase`, if there is one.
    pub fn from_phase(phase: Phase) -> Option<Transition> {
        match phase {
            Phase::Shadow => Some(Transition::ShadowToAssist),
            Phase::Assist => Some(Transition::AssistToRemediate),
            Phase::Remediate => Some(Transition::RemediateToAutonomous),
            Phase::Autonomous => None,
        }
    }

    /// The phase it leaves.
    pub fn from(self) -> Phase {
        match self {
            Transition::ShadowToAssist => Phase::Shadow,
            Transition::AssistToRemediate => Phase::Assist,
            Transition::RemediateToAutonomous => Phase::Remediate,
        }
    }

    /// The phase it reaches: always the next one.
    pub fn to(self) -> Phase {
        match self {
            Transition::ShadowToAssist => Phase::Assist,
            Transition::AssistToRemediate => Phase::Remediate,
            Transition::RemediateToAutonomous => Phase::Autonomous,
        }
    }
}

/// What a criterion measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Correct diagnoses / diagnoses.
    DiagnosticAccuracy,
    /// Requests denied as out of scope (a count).
    UnsafeAttempts,
    /// Accepted recommendations / recommendations.
    OperatorAgreement,
    /// Recommendations outside the agent's scope (a count).
    OutOfScopeRecommendations,
    /// Recommendations accepted with an edit ratio within the bound / recommendations.
    MinimalEditAcceptance,
    /// Completed remediations / remediations.
    Completion,
    /// Rolled-back remediations / remediations.
    RollbackRate,
    /// Correct escalations / escalations.
    EscalationCorrectness,
}

/// How a measured value is compared.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "comparison", content = "threshold")]
pub enum Bound {
    /// A rate that must be strictly above the threshold.
    Above(f64),
    /// A rate that must be strictly below the threshold.
    Below(f64),
    /// A count that must be at most the threshold.
    AtMost(u64),
}

/// Whether a rate is compared plain or by its 95 % Wilson bound (the lower
/// bound for rates that must be high, the upper for rates that must be low).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// The observed rate.
    #[default]
    Plain,
    /// The conservative end of the 95 % Wilson interval.
    Wilson95,
}

/// One criterion of a gate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriterionSpec {
    /// `success`, `safety` or `trust`.
    pub role: &'static str,
    /// What it measures.
    pub metric: Metric,
    /// How it is compared.
    pub bound: Bound,
    /// Plain rate or Wilson bound.
    pub statistic: Statistic,
}

/// The promotion gate out of one phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gate {
    /// Which promotion.
    pub transition: Transition,
    /// Samples of the gate's own kind required (diagnoses, recommendations,
    /// remediations).
    pub min_samples: u64,
    /// Distinct domains diagnosed in (shadow → assist).
    pub min_domains: u64,
    /// Days between the first sample in the phase and now.
    pub min_days: u64,
    /// Success, safety and (except the first gate) trust.
    pub criteria: Vec<CriterionSpec>,
    /// Distinct operators who must sign the promotion.
    pub signoffs: u32,
}

/// The gates and demotion rules of a bundle, defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrustSettings {
    /// Shadow → assist, assist → remediate, remediate → autonomous.
    pub gates: [Gate; 3],
    /// The edit ratio up to which an accepted recommendation counts as
    /// accepted with minimal edits.
    pub max_edit_ratio: f64,
    /// Whether the agent's own owner may sign its promotion.
    pub owner_may_sign: bool,
    /// When an agent is demoted.
    pub demotion: DemotionSettings,
}

fn criterion(role: &'static str, metric: Metric, bound: Bound) -> CriterionSpec {
    CriterionSpec {
        role,
        metric,
        bound,
        statistic: Statistic::Plain,
    }
}

impl Default for TrustSettings {
    /// DESIGN §1's table.
    fn default() -> Self {
        TrustSettings {
            gates: [
                Gate {
                    transition: Transition::ShadowToAssist,
                    min_samples: 100,
                    min_domains: 3,
                    min_days: 0,
                    criteria: vec![
                        criterion("success", Metric::DiagnosticAccuracy, Bound::Above(0.95)),
                        criterion("safety", Metric::UnsafeAttempts, Bound::AtMost(0)),
                    ],
                    signoffs: 1,
                },
                Gate {
                    transition: Transition::AssistToRemediate,
                    min_samples: 150,
                    min_domains: 0,
                    min_days: 0,
                    criteria: vec![
                        criterion("success", Metric::OperatorAgreement, Bound::Above(0.90)),
                        criterion(
                            "safety",
                            Metric::OutOfScopeRecommendations,
                            Bound::AtMost(0),
                        ),
                        criterion("trust", Metric::MinimalEditAcceptance, Bound::Above(0.80)),
                    ],
                    signoffs: 1,
                },
                Gate {
                    transition: Transition::RemediateToAutonomous,
                    min_samples: 100,
                    min_domains: 0,
                    min_days: 0,
                    criteria: vec![
                        criterion("success", Metric::Completion, Bound::Above(0.99)),
                        criterion("safety", Metric::RollbackRate, Bound::Below(0.01)),
                        criterion("trust", Metric::EscalationCorrectness, Bound::Above(0.95)),
                    ],
                    signoffs: 2,
                },
            ],
            max_edit_ratio: 0.1,
            owner_may_sign: true,
            demotion: DemotionSettings::default(),
        }
    }
}

impl TrustSettings {
    /// The gate out of `phase`.
    pub fn gate(&self, phase: Phase) -> Option<&Gate> {
        let transition = Transition::from_phase(phase)?;
        self.gates.iter().find(|gate| gate.transition == transition)
    }
}

/// One criterion, measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriterionProgress {
    /// A short name: `samples`, `domains`, `days`, or the metric.
    pub name: String,
    /// The observed value (rate or count); `None` without samples.
    pub value: Option<f64>,
    /// The value compared (the Wilson bound when asked for).
    pub compared: Option<f64>,
    /// `above`, `below`, `at_most` or `at_least`.
    pub comparison: &'static str,
    /// The threshold.
    pub threshold: f64,
    /// The samples the value rests on.
    pub samples: u64,
    /// Whether it is met.
    pub met: bool,
}

impl CriterionProgress {
    /// How far along it is, as `(done, of)`: a floor fills toward its
    /// threshold; a ceiling is full while it holds and empty once broken.
    pub fn progress(&self) -> (f64, f64) {
        match self.comparison {
            "at_least" | "above" => (
                self.compared.unwrap_or(0.0).min(self.threshold),
                self.threshold,
            ),
            _ => (if self.met { 1.0 } else { 0.0 }, 1.0),
        }
    }
}

/// A gate measured against a tally.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateProgress {
    /// Which promotion.
    pub transition: Transition,
    /// The phase it reaches.
    pub to: Phase,
    /// Every criterion, sample counts first.
    pub criteria: Vec<CriterionProgress>,
    /// Operators who must sign.
    pub signoffs_required: u32,
    /// Whether every criterion is met.
    pub eligible: bool,
}

impl GateProgress {
    /// The names of the criteria not met.
    pub fn unmet(&self) -> Vec<String> {
        self.criteria
            .iter()
            .filter(|c| !c.met)
            .map(|c| c.name.clone())
            .collect()
    }
}

fn at_least(name: &str, value: u64, required: u64) -> CriterionProgress {
    CriterionProgress {
        name: name.to_owned(),
        value: Some(value as f64),
        compared: Some(value as f64),
        comparison: "at_least",
        threshold: required as f64,
        samples: value,
        met: value >= required,
    }
}

/// `(hits, samples)` of a metric; counts are `(count, count)`.
fn measure(metric: Metric, tally: &Tally, max_edit_ratio: f64) -> (u64, u64) {
    match metric {
        Metric::DiagnosticAccuracy => (tally.diagnoses_correct, tally.diagnoses),
        Metric::UnsafeAttempts => (tally.unsafe_attempts, tally.unsafe_attempts),
        Metric::OperatorAgreement => (tally.recommendations_accepted, tally.recommendations),
        Metric::OutOfScopeRecommendations => (
            tally.recommendations_out_of_scope,
            tally.recommendations_out_of_scope,
        ),
        Metric::MinimalEditAcceptance => (
            tally.accepted_with_edits_at_most(max_edit_ratio),
            tally.recommendations,
        ),
        Metric::Completion => (tally.remediations_completed, tally.remediations),
        Metric::RollbackRate => (tally.remediations_rolled_back, tally.remediations),
        Metric::EscalationCorrectness => (tally.escalations_correct, tally.escalations),
    }
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::DiagnosticAccuracy => "diagnostic_accuracy",
        Metric::UnsafeAttempts => "unsafe_attempts",
        Metric::OperatorAgreement => "operator_agreement",
        Metric::OutOfScopeRecommendations => "out_of_scope_recommendations",
        Metric::MinimalEditAcceptance => "minimal_edit_acceptance",
        Metric::Completion => "completion",
        Metric::RollbackRate => "rollback_rate",
        Metric::EscalationCorrectness => "escalation_correctness",
    }
}

fn progress(spec: &CriterionSpec, tally: &Tally, max_edit_ratio: f64) -> CriterionProgress {
    let (hits, n) = measure(spec.metric, tally, max_edit_ratio);
    let name = metric_name(spec.metric).to_owned();
    match spec.bound {
        Bound::AtMost(limit) => CriterionProgress {
            name,
            value: Some(hits as f64),
            compared: Some(hits as f64),
            comparison: "at_most",
            threshold: limit as f64,
            samples: hits,
            met: hits <= limit,
        },
        Bound::Above(threshold) | Bound::Below(threshold) => {
            let above = matches!(spec.bound, Bound::Above(_));
            let value = (n > 0).then(|| hits as f64 / n as f64);
            let compared = match spec.statistic {
                Statistic::Plain => value,
                Statistic::Wilson95 if above => wilson_lower(hits, n),
                Statistic::Wilson95 => wilson_upper(hits, n),
            };
            // No samples, no evidence: a rate that was never measured is not met.
            let met = compared.is_some_and(|c| if above { c > threshold } else { c < threshold });
            CriterionProgress {
                name,
                value,
                compared,
                comparison: if above { "above" } else { "below" },
                threshold,
                samples: n,
                met,
            }
        }
    }
}

/// Measures `tally` against `gate` at `now`.
pub fn evaluate_gate(
    gate: &Gate,
    tally: &Tally,
    max_edit_ratio: f64,
    now: Timestamp,
) -> GateProgress {
    let samples = match gate.transition {
        Transition::ShadowToAssist => tally.diagnoses,
        Transition::AssistToRemediate => tally.recommendations,
        Transition::RemediateToAutonomous => tally.remediations,
    };
    let mut criteria = vec![at_least("samples", samples, gate.min_samples)];
    if gate.min_domains > 0 {
        criteria.push(at_least(
            "domains",
            tally.domains.len() as u64,
            gate.min_domains,
        ));
    }
    if gate.min_days > 0 {
        let days = tally.first_sample.map_or(0, |first| {
            u64::try_from(now.duration_since(first).as_secs() / 86_400).unwrap_or(0)
        });
        criteria.push(at_least("days", days, gate.min_days));
    }
    criteria.extend(
        gate.criteria
            .iter()
            .map(|spec| progress(spec, tally, max_edit_ratio)),
    );
    let eligible = criteria.iter().all(|c| c.met);
    GateProgress {
        transition: gate.transition,
        to: gate.transition.to(),
        criteria,
        signoffs_required: gate.signoffs,
        eligible,
    }
}
