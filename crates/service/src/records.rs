//! The payload of each kind of ledger record, as JSON. `docs/ledger.md`
//! documents these shapes; keep the two in step.

use clearance_engine::{Decision, DecisionRequest};
use serde::Serialize;

use crate::{Identity, ServiceError};

/// `decision`: everything needed to explain and replay it.
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
}

/// `approval.approved`, `approval.denied`.
#[derive(Serialize)]
pub(crate) struct ApprovalRecord<'a> {
    pub approval_id: &'a str,
    pub agent: &'a str,
    pub action: &'a str,
    pub request_hash: &'a str,
    pub operator: &'a str,
}

/// `kill_switch.tripped`, `kill_switch.reset`.
#[derive(Serialize)]
pub(crate) struct KillSwitchRecord<'a> {
    pub kill_switch_id: &'a str,
    pub scope: &'a str,
    pub target: Option<&'a str>,
    pub reason: &'a str,
    pub operator: &'a str,
    /// Pending approvals the trip voided.
    pub voided_approvals: &'a [String],
}

/// `bundle.activated`.
#[derive(Serialize)]
pub(crate) struct BundleRecord<'a> {
    pub revision: &'a str,
    pub policy_owner: &'a str,
    pub agents: usize,
    pub actions: usize,
}

/// `token.issued`: never the token, only its hash.
#[derive(Serialize)]
pub(crate) struct TokenRecord<'a> {
    pub identity: &'a Identity,
    pub token_sha256: &'a str,
}

pub(crate) fn json(value: &impl Serialize) -> Result<String, ServiceError> {
    serde_json::to_string(value)
        .map_err(|e| ServiceError::Unavailable(format!("record did not serialise: {e}")))
}
