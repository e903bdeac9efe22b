//! What the console shows of earned trust besides an agent's view: the
//! recommendations of assist-phase agents waiting for an operator's
//! verdict (each verdict becomes the agent's `recommendation` sample), and
//! an agent's last days — accuracy and rollback rate per UTC day, and its
//! phase changes.

use clearance_engine::{
    DecisionRequest, Identity, Outcome,
    trust::{RemediationResult, Sample},
};
use clearance_store::{LedgerFilter, Store, day_of, utc_days};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{EvidenceInput, EvidenceReceipt, Trust};
use crate::{ServiceError, identity::Permissions as _};

/// How far back recommendations wait for a verdict.
pub const RECOMMENDATION_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 30);
/// The most ungraded recommendations listed of any one agent: one agent's
/// flood must not push every other agent's off the list (their gates
/// would stall, ungraded).
pub const RECOMMENDATIONS_PER_AGENT: u32 = 20;

/// A recommendation waiting for an operator's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct RecommendationView {
    /// The `recommend` decision.
    pub decision_id: String,
    /// When it was decided.
    pub at: Timestamp,
    /// The request the agent made.
    pub request: DecisionRequest,
}

/// What the operator made of a recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Taken as it was.
    Accept,
    /// Taken after changing this much of it, 0 to 1.
    AcceptWithEdits(f64),
    /// Not taken.
    Reject,
    /// Outside what the agent may touch.
    OutOfScope,
}

/// One UTC day of an agent's evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AgentDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Graded diagnoses.
    pub diagnoses: u64,
    /// Of which right.
    pub correct: u64,
    /// Remediations that ran.
    pub remediations: u64,
    /// Of which rolled back.
    pub rolled_back: u64,
}

/// A phase change of the agent.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseEvent {
    /// Its ledger record.
    pub seq: u64,
    /// `phase.promoted` or `phase.demoted`.
    pub kind: String,
    /// When.
    pub at: String,
    /// The record's payload (from, to, cause, …).
    pub payload: serde_json::Value,
}

/// An agent's recent history.
#[derive(Clone, Debug, Serialize)]
pub struct AgentHistory {
    /// The last days, oldest first, every day present.
    pub days: Vec<AgentDay>,
    /// Phase changes, newest first.
    pub phase_changes: Vec<PhaseEvent>,
}

impl<S: Store> Trust<'_, S> {
    /// The `recommend` decisions of the last 30 days no verdict grades yet,
    /// newest first: at most `RECOMMENDATIONS_PER_AGENT` of each agent,
    /// `limit` in all.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Unavailable`.
    pub async fn recommendations(
        &self,
        identity: &Identity,
        limit: u32,
    ) -> Result<Vec<RecommendationView>, ServiceError> {
        identity.operator("read recommendations")?;
        let since = self
            .core
            .clock()
            .checked_sub(RECOMMENDATION_WINDOW)
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let mut records = self
            .core
            .store
            .ungraded_recommendations(since, RECOMMENDATIONS_PER_AGENT, limit.min(500))
            .await
            .map_err(|e| ServiceError::from_store(e, "reading recommendations"))?;
        // Taken round by round across agents; shown newest first.
        records.sort_by_key(|record| std::cmp::Reverse(record.seq));
        records
            .iter()
            .map(|record| {
                #[derive(Deserialize)]
                struct View {
                    decision_id: String,
                    request: DecisionRequest,
                }
                let view: View = serde_json::from_str(&record.payload).map_err(|e| {
                    tracing::error!(error = %e, seq = record.seq, "a decision record does not read back");
                    ServiceError::Unavailable
                })?;
                Ok(RecommendationView {
                    decision_id: view.decision_id,
                    at: record.at.parse().map_err(|_| ServiceError::Unavailable)?,
                    request: view.request,
                })
            })
            .collect()
    }

    /// Records an operator's verdict on recommendation `decision_id` as its
    /// agent's `recommendation` sample (once per decision).
    ///
    /// # Errors
    /// `Forbidden` for agents; `NotFound` for a decision that is not a
    /// recommendation; `Invalid` edit size; `Conflict` when already graded.
    pub async fn grade_recommendation(
        &self,
        identity: &Identity,
        decision_id: &str,
        verdict: Verdict,
    ) -> Result<EvidenceReceipt, ServiceError> {
        identity.operator("grade recommendations")?;
        let decision = self
            .core
            .store
            .find_decision(decision_id)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading a decision"))?
            .filter(|d| d.index.outcome == Outcome::Recommend)
            .ok_or_else(|| ServiceError::NotFound(format!("no recommendation `{decision_id}`")))?;
        let (accepted, edit_ratio, in_scope) = match verdict {
            Verdict::Accept => (true, 0.0, true),
            Verdict::AcceptWithEdits(ratio) if ratio.is_finite() && ratio > 0.0 && ratio <= 1.0 => {
                (true, ratio, true)
            }
            Verdict::AcceptWithEdits(ratio) => {
                return Err(ServiceError::invalid(
                    "edit_ratio",
                    format!("how much was changed, above 0 and at most 1, not {ratio}"),
                ));
            }
            Verdict::Reject => (false, 0.0, true),
            Verdict::OutOfScope => (false, 0.0, false),
        };
        self.record_evidence(
            identity,
            EvidenceInput {
                agent: decision.index.agent.clone(),
                kind: "recommendation".into(),
                incident_id: decision_id.to_owned(),
                at: decision.index.at,
                domain: None,
                correct: None,
                accepted: Some(accepted),
                edit_ratio: Some(edit_ratio),
                in_scope: Some(in_scope),
                detail: None,
                source: Some(format!("console:{decision_id}")),
            },
        )
        .await
    }

    /// `agent`'s last `days` UTC days of diagnoses and remediations, and
    /// its phase changes.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `NotFound`; `Unavailable`.
    pub async fn history(
        &self,
        identity: &Identity,
        agent: &str,
        days: u32,
    ) -> Result<AgentHistory, ServiceError> {
        identity.operator("read an agent's history")?;
        if self.core.bundle().agent(agent).is_none() {
            return Err(ServiceError::NotFound(format!(
                "no agent `{agent}` in the active bundle"
            )));
        }
        let (window, since) = utc_days(self.core.clock(), days.clamp(1, 366));
        let unavailable = |e| ServiceError::from_store(e, "reading an agent's history");
        let samples = self
            .core
            .store
            .evidence_since(agent, since)
            .await
            .map_err(unavailable)?;
        let mut by_day: Vec<AgentDay> = window
            .iter()
            .map(|day| AgentDay {
                day: day.clone(),
                ..AgentDay::default()
            })
            .collect();
        for row in &samples {
            let day = day_of(row.at);
            let Some(view) = window
                .iter()
                .position(|d| *d == day)
                .and_then(|i| by_day.get_mut(i))
            else {
                continue;
            };
            match &row.sample {
                Sample::Diagnosis { correct, .. } => {
                    view.diagnoses += 1;
                    view.correct += u64::from(*correct);
                }
                Sample::Remediation { result } => {
                    view.remediations += 1;
                    view.rolled_back += u64::from(*result == RemediationResult::RolledBack);
                }
                _ => {}
            }
        }
        let mut phase_changes = Vec::new();
        for kind in ["phase.demoted", "phase.promoted"] {
            let records = self
                .core
                .store
                .ledger_page(&LedgerFilter {
                    limit: 50,
                    kind: Some(kind.into()),
                    agent: Some(agent.to_owned()),
                    ..LedgerFilter::default()
                })
                .await
                .map_err(unavailable)?;
            phase_changes.extend(records.into_iter().map(|r| PhaseEvent {
                seq: r.seq,
                kind: r.kind,
                at: r.at,
                payload: serde_json::from_str(&r.payload).unwrap_or_default(),
            }));
        }
        phase_changes.sort_by_key(|change| std::cmp::Reverse(change.seq));
        Ok(AgentHistory {
            days: by_day,
            phase_changes,
        })
    }
}
