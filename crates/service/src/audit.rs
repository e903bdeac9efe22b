//! [`Audit`]: reading the ledger back — pages of records, one decision's
//! lineage, and the full verification.

use clearance_engine::{Identity, facts::ApprovalStatus, ledger::LedgerRecord};
use clearance_store::{AuditQuery, LedgerFilter, Store, VerifyReport};
use jiff::Timestamp;
use serde::Deserialize;

use crate::{ServiceError, core::Core, identity::Permissions as _};

/// How many records a lineage reads per page while looking for a
/// decision's later records.
const LINEAGE_PAGE: u32 = 1_000;

/// One decision and what followed from it, as the ledger holds them.
#[derive(Clone, Debug)]
pub struct Lineage {
    /// The `decision` record: the request, the identity, every check.
    pub decision: LedgerRecord,
    /// The approval the decision opened (pending) or ran on (allow).
    pub approval: Option<ApprovalLineage>,
    /// The `approval.approved` / `approval.denied` records of the approval
    /// this decision opened, in ledger order.
    pub approval_records: Vec<LedgerRecord>,
    /// The `platform_event` records of the platform's audit log that
    /// matched it (one at most: each decision is matched once).
    pub platform_events: Vec<LedgerRecord>,
    /// The `outcome` record, once reported.
    pub outcome: Option<LedgerRecord>,
}

/// Where a decision's approval stands.
#[derive(Clone, Debug)]
pub struct ApprovalLineage {
    /// Its id.
    pub id: String,
    /// Whether this decision opened it (else it ran on it).
    pub opened_here: bool,
    /// `pending`, `approved`, `denied` or `voided`.
    pub status: ApprovalStatus,
    /// Whether a request ran on it.
    pub used: bool,
    /// The operators who settled it, with their verdicts, in order.
    pub votes: Vec<(String, ApprovalStatus)>,
    /// When it stops counting.
    pub expires_at: Timestamp,
}

/// What a lineage reads of a decision record.
#[derive(Deserialize)]
struct DecisionFields {
    agent: String,
    decision: DecisionPart,
    #[serde(default)]
    approval_reused: bool,
}

#[derive(Deserialize)]
struct DecisionPart {
    outcome: clearance_engine::Outcome,
    approval_id: Option<String>,
}

impl DecisionFields {
    /// Whether the decision opened its approval: pending, and not waiting
    /// on one its identical request had already opened.
    fn opened_approval(&self) -> bool {
        self.decision.outcome == clearance_engine::Outcome::Pending && !self.approval_reused
    }
}

/// What a lineage reads of the records that may follow a decision.
#[derive(Deserialize)]
struct Follower {
    decision_id: Option<String>,
    approval_id: Option<String>,
}

/// The largest page an audit returns.
pub const MAX_AUDIT_PAGE: u32 = 1_000;

/// Reading the ledger back.
pub struct Audit<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Audit<'_, S> {
    /// A page of the ledger.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` page size.
    pub async fn page(
        &self,
        identity: &Identity,
        query: AuditQuery,
    ) -> Result<Vec<LedgerRecord>, ServiceError> {
        identity.operator("read the audit log")?;
        if query.limit == 0 || query.limit > MAX_AUDIT_PAGE {
            return Err(ServiceError::invalid(
                "limit",
                format!("between 1 and {MAX_AUDIT_PAGE}"),
            ));
        }
        self.core
            .store
            .audit(&query)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading the audit log"))
    }

    /// A filtered page of the ledger, newest first (the console's audit
    /// view).
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` page size;
    /// `Unavailable`.
    pub async fn filtered(
        &self,
        identity: &Identity,
        filter: &LedgerFilter,
    ) -> Result<Vec<LedgerRecord>, ServiceError> {
        identity.operator("read the audit log")?;
        if filter.limit == 0 || filter.limit > MAX_AUDIT_PAGE {
            return Err(ServiceError::invalid(
                "limit",
                format!("between 1 and {MAX_AUDIT_PAGE}"),
            ));
        }
        self.core
            .store
            .ledger_page(filter)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading the audit log"))
    }

    /// Decision `id` and what followed from it: its record, its approval
    /// and the operators' verdicts, the platform event that ran it, its
    /// outcome.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `NotFound`; `Unavailable`.
    pub async fn lineage(&self, identity: &Identity, id: &str) -> Result<Lineage, ServiceError> {
        identity.operator("read the audit log")?;
        let store = &self.core.store;
        let unavailable = |e| ServiceError::from_store(e, "reading a decision's lineage");
        let row = store
            .find_decision(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| ServiceError::NotFound(format!("no decision `{id}`")))?;
        let decision = store
            .records(row.seq.saturating_sub(1), 1)
            .await
            .map_err(unavailable)?
            .into_iter()
            .next()
            .filter(|record| record.seq == row.seq && record.kind == "decision")
            .ok_or(ServiceError::Unavailable)?;
        let fields: DecisionFields =
            serde_json::from_str(&decision.payload).map_err(|_| ServiceError::Unavailable)?;
        let approval = match &fields.decision.approval_id {
            Some(approval_id) => store
                .find_approval(approval_id)
                .await
                .map_err(unavailable)?
                .map(|found| ApprovalLineage {
                    id: approval_id.clone(),
                    opened_here: fields.opened_approval(),
                    status: found.row.approval.status,
                    used: found.row.approval.used,
                    votes: found.votes,
                    expires_at: found.row.approval.expires_at,
                }),
            None => None,
        };
        let mut approval_records = Vec::new();
        if let Some(approval) = approval.as_ref().filter(|a| a.opened_here) {
            for (kind, verdict) in [
                ("approval.approved", ApprovalStatus::Approved),
                ("approval.denied", ApprovalStatus::Denied),
            ] {
                let wanted = approval.votes.iter().filter(|(_, v)| *v == verdict).count();
                approval_records.extend(
                    self.followers(decision.seq, kind, &fields.agent, wanted, |f| {
                        f.approval_id.as_deref() == Some(approval.id.as_str())
                    })
                    .await?,
                );
            }
            approval_records.sort_by_key(|record| record.seq);
        }
        let outcome = match row.reported {
            Some(_) => self
                .followers(decision.seq, "outcome", &fields.agent, 1, |f| {
                    f.decision_id.as_deref() == Some(id)
                })
                .await?
                .into_iter()
                .next(),
            None => None,
        };
        let platform_events = match store.platform_event_of(id).await.map_err(unavailable)? {
            Some(event) => store
                .records(event.seq.saturating_sub(1), 1)
                .await
                .map_err(unavailable)?
                .into_iter()
                .filter(|record| record.seq == event.seq && record.kind == "platform_event")
                .collect(),
            None => Vec::new(),
        };
        Ok(Lineage {
            decision,
            approval,
            approval_records,
            platform_events,
            outcome,
        })
    }

    /// Up to `wanted` records of `kind` by `agent` after record `after` that
    /// `belongs` accepts, reading forward only until they are found.
    async fn followers(
        &self,
        after: u64,
        kind: &str,
        agent: &str,
        wanted: usize,
        belongs: impl Fn(&Follower) -> bool,
    ) -> Result<Vec<LedgerRecord>, ServiceError> {
        let mut found = Vec::new();
        let mut after = after;
        while found.len() < wanted {
            let page = self
                .core
                .store
                .audit(&AuditQuery {
                    after,
                    limit: LINEAGE_PAGE,
                    kind: Some(kind.to_owned()),
                    agent: Some(agent.to_owned()),
                })
                .await
                .map_err(|e| ServiceError::from_store(e, "reading a decision's lineage"))?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            found.extend(page.into_iter().filter(|record| {
                serde_json::from_str::<Follower>(&record.payload).is_ok_and(|f| belongs(&f))
            }));
        }
        found.truncate(wanted);
        Ok(found)
    }

    /// Re-reads and re-hashes the whole ledger.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Unavailable`.
    pub async fn verify(&self, identity: &Identity) -> Result<VerifyReport, ServiceError> {
        identity.operator("verify the ledger")?;
        self.core
            .store
            .verify()
            .await
            .map_err(|e| ServiceError::from_store(e, "verifying the ledger"))
    }
}
