//! Approvals: operators list what waits for them and approve or deny it.
//! An approval is bound to one request hash; the agent then repeats that
//! exact request with the `approval_id`, and the engine lets it run once.

use clearance_engine::{Resource, facts::ApprovalStatus};
use clearance_store::{Effect, Store};
use jiff::Timestamp;
use serde::Serialize;

use crate::{
    Gateway, Identity, ServiceError,
    records::{ApprovalRecord, json},
    state::OpenApproval,
};

/// An approval as operators see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalView {
    /// Its id.
    pub id: String,
    /// `pending` or `approved` (unused).
    pub status: ApprovalStatus,
    /// The agent that asked.
    pub agent: String,
    /// What it asked to do.
    pub action: String,
    /// To what.
    pub resource: Resource,
    /// The plan, when the request named one.
    pub plan_id: Option<String>,
    /// Why, in the agent's words.
    pub rationale: Option<String>,
    /// The hash the approval is bound to.
    pub request_hash: String,
    /// Who approved.
    pub approvers: Vec<String>,
    /// When it was opened.
    pub created_at: String,
    /// When it stops counting.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

impl ApprovalView {
    fn of(open: &OpenApproval) -> ApprovalView {
        ApprovalView {
            id: open.row.approval.id.clone(),
            status: open.row.approval.status,
            agent: open.row.agent.clone(),
            action: open.row.action.clone(),
            resource: open.request.resource.clone(),
            plan_id: open.request.plan_id.clone(),
            rationale: open.request.rationale.clone(),
            request_hash: open.row.approval.request_hash.clone(),
            approvers: open.row.approval.approvers.clone(),
            created_at: open.row.created_at.clone(),
            expires_at: open.row.approval.expires_at,
        }
    }
}

impl<S: Store> Gateway<S> {
    /// The approvals that can still count, oldest first.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator.
    pub fn approvals(&self, identity: &Identity) -> Result<Vec<ApprovalView>, ServiceError> {
        identity.operator("list approvals")?;
        let now = self.now();
        let state = self.state();
        let mut views: Vec<ApprovalView> = state
            .approvals
            .values()
            .filter(|open| open.row.approval.expires_at > now)
            .map(ApprovalView::of)
            .collect();
        views.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(views)
    }

    /// Approves a pending approval.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `NotFound`; `Conflict` when it
    /// is not pending or has expired; `Unavailable` when not recorded.
    pub async fn approve(
        &self,
        identity: &Identity,
        id: &str,
    ) -> Result<ApprovalView, ServiceError> {
        self.settle(identity, id, true).await
    }

    /// Denies a pending approval.
    ///
    /// # Errors
    /// As [`Gateway::approve`].
    pub async fn deny(&self, identity: &Identity, id: &str) -> Result<ApprovalView, ServiceError> {
        self.settle(identity, id, false).await
    }

    async fn settle(
        &self,
        identity: &Identity,
        id: &str,
        approve: bool,
    ) -> Result<ApprovalView, ServiceError> {
        let operator = identity.operator(if approve {
            "approve requests"
        } else {
            "deny requests"
        })?;
        let now = self.now();
        let open = {
            let mut state = self.state();
            let open = state
                .approvals
                .get(id)
                .cloned()
                .ok_or_else(|| ServiceError::NotFound(format!("no open approval `{id}`")))?;
            if open.row.approval.status != ApprovalStatus::Pending {
                return Err(ServiceError::Conflict(
                    format!("approval `{id}` is already {:?}", open.row.approval.status)
                        .to_lowercase(),
                ));
            }
            if open.row.approval.expires_at <= now {
                return Err(ServiceError::Conflict(format!(
                    "approval `{id}` expired at {}",
                    open.row.approval.expires_at
                )));
            }
            // Claim it while the record is written, so a second operator
            // cannot settle it a second time meanwhile.
            state.approvals.remove(id);
            open
        };
        let status = if approve { "approved" } else { "denied" };
        let payload = json(&ApprovalRecord {
            approval_id: id,
            agent: &open.row.agent,
            action: &open.row.action,
            request_hash: &open.row.approval.request_hash,
            operator,
        })?;
        let effect = Effect::ApprovalDecided {
            id: id.to_owned(),
            status,
            approver: operator.to_owned(),
        };
        let kind = if approve {
            "approval.approved"
        } else {
            "approval.denied"
        };
        let mut settled = open.clone();
        if let Err(error) = self.append(kind, payload, vec![effect]).await {
            self.state().approvals.insert(id.to_owned(), open);
            return Err(error);
        }
        settled.row.approval.status = if approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Denied
        };
        settled.row.approval.approvers.push(operator.to_owned());
        let view = ApprovalView::of(&settled);
        if approve {
            self.state().approvals.insert(id.to_owned(), settled);
        }
        Ok(view)
    }
}
