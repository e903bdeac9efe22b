//! Deciding a request: authenticate the asker as the agent it asks for,
//! refuse malformed input outright, let the engine decide on the facts of
//! this instant, take the reservations an `allow` implies, and answer only
//! once the decision is in the ledger.

use clearance_engine::{
    Decision, DecisionRequest, Outcome,
    decision::CLOCK_SKEW,
    facts::{Approval, ApprovalStatus, Execution},
    trust::Sample,
};
use clearance_store::{ApprovalRow, DecisionRow, Effect, Store, timestamp_text};
use serde::Serialize;

use crate::{
    Gateway, Identity, ServiceError,
    gateway::hard_stop_horizon,
    identity::random_id,
    records::{DecisionRecord, json},
    state::OpenApproval,
};

/// The answer to an agent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct DecisionAnswer {
    /// The decision's id, for outcome reports.
    pub decision_id: String,
    /// Its ledger record.
    pub ledger_seq: u64,
    /// The decision itself; `approval_id` is the approval to wait for when
    /// `pending`, the one used when an approved request is allowed.
    #[serde(flatten)]
    pub decision: Decision,
}

impl<S: Store> Gateway<S> {
    /// Decides `request` for the agent `identity` authenticates.
    ///
    /// # Errors
    /// `Forbidden` for anyone but that agent; `Invalid` for an unknown agent
    /// or a snapshot from the future; `Unavailable` when the ledger cannot
    /// record the decision — then nothing was decided.
    pub async fn decide(
        &self,
        identity: &Identity,
        request: DecisionRequest,
    ) -> Result<DecisionAnswer, ServiceError> {
        let Identity::Agent { agent } = identity else {
            return Err(ServiceError::Forbidden(format!(
                "only agents ask for decisions; this is a {} token",
                identity.kind()
            )));
        };
        if request.agent != *agent {
            return Err(ServiceError::Forbidden(format!(
                "this token is bound to agent `{agent}`; it cannot ask as `{}`",
                request.agent
            )));
        }
        let bundle = self.bundle();
        let Some(declared) = bundle.agent(agent) else {
            return Err(ServiceError::invalid(
                "agent",
                format!("agent `{agent}` is not defined in the active bundle"),
            ));
        };
        let now = self.now();
        if let Some(snapshot) = &request.snapshot
            && snapshot.observed_at > now.checked_add(CLOCK_SKEW).unwrap_or(now)
        {
            return Err(ServiceError::invalid(
                "snapshot.observed_at",
                format!("{} is in the future (now is {now})", snapshot.observed_at),
            ));
        }
        let decision_id = self.next_decision_id();
        let (decision, opened) = {
            let mut state = self.state();
            let facts = state.facts(&bundle, &request, now);
            let mut decision = bundle.decide(&request, &facts);
            if decision.is_execution() {
                // Reserve before answering: a concurrent request must see
                // this execution and this approval as spent.
                state
                    .executions
                    .entry(agent.clone())
                    .or_default()
                    .push_back(Execution {
                        impact: decision.impact,
                        at: now,
                    });
                let horizon = now.checked_sub(hard_stop_horizon(&bundle)).unwrap_or(now);
                state.prune_executions(agent, horizon);
                if let Some(used) = &decision.approval_id {
                    state.approvals.remove(used);
                }
            }
            let opened = match decision.outcome {
                Outcome::Pending => {
                    let row = self.open_approval(&bundle, &request, &decision, now)?;
                    decision.approval_id = Some(row.approval.id.clone());
                    Some(row)
                }
                _ => None,
            };
            (decision, opened)
        };
        let execution = decision.is_execution();
        let payload = json(&DecisionRecord {
            decision_id: &decision_id,
            agent,
            identity,
            credential_scope: &declared.credential_scope,
            policy_owner: bundle.policy_owner(),
            request: &request,
            decision: &decision,
        })?;
        let mut effects = vec![Effect::Decision(DecisionRow {
            id: decision_id.clone(),
            seq: 0,
            agent: agent.clone(),
            action: request.action.clone(),
            outcome: decision.outcome.name().to_owned(),
            impact: decision.impact.name().to_owned(),
            execution,
            at: timestamp_text(now),
            reported: None,
        })];
        if let Some(row) = &opened {
            effects.push(Effect::ApprovalOpened(row.clone()));
        }
        // Evidence against the agent's next promotion, recorded with the decision.
        let unsafe_attempt = decision.is_unsafe_attempt();
        if unsafe_attempt {
            effects.push(Self::derived_evidence(
                agent,
                &Sample::UnsafeAttempt,
                &decision_id,
                now,
            )?);
        }
        if execution && let Some(used) = &decision.approval_id {
            effects.push(Effect::ApprovalUsed(used.clone()));
        }
        let receipt = self.append("decision", payload, effects).await?;
        if let Some(row) = opened {
            self.state()
                .approvals
                .insert(row.approval.id.clone(), OpenApproval { row, request });
        }
        if unsafe_attempt {
            self.count_sample(agent, &Sample::UnsafeAttempt, now)
                .await?;
        }
        self.metrics.decision(
            decision.outcome.name(),
            decision.impact.name(),
            decision.blocked_unsafe_action(),
        );
        Ok(DecisionAnswer {
            decision_id,
            ledger_seq: receipt.seq,
            decision,
        })
    }

    fn open_approval(
        &self,
        bundle: &clearance_engine::Bundle,
        request: &DecisionRequest,
        decision: &Decision,
        now: jiff::Timestamp,
    ) -> Result<ApprovalRow, ServiceError> {
        let expires_at = now
            .checked_add(bundle.settings().approval_expire_after.as_signed())
            .unwrap_or(now);
        Ok(ApprovalRow {
            approval: Approval {
                id: random_id("apr")?,
                request_hash: decision.request_hash.to_string(),
                status: ApprovalStatus::Pending,
                approvers: Vec::new(),
                expires_at,
                used: false,
            },
            agent: request.agent.clone(),
            action: request.action.clone(),
            request: json(request)?,
            created_at: timestamp_text(now),
        })
    }
}
