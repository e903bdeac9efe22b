//! Binding an approval to one exact request: it counts only if it is the
//! approval the request names, approved, bound to this request's hash,
//! unexpired, unused and signed by as many operators as its rule asks.
//! A repeat that differs from the approved request only in its snapshot
//! version found the state drifted: the approval no longer describes the
//! world, and the service voids it.

use std::borrow::Cow;

use jiff::Timestamp;

use crate::{
    facts::{Approval, ApprovalStatus},
    request::{DecisionRequest, RequestHash},
};

/// Whether the approval a request claims counts.
pub(super) enum ApprovalVerdict<'a> {
    /// The request claims no approval.
    NotClaimed,
    /// It counts.
    Valid(&'a Approval),
    /// It does not, and why.
    Invalid(Cow<'static, str>),
    /// It was given on another snapshot version of the same request.
    Drifted(Cow<'static, str>),
}

impl Approval {
    /// Whether as many distinct operators approved it as it requires.
    pub fn has_enough_approvers(&self) -> bool {
        self.approvers.len() as u64 >= u64::from(self.required)
    }

    /// Counts `operator`'s approving vote, while it is pending and once per
    /// operator; the vote that reaches `required` approves it. Whether the
    /// vote counted. The store applies the same rule in its transaction.
    pub fn vote(&mut self, operator: &str) -> bool {
        if self.status != ApprovalStatus::Pending || self.approvers.iter().any(|a| a == operator) {
            return false;
        }
        self.approvers.push(operator.to_owned());
        if self.has_enough_approvers() {
            self.status = ApprovalStatus::Approved;
        }
        true
    }

    /// Whether `request` is the request this approval waits on, planned on
    /// another snapshot version: the state moved since it was approved.
    pub fn drifted_from(&self, request: &DecisionRequest) -> bool {
        let (Some(approved), Some(snapshot)) = (&self.snapshot_version, &request.snapshot) else {
            return false;
        };
        if *approved == snapshot.version {
            return false;
        }
        let mut as_approved = request.clone();
        if let Some(snapshot) = &mut as_approved.snapshot {
            snapshot.version.clone_from(approved);
        }
        RequestHash::of(&as_approved).to_string() == self.request_hash
    }
}

pub(super) fn check_approval<'a>(
    request: &DecisionRequest,
    stored: Option<&'a Approval>,
    hash: &RequestHash,
    now: Timestamp,
) -> ApprovalVerdict<'a> {
    let Some(claimed) = request.approval_id.as_deref() else {
        return ApprovalVerdict::NotClaimed;
    };
    let invalid = |why: String| ApprovalVerdict::Invalid(Cow::Owned(why));
    let Some(approval) = stored.filter(|a| a.id == claimed) else {
        return invalid(format!("approval `{claimed}` is unknown"));
    };
    if approval.drifted_from(request) {
        return ApprovalVerdict::Drifted(Cow::Owned(format!(
            "approval `{claimed}` was given on snapshot version `{}`; this request carries `{}`: the state drifted, the approval is void — plan again and ask anew",
            approval.snapshot_version.as_deref().unwrap_or_default(),
            request
                .snapshot
                .as_ref()
                .map(|s| s.version.as_str())
                .unwrap_or_default()
        )));
    }
    match approval.status {
        ApprovalStatus::Approved => {}
        ApprovalStatus::Pending => {
            return invalid(format!("approval `{claimed}` is still pending"));
        }
        ApprovalStatus::Denied => return invalid(format!("approval `{claimed}` was denied")),
        ApprovalStatus::Voided => {
            return invalid(format!("approval `{claimed}` was voided by a kill switch"));
        }
    }
    if approval.request_hash != hash.to_string() {
        return invalid(format!(
            "approval `{claimed}` is bound to a different request ({}), not this one ({hash})",
            approval.request_hash
        ));
    }
    if approval.expires_at <= now {
        return invalid(format!(
            "approval `{claimed}` expired at {}",
            approval.expires_at
        ));
    }
    if approval.used {
        return invalid(format!(
            "approval `{claimed}` was already used: an approval executes once"
        ));
    }
    if approval.approvers.is_empty() {
        return invalid(format!("approval `{claimed}` names no approver"));
    }
    if !approval.has_enough_approvers() {
        return invalid(format!(
            "approval `{claimed}` has {} of the {} approvals it needs",
            approval.approvers.len(),
            approval.required
        ));
    }
    ApprovalVerdict::Valid(approval)
}
