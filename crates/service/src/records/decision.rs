//! The `decision` record: everything needed to explain and replay a
//! decision, and what it changes — its index row, the approval it opens or
//! spends, and the unsafe attempt it counts against its agent.

use clearance_engine::bundle::approvals::Requirement;
use clearance_engine::{
    Decision, DecisionRequest, Identity, Impact, Level, Outcome,
    decision::{is_blocked_unsafe_action, is_execution, is_unsafe_attempt},
    facts::{Approval, ApprovalStatus, RecordedFacts},
    trust::Sample,
};
use clearance_store::{ApprovalRow, ApprovalVoid, DecisionIndex, Effect, EvidenceRow};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{RecordError, parse};

/// `decision`, as written.
#[derive(Serialize)]
pub(crate) struct DecisionRecord<'a> {
    pub decision_id: &'a str,
    /// Top-level so that audits can filter by agent.
    pub agent: &'a str,
    pub identity: &'a Identity,
    pub credential_scope: &'a str,
    pub policy_owner: &'a str,
    pub request: &'a DecisionRequest,
    pub decision: &'a Decision,
    /// What the decision read of the world, so that it can be made again
    /// offline (`clearance replay`, `clearance what-if`). Absent from
    /// records written before replay existed.
    pub facts: &'a RecordedFacts,
    /// When the approval a pending decision opens stops counting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<Timestamp>,
    /// A pending decision that waits on the approval its identical request
    /// already opened, instead of opening another.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approval_reused: bool,
    /// What the approval a pending decision opens needs: how many
    /// distinct operators, under which `approvals.rules` entry. Absent: one
    /// operator, no rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_requirement: Option<&'a Requirement>,
    /// The approval this request voided: it repeated the approved request
    /// on another snapshot version (the state drifted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voided_approval: Option<&'a str>,
    /// `gateway`: clearance's MCP gateway runs what this allows and alone
    /// reports its outcome. Absent: the agent runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed_by: Option<&'static str>,
}

/// What a decision's effects depend on, whether taken from the decision at
/// hand or read back from its record.
pub(crate) struct DecisionFacts<'a> {
    pub decision_id: &'a str,
    pub agent: &'a str,
    pub request: &'a DecisionRequest,
    pub outcome: Outcome,
    pub impact: Impact,
    pub level: Level,
    pub first_reason: Option<&'a str>,
    pub request_hash: &'a str,
    pub approval_id: Option<&'a str>,
    pub approval_expires_at: Option<Timestamp>,
    pub approval_reused: bool,
    pub approval_requirement: Option<&'a Requirement>,
    pub voided_approval: Option<&'a str>,
}

impl<'a> DecisionFacts<'a> {
    pub(crate) fn of(record: &DecisionRecord<'a>, request_hash: &'a str) -> DecisionFacts<'a> {
        DecisionFacts {
            decision_id: record.decision_id,
            agent: record.agent,
            request: record.request,
            outcome: record.decision.outcome,
            impact: record.decision.impact,
            level: record.decision.level,
            first_reason: record.decision.reasons.first().map(|r| r.code),
            request_hash,
            approval_id: record.decision.approval_id.as_deref(),
            approval_expires_at: record.approval_expires_at,
            approval_reused: record.approval_reused,
            approval_requirement: record.approval_requirement,
            voided_approval: record.voided_approval,
        }
    }
}

/// What a decision decided at `at` changes.
pub(crate) fn decision_effects(facts: &DecisionFacts<'_>, at: Timestamp) -> Vec<Effect> {
    let execution = is_execution(facts.outcome, facts.level, facts.impact);
    let mut effects = vec![Effect::DecisionRecorded(DecisionIndex {
        id: facts.decision_id.to_owned(),
        agent: facts.agent.to_owned(),
        action: facts.request.action.clone(),
        outcome: facts.outcome,
        impact: facts.impact,
        execution,
        blocked: is_blocked_unsafe_action(facts.outcome, facts.level, facts.impact),
        at,
    })];
    match (facts.outcome, facts.approval_id) {
        // It waits on the approval its identical request opened.
        (Outcome::Pending, Some(_)) if facts.approval_reused => {}
        (Outcome::Pending, Some(id)) => {
            effects.push(Effect::ApprovalOpened(Box::new(ApprovalRow {
                approval: Approval {
                    id: id.to_owned(),
                    request_hash: facts.request_hash.to_owned(),
                    status: ApprovalStatus::Pending,
                    approvers: Vec::new(),
                    // A pending decision without an expiry was written before
                    // expiries were recorded: it counts as already expired.
                    expires_at: facts.approval_expires_at.unwrap_or(at),
                    used: false,
                    required: facts.approval_requirement.map_or(1, |r| r.approvers),
                    snapshot_version: facts.request.snapshot.as_ref().map(|s| s.version.clone()),
                },
                agent: facts.agent.to_owned(),
                request: facts.request.clone(),
                created_at: at,
                rule: facts.approval_requirement.and_then(|r| r.rule.clone()),
            })))
        }
        (Outcome::Allow, Some(id)) if execution => {
            effects.push(Effect::ApprovalUsed { id: id.to_owned() });
        }
        _ => {}
    }
    if let Some(id) = facts.voided_approval {
        effects.push(Effect::ApprovalsVoided {
            ids: vec![id.to_owned()],
            because: ApprovalVoid::Drifted,
        });
    }
    if is_unsafe_attempt(facts.outcome, facts.first_reason) {
        effects.push(Effect::EvidenceRecorded(EvidenceRow {
            agent: facts.agent.to_owned(),
            incident_id: facts.decision_id.to_owned(),
            at,
            sample: Sample::UnsafeAttempt,
        }));
    }
    effects
}

#[derive(Deserialize)]
struct DecisionView {
    decision_id: String,
    agent: String,
    request: DecisionRequest,
    decision: DecidedView,
    #[serde(default)]
    approval_expires_at: Option<Timestamp>,
    #[serde(default)]
    approval_reused: bool,
    #[serde(default)]
    approval_requirement: Option<Requirement>,
    #[serde(default)]
    voided_approval: Option<String>,
}

#[derive(Deserialize)]
struct DecidedView {
    outcome: Outcome,
    impact: Impact,
    level: Level,
    #[serde(default)]
    reasons: Vec<ReasonView>,
    request_hash: String,
    #[serde(default)]
    approval_id: Option<String>,
}

#[derive(Deserialize)]
struct ReasonView {
    code: String,
}

pub(super) fn effects_from_payload(
    payload: &str,
    at: Timestamp,
) -> Result<Vec<Effect>, RecordError> {
    let view: DecisionView = parse("decision", payload)?;
    let facts = DecisionFacts {
        decision_id: &view.decision_id,
        agent: &view.agent,
        request: &view.request,
        outcome: view.decision.outcome,
        impact: view.decision.impact,
        level: view.decision.level,
        first_reason: view.decision.reasons.first().map(|r| r.code.as_str()),
        request_hash: &view.decision.request_hash,
        approval_id: view.decision.approval_id.as_deref(),
        approval_expires_at: view.approval_expires_at,
        approval_reused: view.approval_reused,
        approval_requirement: view.approval_requirement.as_ref(),
        voided_approval: view.voided_approval.as_deref(),
    };
    Ok(decision_effects(&facts, at))
}
