//! [`ApprovalDetail`]: everything an operator needs to judge one pending
//! request on one page — the agent and its phase, the exact request, and
//! what the engine would answer if the operator approved it now (each of
//! the five checks with its inputs: snapshot age, simulation, rollback
//! playbook and its last test, hard stops), the rule and who else signed.
//!
//! The preview is the engine's own decision on the facts as they stand,
//! with the approval taken as approved; nothing here decides anything.

use clearance_engine::{Decision, Identity, facts::ApprovalStatus};
use clearance_store::Store;
use jiff::Timestamp;
use serde::Serialize;

use crate::{
    ApprovalView, ServiceError,
    approvals::{Approvals, barred},
    identity::Permissions as _,
};

/// A hard stop bounding the request, and how much of it is spent.
#[derive(Clone, Debug, Serialize)]
pub struct HardStopBudget {
    /// The lowest impact it counts.
    pub impact: clearance_engine::Impact,
    /// Executions its window allows.
    pub max: u32,
    /// The window, as written (`1h`).
    pub per: String,
    /// Executions counted in the window now.
    pub used: u32,
}

/// One pending request, as the approval page shows it.
#[derive(Clone, Debug)]
pub struct ApprovalDetail {
    /// The approval.
    pub approval: ApprovalView,
    /// The agent's accountable human.
    pub agent_owner: String,
    /// The agent's phase now.
    pub agent_phase: Option<clearance_engine::Phase>,
    /// Who signed so far, with their verdicts.
    pub votes: Vec<(String, ApprovalStatus)>,
    /// What the repeat would get once approved, on today's facts.
    pub preview: Decision,
    /// The rollback playbook: its description and cost.
    pub rollback: Option<clearance_engine::bundle::Rollback>,
    /// Hard stops bounding it.
    pub hard_stops: Vec<HardStopBudget>,
    /// Why the viewer may not approve it, when barred.
    pub barred: Option<String>,
    /// When it was looked at.
    pub now: Timestamp,
}

impl<S: Store> Approvals<'_, S> {
    /// Approval `id` as the console shows it to `identity`.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `NotFound` when it is not
    /// open (pending, or approved and unused).
    pub async fn detail(
        &self,
        identity: &Identity,
        id: &str,
    ) -> Result<ApprovalDetail, ServiceError> {
        let operator = identity.operator("read approvals")?;
        let trips = self.recent_trips().await?;
        let (votes, arguments) = match self.core.store.find_approval(id).await {
            Ok(Some(found)) => (found.votes, found.row.request.arguments),
            Ok(None) => (Vec::new(), None),
            Err(e) => return Err(ServiceError::from_store(e, "reading an approval")),
        };
        let bundle = self.core.bundle();
        let now = self.core.clock();
        let state = self.core.state();
        let row = state
            .approvals
            .get(id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("approval `{id}` is not open")))?;
        let mut repeat = row.request.clone();
        repeat.approval_id = Some(id.to_owned());
        let mut facts = state.facts(&bundle, &repeat, now);
        // As if approved by enough operators: what the repeat would get.
        if let Some(approval) = &mut facts.approval {
            approval.status = ApprovalStatus::Approved;
            while approval.approvers.len() < approval.required as usize {
                approval
                    .approvers
                    .push(format!("(approver {})", approval.approvers.len() + 1));
            }
        }
        let preview = bundle.decide(&repeat, &facts);
        let declared = bundle.agent(&row.agent);
        let agent_owner = declared.map(|a| a.owner.clone()).unwrap_or_default();
        let action = bundle.action(&row.request.action);
        let executions = state.executions.get(&row.agent);
        let hard_stops = bundle
            .hard_stops()
            .iter()
            .filter(|stop| stop.applies_to(&row.agent))
            .filter(|stop| action.is_some_and(|a| a.impact >= stop.impact))
            .map(|stop| HardStopBudget {
                impact: stop.impact,
                max: stop.max,
                per: stop.per.to_string(),
                used: executions
                    .into_iter()
                    .flatten()
                    .filter(|e| stop.counts(e, now))
                    .count()
                    .try_into()
                    .unwrap_or(u32::MAX),
            })
            .collect();
        let barred = barred(&bundle, &row, operator, &trips);
        // The state keeps no arguments; the store does.
        let approval = ApprovalView {
            arguments,
            ..ApprovalView::of(&row)
        };
        Ok(ApprovalDetail {
            approval,
            agent_phase: state.phase(&bundle, &row.agent),
            agent_owner,
            votes,
            preview,
            rollback: action
                .and_then(|a| a.rollback.as_deref())
                .and_then(|p| bundle.rollback(p))
                .cloned(),
            hard_stops,
            barred,
            now,
        })
    }
}
