//! What operators and agents see of earned trust: an agent's standing and
//! gate progress, the evidence counted in its phase, promotions, and the
//! words a refusal names unmet criteria in.

use clearance_engine::{
    Phase,
    trust::{Demotion, GateProgress, Tally},
};
use clearance_store::PromotionRow;
use jiff::Timestamp;
use serde::Serialize;

/// What recording a sample did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceReceipt {
    /// The sample's ledger record.
    pub ledger_seq: u64,
    /// Whether it counts toward the agent's current phase (taken after the phase began).
    pub counted: bool,
    /// The demotion it triggered, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub demotion: Option<Demotion>,
}

/// The evidence since the agent entered its phase, as counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceSummary {
    /// Diagnoses graded / correct.
    pub diagnoses: u64,
    pub diagnoses_correct: u64,
    /// Distinct domains diagnosed in.
    pub domains: Vec<String>,
    /// Requests denied as out of scope.
    pub unsafe_attempts: u64,
    /// Recommendations graded / accepted / out of scope.
    pub recommendations: u64,
    pub recommendations_accepted: u64,
    pub recommendations_out_of_scope: u64,
    /// Escalations graded / correct.
    pub escalations: u64,
    pub escalations_correct: u64,
    /// Remediations run / completed / rolled back.
    pub remediations: u64,
    pub remediations_completed: u64,
    pub remediations_rolled_back: u64,
    /// Actions outside the permitted scope.
    pub out_of_scope_actions: u64,
}

impl From<&Tally> for EvidenceSummary {
    fn from(t: &Tally) -> Self {
        EvidenceSummary {
            diagnoses: t.diagnoses,
            diagnoses_correct: t.diagnoses_correct,
            domains: t.domains.iter().cloned().collect(),
            unsafe_attempts: t.unsafe_attempts,
            recommendations: t.recommendations,
            recommendations_accepted: t.recommendations_accepted,
            recommendations_out_of_scope: t.recommendations_out_of_scope,
            escalations: t.escalations,
            escalations_correct: t.escalations_correct,
            remediations: t.remediations,
            remediations_completed: t.remediations_completed,
            remediations_rolled_back: t.remediations_rolled_back,
            out_of_scope_actions: t.out_of_scope_actions,
        }
    }
}

/// A promotion as operators see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct PromotionView {
    /// Its id.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// From this phase.
    pub from: Phase,
    /// To this one.
    pub to: Phase,
    /// Who opened it.
    pub opened_by: String,
    /// The operators who signed, in order.
    pub signoffs: Vec<String>,
    /// How many distinct operators must sign.
    pub signoffs_required: u32,
    /// `open` or `completed`.
    pub status: &'static str,
}

impl PromotionView {
    pub(crate) fn of(
        row: &PromotionRow,
        signoffs_required: u32,
        status: &'static str,
    ) -> PromotionView {
        PromotionView {
            id: row.id.clone(),
            agent: row.agent.clone(),
            from: row.from,
            to: row.to,
            opened_by: row.opened_by.clone(),
            signoffs: row.signoffs.clone(),
            signoffs_required,
            status,
        }
    }
}

/// An agent's standing and its progress toward the next phase.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct AgentView {
    /// Its id.
    pub id: String,
    /// The human accountable for it.
    pub owner: String,
    /// Its current phase.
    pub phase: Phase,
    /// Locked until an investigation is recorded.
    pub locked: bool,
    /// When the current phase began (absent: since the agent was declared).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub phase_since: Option<Timestamp>,
    /// Evidence gathered in this phase.
    pub evidence: EvidenceSummary,
    /// The gate to the next phase, measured; absent for autonomous agents.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub next_gate: Option<GateProgress>,
    /// Whether a promotion may be opened now.
    pub eligible: bool,
    /// The promotion waiting for sign-offs, if any.
    pub open_promotion: Option<PromotionView>,
    /// Each rate rule of demotion now: its value beside its threshold
    /// (an agent in shadow has no lower phase to go to).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub demotion_rules: Vec<clearance_engine::trust::RuleReading>,
    /// Where publishing its latest phase change to the GitOps repository
    /// stands (absent without `gitops:` or before any change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<crate::Publication>,
}

pub(crate) fn demotion_cause(demotion: &Demotion) -> &'static str {
    match demotion.rule {
        clearance_engine::trust::DemotionRule::AccuracyDrift => "accuracy_drift",
        clearance_engine::trust::DemotionRule::RollbackRate => "rollback_rate",
        clearance_engine::trust::DemotionRule::OutOfScopeAction => "out_of_scope_action",
    }
}

pub(crate) fn gate_name(gate: &GateProgress) -> String {
    format!("{} → {}", gate.transition.from(), gate.to)
}

/// `samples 40/100, diagnostic_accuracy 0.91 (needs above 0.95)`.
pub(crate) fn describe_unmet(gate: &GateProgress) -> String {
    gate.criteria
        .iter()
        .filter(|c| !c.met)
        .map(|c| match c.compared {
            Some(value) if c.comparison == "at_least" => {
                format!("{} {value}/{}", c.name, c.threshold)
            }
            Some(value) => format!(
                "{} {value:.3} (needs {} {})",
                c.name,
                c.comparison.replace('_', " "),
                c.threshold
            ),
            None => format!("{} (no samples)", c.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
