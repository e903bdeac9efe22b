//! Binding an approval to one exact request: it counts only if it is the
//! approval the request names, approved, bound to this request's hash,
//! unexpired, unused and signed by someone.

use std::borrow::Cow;

use jiff::Timestamp;

use crate::{
    facts::{Approval, ApprovalStatus},
    request::RequestHash,
};

/// Whether the approval a request claims counts.
pub(super) enum ApprovalVerdict<'a> {
    /// The request claims no approval.
    NotClaimed,
    /// It counts.
    Valid(&'a Approval),
    /// It does not, and why.
    Invalid(Cow<'static, str>),
}

pub(super) fn check_approval<'a>(
    claimed: Option<&str>,
    stored: Option<&'a Approval>,
    hash: &RequestHash,
    now: Timestamp,
) -> ApprovalVerdict<'a> {
    let Some(claimed) = claimed else {
        return ApprovalVerdict::NotClaimed;
    };
    let invalid = |why: String| ApprovalVerdict::Invalid(Cow::Owned(why));
    let Some(approval) = stored.filter(|a| a.id == claimed) else {
        return invalid(format!("approval `{claimed}` is unknown"));
    };
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
    ApprovalVerdict::Valid(approval)
}
