//! [`Approvals`]: operators list what waits for them and approve or deny
//! it — once. An approval is bound to one request hash; the agent then
//! repeats that exact request with the `approval_id`, and the engine lets
//! it run once.

use clearance_engine::{
    Bundle, DecisionRequest, Identity, Outcome, RequestHash, Resource,
    bundle::approvals::{ApproverCheck, Barred},
    facts::{ApprovalStatus, KillSwitch},
};
use clearance_store::{ApprovalRow, ApprovalVoid, KillSwitchRow, Store};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::{
    ServiceError,
    core::{Core, Plan},
    identity::Permissions as _,
    records::{ApprovalExpiredRecord, ApprovalRecord, json, own_effects},
    text::check_operator_text,
};

/// An approval as operators see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalView {
    /// Its id.
    pub id: String,
    /// `pending`, `approved`, `denied` or `voided`.
    pub status: ApprovalStatus,
    /// Whether a decision has run on it: an approved approval allows its
    /// request once, and reads `approved` after as before.
    pub used: bool,
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
    /// The agent's confidence, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub confidence: Option<clearance_engine::Confidence>,
    /// The state the request was planned on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<clearance_engine::Snapshot>,
    /// The hash the approval is bound to.
    pub request_hash: String,
    /// The digest of what the action carries (an MCP call's tool and
    /// arguments), bound into `request_hash`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments_digest: Option<String>,
    /// What that digest covers, for the approver to read: in one approval
    /// (`GET /v1/approvals/{id}`, the console's page), not in the list;
    /// absent when the request carried its digest alone (an MCP call
    /// larger than 64 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub arguments: Option<serde_json::Value>,
    /// Who approved, so far.
    pub approvers: Vec<String>,
    /// How many distinct operators must approve it.
    pub required: u32,
    /// The `approvals.rules` entry that asked for them; absent when none
    /// matched (one operator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// When it was opened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it stops counting.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

impl ApprovalView {
    pub(crate) fn of(row: &ApprovalRow) -> ApprovalView {
        ApprovalView {
            id: row.approval.id.clone(),
            status: row.approval.status,
            used: row.approval.used,
            agent: row.agent.clone(),
            action: row.request.action.clone(),
            resource: row.request.resource.clone(),
            plan_id: row.request.plan_id.clone(),
            rationale: row.request.rationale.clone(),
            confidence: row.request.confidence,
            snapshot: row.request.snapshot.clone(),
            request_hash: row.approval.request_hash.clone(),
            arguments_digest: row.request.arguments_digest.clone(),
            arguments: row.request.arguments.clone(),
            approvers: row.approval.approvers.clone(),
            required: row.approval.required,
            rule: row.rule.clone(),
            created_at: row.created_at,
            expires_at: row.approval.expires_at,
        }
    }
}

/// Where an approval an agent waits on stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Still waiting for an operator.
    Pending,
    /// Approved and unused: the request may now run, once.
    Approved,
    /// Refused, by these operators.
    Denied(Vec<String>),
    /// Voided: by a kill switch, by its expiry or because its request was
    /// repeated on another snapshot version; or still open, but covered by
    /// a tripped switch whose trip missed it (unusable while it is tripped).
    Voided(ApprovalVoid),
    /// Spent by a request that ran on it.
    Used,
    /// Nobody settled it in time.
    Expired,
}

/// Approving and denying what waits for an operator.
pub struct Approvals<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Approvals<'_, S> {
    /// The approvals that can still count, oldest first.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator.
    pub fn list(&self, identity: &Identity) -> Result<Vec<ApprovalView>, ServiceError> {
        identity.operator("list approvals")?;
        let now = self.core.clock();
        let state = self.core.state();
        let mut views: Vec<ApprovalView> = state
            .approvals
            .values()
            .filter(|row| row.approval.expires_at > now)
            .map(ApprovalView::of)
            .collect();
        views.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(views)
    }

    /// One approval, whatever its status, with the arguments its request
    /// carries for the approver to read (the list leaves them out: the
    /// digest it shows is what binds).
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `NotFound`; `Unavailable`.
    pub async fn view(&self, identity: &Identity, id: &str) -> Result<ApprovalView, ServiceError> {
        identity.operator("read approvals")?;
        match self.core.store.find_approval(id).await {
            Ok(Some(found)) => Ok(ApprovalView::of(&found.row)),
            Ok(None) => Err(ServiceError::NotFound(format!("no approval `{id}`"))),
            Err(e) => Err(ServiceError::from_store(e, "reading an approval")),
        }
    }

    /// Approves a pending approval; `comment`, the operator's words (at most
    /// `MAX_OPERATOR_TEXT` bytes), is
    /// kept in its ledger record.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `NotFound`; `Conflict` when it
    /// is not pending (already settled, voided, used) or has expired;
    /// `Invalid` comment; `Unavailable` when not recorded.
    pub async fn approve(
        &self,
        identity: &Identity,
        id: &str,
        comment: Option<&str>,
    ) -> Result<ApprovalView, ServiceError> {
        self.settle(identity, id, ApprovalStatus::Approved, comment)
            .await
    }

    /// Denies a pending approval.
    ///
    /// # Errors
    /// As [`Approvals::approve`].
    pub async fn deny(
        &self,
        identity: &Identity,
        id: &str,
        comment: Option<&str>,
    ) -> Result<ApprovalView, ServiceError> {
        self.settle(identity, id, ApprovalStatus::Denied, comment)
            .await
    }

    /// Records `approval.expired` for every open approval (pending, or
    /// approved and unused) past its `expires_at`: an approval stops
    /// counting at its expiry whether or not this ran, and this puts the
    /// fact in the ledger. Another instance sweeping the same approval
    /// records it once between them. Returns how many it recorded.
    ///
    /// # Errors
    /// `Unavailable` when the ledger cannot be written.
    pub async fn expire_due(&self) -> Result<usize, ServiceError> {
        let now = self.core.clock();
        let due: Vec<String> = self
            .core
            .state()
            .approvals
            .values()
            .filter(|row| row.approval.expires_at <= now)
            .map(|row| row.approval.id.clone())
            .collect();
        let mut expired = 0;
        for id in due {
            let result = self
                .core
                .transact(|state, _, now| {
                    let row = state.approvals.get(&id).ok_or_else(|| {
                        ServiceError::Conflict(format!("approval `{id}` closed meanwhile"))
                    })?;
                    let payload = json(&ApprovalExpiredRecord {
                        approval_id: id.clone(),
                        agent: row.agent.clone(),
                        action: row.request.action.clone(),
                        request_hash: row.approval.request_hash.clone(),
                        status: row.approval.status,
                        approvers: row.approval.approvers.clone(),
                        expires_at: row.approval.expires_at,
                    })?;
                    Ok(Plan {
                        kind: "approval.expired",
                        effects: own_effects("approval.expired", &payload, now)?,
                        payload,
                        guards: Vec::new(),
                        value: (),
                    })
                })
                .await;
            match result {
                Ok(_) => expired += 1,
                // Settled, used or expired elsewhere meanwhile.
                Err(ServiceError::Conflict(why)) => tracing::debug!(%why, "expiry not recorded"),
                Err(other) => return Err(other),
            }
        }
        Ok(expired)
    }

    /// The approved, unused approval `agent`'s `request` would run on if it
    /// were decided now ([`crate::Matching::SameRequest`]), and be allowed:
    /// for a face that cannot run the request at the moment, so that it
    /// neither decides it nor spends the approval. `None` whenever deciding
    /// could answer anything but `allow` (a demoted phase, a hard stop, a
    /// switch tripped or being tripped, an agent gone, a state it could not
    /// read): that request is decided, and its answer recorded. Nothing is
    /// recorded here.
    pub fn approved_for(&self, agent: &str, request: &DecisionRequest) -> Option<String> {
        let bundle = self.core.bundle();
        let mut state = self.core.state();
        if state.unreadable.is_some() {
            return None;
        }
        bundle.agent(agent)?;
        let now = state.now(self.core.clock());
        let id = state.approval_for(
            agent,
            &RequestHash::of(request),
            ApprovalStatus::Approved,
            now,
        )?;
        let asked = DecisionRequest {
            approval_id: Some(id.clone()),
            ..request.clone()
        };
        let facts = state.facts(&bundle, &asked, now);
        (bundle.decide(&asked, &facts).outcome == Outcome::Allow).then_some(id)
    }

    /// Where approval `id` of `agent` stands, for a caller waiting on it:
    /// read from this instance's state, or the store once it has left it.
    ///
    /// # Errors
    /// `NotFound` for an approval that is not `agent`'s; `Unavailable`.
    pub async fn standing(&self, agent: &str, id: &str) -> Result<Standing, ServiceError> {
        let now = self.core.clock();
        {
            let state = self.core.state();
            if let Some(row) = state.approvals.get(id) {
                if row.agent != agent {
                    return Err(ServiceError::NotFound(format!("no approval `{id}`")));
                }
                return Ok(match row.approval.status {
                    _ if row.approval.expires_at <= now => Standing::Expired,
                    // Open, yet unusable while a tripped switch covers it: a
                    // trip recorded while other instances kept opening
                    // approvals may not have voided it. A caller waiting on
                    // it decides again now, and is denied, rather than wait
                    // out its deadline.
                    _ if state.stopped_by_a_switch(&row.request) => {
                        Standing::Voided(ApprovalVoid::KillSwitch)
                    }
                    ApprovalStatus::Approved => Standing::Approved,
                    _ => Standing::Pending,
                });
            }
        }
        let found = self
            .core
            .store
            .find_approval(id)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading an approval"))?
            .filter(|found| found.row.agent == agent)
            .ok_or_else(|| ServiceError::NotFound(format!("no approval `{id}`")))?;
        let approval = &found.row.approval;
        Ok(match approval.status {
            _ if approval.used => Standing::Used,
            ApprovalStatus::Denied => Standing::Denied(
                found
                    .votes
                    .iter()
                    .filter(|(_, verdict)| *verdict == ApprovalStatus::Denied)
                    .map(|(operator, _)| operator.clone())
                    .collect(),
            ),
            ApprovalStatus::Voided => {
                Standing::Voided(found.voided_because.unwrap_or(ApprovalVoid::KillSwitch))
            }
            ApprovalStatus::Approved => Standing::Approved,
            // Not in the state yet (opened on another instance a moment
            // ago) or expired.
            ApprovalStatus::Pending if approval.expires_at <= now => Standing::Expired,
            ApprovalStatus::Pending => Standing::Pending,
        })
    }

    async fn settle(
        &self,
        identity: &Identity,
        id: &str,
        verdict: ApprovalStatus,
        comment: Option<&str>,
    ) -> Result<ApprovalView, ServiceError> {
        let operator = identity.operator(match verdict {
            ApprovalStatus::Approved => "approve requests",
            _ => "deny requests",
        })?;
        if let Some(comment) = comment {
            check_operator_text("comment", comment)?;
        }
        let trips = self.recent_trips().await?;
        if !self.core.state().approvals.contains_key(id) {
            // Opened by another instance a moment ago, perhaps: look again
            // once this one has caught up.
            self.core
                .store
                .sync()
                .await
                .map_err(|e| ServiceError::from_store(e, "following the ledger"))?;
            if !self.core.state().approvals.contains_key(id) {
                return Err(self.gone(id).await);
            }
        }
        let kind = match verdict {
            ApprovalStatus::Approved => "approval.approved",
            _ => "approval.denied",
        };
        let (_, mut row) = self
            .core
            .transact(|state, bundle, now| {
                let row = state.approvals.get(id).cloned().ok_or_else(|| {
                    ServiceError::Conflict(format!("approval `{id}` was settled meanwhile"))
                })?;
                if row.approval.status != ApprovalStatus::Pending {
                    return Err(ServiceError::Conflict(format!(
                        "approval `{id}` is already {}",
                        status_name(row.approval.status)
                    )));
                }
                if row.approval.expires_at <= now {
                    return Err(ServiceError::Conflict(format!(
                        "approval `{id}` expired at {}",
                        row.approval.expires_at
                    )));
                }
                if verdict == ApprovalStatus::Approved
                    && let Some(why) = barred(bundle, &row, operator, &trips)
                {
                    return Err(ServiceError::Forbidden(why));
                }
                let payload = json(&ApprovalRecord {
                    approval_id: id.to_owned(),
                    agent: row.agent.clone(),
                    action: row.request.action.clone(),
                    request_hash: row.approval.request_hash.clone(),
                    operator: operator.to_owned(),
                    comment: comment.map(str::to_owned),
                    required: row.approval.required,
                    rule: row.rule.clone(),
                })?;
                Ok(Plan {
                    kind,
                    effects: own_effects(kind, &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: row,
                })
            })
            .await?;
        if verdict == ApprovalStatus::Approved {
            row.approval.vote(operator);
        } else {
            row.approval.status = ApprovalStatus::Denied;
        }
        Ok(ApprovalView::of(&row))
    }

    /// The kill switches whose trippers `approvals.barred:
    /// kill_switch_tripper` still bars: tripped, or reset less than
    /// [`TRIPPER_BARRED_FOR`] ago. Read only when the bundle bars trippers.
    pub(crate) async fn recent_trips(&self) -> Result<Vec<KillSwitchRow>, ServiceError> {
        let barred = self
            .core
            .bundle()
            .approval_policy()
            .barred
            .contains(&Barred::KillSwitchTripper);
        if !barred {
            return Ok(Vec::new());
        }
        let since = self
            .core
            .clock()
            .checked_sub(TRIPPER_BARRED_FOR)
            .unwrap_or(Timestamp::MIN);
        let trips = self
            .core
            .store
            .kill_switch_history(since)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading kill switches"))?;
        Ok(trips.into_iter().map(|trip| trip.row).collect())
    }

    /// Why an approval that cannot be settled cannot: settled, voided or
    /// used already (409), or never opened (404).
    async fn gone(&self, id: &str) -> ServiceError {
        match self.core.store.find_approval(id).await {
            Ok(Some(found))
                if found.row.approval.status == ApprovalStatus::Pending
                    && !found.row.approval.used =>
            {
                ServiceError::Conflict(format!(
                    "approval `{id}` expired at {}",
                    found.row.approval.expires_at
                ))
            }
            Ok(Some(found)) => {
                let status = if found.row.approval.used {
                    "used"
                } else {
                    status_name(found.row.approval.status)
                };
                ServiceError::Conflict(format!("approval `{id}` is already {status}"))
            }
            Ok(None) => ServiceError::NotFound(format!("no approval `{id}`")),
            Err(error) => ServiceError::from_store(error, "reading an approval"),
        }
    }
}

/// How long after its reset a kill switch still bars the operator who
/// tripped it from approving what it covered (`approvals.barred:
/// kill_switch_tripper`).
pub const TRIPPER_BARRED_FOR: SignedDuration = SignedDuration::from_hours(24);

/// Why `approvals.barred` keeps `operator` from approving `row`, if it does.
pub(crate) fn barred(
    bundle: &Bundle,
    row: &ApprovalRow,
    operator: &str,
    trips: &[KillSwitchRow],
) -> Option<String> {
    let agent_owner = bundle.agent(&row.agent).map_or("", |a| a.owner.as_str());
    let trips: Vec<(&KillSwitch, &str)> = trips
        .iter()
        .map(|trip| (&trip.switch, trip.tripped_by.as_str()))
        .collect();
    bundle.approval_policy().barred(&ApproverCheck {
        operator,
        agent_owner,
        request: &row.request,
        trips: &trips,
    })
}

fn status_name(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Pending => "pending",
        ApprovalStatus::Approved => "approved",
        ApprovalStatus::Denied => "denied",
        ApprovalStatus::Voided => "voided",
    }
}
