//! [`Decisions`]: deciding a request — authenticate the asker as the agent
//! it asks for, refuse malformed input outright, let the engine decide on
//! the facts of this instant, and answer only once the decision is in the
//! ledger — and hearing what happened when a decided action ran.

use std::borrow::Cow;

use clearance_engine::{
    Decision, DecisionRequest, Identity, Impact, Outcome, ReportedOutcome, RequestHash,
    bundle::approvals::Requirement,
    decision::CLOCK_SKEW,
    facts::{ApprovalStatus, RecordedFacts},
    trust::Sample,
};
use clearance_store::{DecisionRow, Guard, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    ServiceError,
    core::{Core, Plan, hard_stop_horizon},
    identity::{Permissions as _, random_id},
    records::{DecisionFacts, DecisionRecord, OutcomeRecord, decision_effects, json, own_effects},
    trust::Trust,
};

/// How often a decision is made again when the facts it was made on went
/// stale before it was recorded (a kill switch or a hard stop counted by
/// another instance, an approval spent elsewhere).
const ATTEMPTS: usize = 3;

/// Which approval a request may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matching {
    /// Only the one it names (`approval_id`).
    Explicit,
    /// The one it names, else the approved, unused approval bound to the
    /// same request.
    SameRequest,
}

/// Who runs what a decision allows, and so reports how it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// The agent, which reports the outcome itself (the HTTP API).
    Agent,
    /// clearance's MCP gateway, which forwards the call and alone reports
    /// its outcome: the agent that asked cannot report one first.
    Gateway,
}

/// The name an outcome the MCP gateway reports is recorded under
/// (`reported_by`); no token is issued to a name starting `clearance:`.
pub const GATEWAY_REPORTER: &str = "clearance:mcp-gateway";

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

/// An outcome report: what happened when a decided action ran.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeReport {
    /// What happened.
    pub outcome: ReportedOutcome,
    /// When the action started.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Timestamp>,
    /// When it finished (or failed).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Timestamp>,
    /// For a failure: when service was restored.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub recovered_at: Option<Timestamp>,
}

/// A decision made under the state lock, with what its record needs.
struct Decided {
    decision_id: String,
    credential_scope: String,
    policy_owner: String,
    decision: Decision,
    facts: RecordedFacts,
    approval_expires_at: Option<Timestamp>,
    approval_reused: bool,
    approval_requirement: Option<Requirement>,
    voided_approval: Option<String>,
    executor: Executor,
    at: Timestamp,
}

/// The request as its decision records it: the arguments shown to an
/// approver are kept only where an approver will read them, with a pending
/// decision. Elsewhere `arguments_digest` alone says what was called (an
/// MCP call may carry a whole file, on every call).
fn as_recorded(request: &DecisionRequest, outcome: Outcome) -> Cow<'_, DecisionRequest> {
    if request.arguments.is_none() || outcome == Outcome::Pending {
        Cow::Borrowed(request)
    } else {
        // Field by field: cloning the whole request would copy the
        // arguments only to drop them.
        Cow::Owned(DecisionRequest {
            agent: request.agent.clone(),
            action: request.action.clone(),
            resource: request.resource.clone(),
            level: request.level,
            plan_id: request.plan_id.clone(),
            snapshot: request.snapshot.clone(),
            confidence: request.confidence,
            rationale: request.rationale.clone(),
            approval_id: request.approval_id.clone(),
            arguments_digest: request.arguments_digest.clone(),
            arguments: None,
        })
    }
}

impl Decided {
    fn record<'a>(
        &'a self,
        agent: &'a str,
        identity: &'a Identity,
        request: &'a DecisionRequest,
    ) -> DecisionRecord<'a> {
        DecisionRecord {
            decision_id: &self.decision_id,
            agent,
            identity,
            credential_scope: &self.credential_scope,
            policy_owner: &self.policy_owner,
            request,
            decision: &self.decision,
            facts: &self.facts,
            approval_expires_at: self.approval_expires_at,
            approval_reused: self.approval_reused,
            approval_requirement: self.approval_requirement.as_ref(),
            voided_approval: self.voided_approval.as_deref(),
            executed_by: (self.executor == Executor::Gateway).then_some("gateway"),
        }
    }
}

/// Deciding requests and hearing what happened when they ran.
pub struct Decisions<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Decisions<'_, S> {
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
        self.decide_with(identity, request, Matching::Explicit, Executor::Agent)
            .await
    }

    /// As [`Decisions::decide`]; with [`Matching::SameRequest`], a request
    /// that names no approval uses the approved, unused approval of the same
    /// request, if there is one (the MCP face: an agent repeats the very
    /// call it was told waits for an operator, without knowing approvals).
    ///
    /// # Errors
    /// As [`Decisions::decide`].
    pub async fn decide_with(
        &self,
        identity: &Identity,
        request: DecisionRequest,
        matching: Matching,
        executor: Executor,
    ) -> Result<DecisionAnswer, ServiceError> {
        self.decide_under(identity, request, matching, executor, None)
            .await
    }

    /// As [`Decisions::decide_with`] for a call the MCP gateway forwards,
    /// made into `request` by the tool mappings of bundle revision
    /// `routed_under`: decided only under that bundle. A reload in between
    /// may have mapped the tool to another action or resource, and a call
    /// routed by one bundle must not be decided by another's policies.
    ///
    /// # Errors
    /// [`ServiceError::Superseded`], with nothing recorded, when another
    /// bundle is active: route the call again and decide it anew. Else as
    /// [`Decisions::decide`].
    pub async fn decide_routed(
        &self,
        identity: &Identity,
        request: DecisionRequest,
        matching: Matching,
        routed_under: &str,
    ) -> Result<DecisionAnswer, ServiceError> {
        self.decide_under(
            identity,
            request,
            matching,
            Executor::Gateway,
            Some(routed_under),
        )
        .await
    }

    async fn decide_under(
        &self,
        identity: &Identity,
        request: DecisionRequest,
        matching: Matching,
        executor: Executor,
        routed_under: Option<&str>,
    ) -> Result<DecisionAnswer, ServiceError> {
        let agent = asking_agent(identity, &request)?;
        request
            .check_arguments()
            .map_err(|why| ServiceError::invalid("arguments", why))?;
        let clock = self.core.clock();
        if let Some(snapshot) = &request.snapshot
            && snapshot.observed_at > clock.checked_add(CLOCK_SKEW).unwrap_or(clock)
        {
            return Err(ServiceError::invalid(
                "snapshot.observed_at",
                format!("{} is in the future (now is {clock})", snapshot.observed_at),
            ));
        }
        let mut attempt = 0;
        let (receipt, decided) = loop {
            attempt += 1;
            let decision_id = self.core.next_decision_id();
            let result = self
                .core
                .transact_then_write(
                    |state, bundle, now| {
                        // Fail closed: what it could not read may forbid this.
                        if state.unreadable.is_some() {
                            return Err(ServiceError::Unavailable);
                        }
                        if let Some(routed) = routed_under
                            && bundle.revision() != routed
                        {
                            return Err(ServiceError::Superseded(format!(
                                "the call was routed under bundle {routed}, and bundle {} is active now",
                                bundle.revision()
                            )));
                        }
                        let declared = bundle.agent(agent).ok_or_else(|| unknown_agent(agent))?;
                        let horizon = now.checked_sub(hard_stop_horizon(bundle)).unwrap_or(now);
                        state.prune_executions(agent, horizon);
                        let hash = RequestHash::of(&request);
                        let matched = match (matching, &request.approval_id) {
                            (Matching::SameRequest, None) => state
                                .approval_for(agent, &hash, ApprovalStatus::Approved, now)
                                .map(|id| DecisionRequest {
                                    approval_id: Some(id),
                                    ..request.clone()
                                }),
                            _ => None,
                        };
                        let asked = matched.as_ref().unwrap_or(&request);
                        let facts = state.facts(bundle, asked, now);
                        let mut decision = bundle.decide(asked, &facts);
                        // Repeated on another snapshot version: whatever the
                        // outcome, the approval no longer describes the world.
                        // One being used or voided right now is left to that
                        // request, as a use in flight is (this one is denied
                        // either way, and needs not wait for it).
                        let voided_approval = facts
                            .approval
                            .as_ref()
                            .filter(|a| asked.approval_id.as_deref() == Some(a.id.as_str()))
                            .filter(|a| a.drifted_from(asked))
                            .filter(|a| !state.in_flight.approval_busy(&a.id))
                            .map(|a| a.id.clone());
                        let facts = facts.recorded(bundle, asked);
                        // A request already waiting for an operator waits on
                        // the same approval: repeating it opens no second one.
                        let waiting = (decision.outcome == Outcome::Pending)
                            .then(|| state.approval_for(agent, &hash, ApprovalStatus::Pending, now))
                            .flatten();
                        let approval_reused = waiting.is_some();
                        let mut approval_requirement = None;
                        let approval_expires_at = match (decision.outcome, waiting) {
                            (Outcome::Pending, Some(id)) => {
                                decision.approval_id = Some(id);
                                None
                            }
                            (Outcome::Pending, None) => {
                                let max = bundle.settings().approvals_max_open_per_agent;
                                if state.open_approvals_of(agent, now) >= max as usize {
                                    return Err(ServiceError::Limit(format!(
                                        "agent `{agent}` already has {max} approvals waiting for operators (approvals.max_open_per_agent); ask again once some are settled or expired"
                                    )));
                                }
                                decision.approval_id = Some(random_id("apr")?);
                                // Recorded only when a rule applied: else one operator.
                                approval_requirement = Some(
                                    bundle.approval_policy().requirement(asked, decision.impact),
                                )
                                .filter(|r| r.rule.is_some());
                                let expiry = bundle.settings().approval_expire_after.as_signed();
                                Some(now.checked_add(expiry).unwrap_or(now))
                            }
                            _ => None,
                        };
                        let decided = Decided {
                            decision_id: decision_id.clone(),
                            credential_scope: declared.credential_scope.clone(),
                            policy_owner: bundle.policy_owner().to_owned(),
                            decision,
                            facts,
                            approval_expires_at,
                            approval_reused,
                            approval_requirement,
                            voided_approval,
                            executor,
                            at: now,
                        };
                        let request_hash = decided.decision.request_hash.to_string();
                        // The request as asked: effects read its arguments
                        // only where the record keeps them (a pending
                        // decision's approval), so no stripped copy is made
                        // under the state lock.
                        let effects = decision_effects(
                            &DecisionFacts::of(
                                &decided.record(agent, identity, &request),
                                &request_hash,
                            ),
                            now,
                        );
                        let guards = guards(bundle, &decided.decision, agent, state.applied, now);
                        Ok(Plan {
                            kind: "decision",
                            payload: String::new(),
                            effects,
                            guards,
                            value: decided,
                        })
                    },
                    // Serialised once the state lock is released.
                    |decided| {
                        let request = as_recorded(&request, decided.decision.outcome);
                        let record = decided.record(agent, identity, &request);
                        let payload = json(&record)?;
                        debug_assert_eq!(
                            crate::records::effects_of("decision", &payload, decided.at).ok(),
                            Some(decision_effects(
                                &DecisionFacts::of(
                                    &record,
                                    &decided.decision.request_hash.to_string()
                                ),
                                decided.at
                            )),
                            "a decision's effects must read back from its record"
                        );
                        Ok(payload)
                    },
                )
                .await;
            match result {
                Ok(done) => break done,
                Err(ServiceError::Conflict(why)) if attempt < ATTEMPTS => {
                    tracing::debug!(%why, attempt, "decided on stale facts; deciding again");
                    self.core
                        .store
                        .sync()
                        .await
                        .map_err(|e| self.core.refused(e, "decision"))?;
                }
                Err(ServiceError::Conflict(why)) => {
                    tracing::warn!(%why, "a decision kept racing other changes; refused");
                    return Err(ServiceError::Unavailable);
                }
                Err(other) => return Err(other),
            }
        };
        let Decided {
            decision_id,
            decision,
            at,
            ..
        } = decided;
        self.core.metrics().decision(
            decision.outcome.name(),
            decision.impact.name(),
            decision.blocked_unsafe_action(),
        );
        if decision.is_unsafe_attempt() {
            Trust { core: self.core }
                .after_sample(agent, &Sample::UnsafeAttempt, at)
                .await?;
        }
        Ok(DecisionAnswer {
            decision_id,
            ledger_seq: receipt.seq,
            decision,
        })
    }

    /// Records what happened when a decided action ran. One outcome per
    /// decision: a second is refused (`Conflict`), however many race.
    ///
    /// # Errors
    /// `Forbidden` for an agent reporting on another agent's decision, or an
    /// approver; `NotFound`; `Conflict` when already reported; `Invalid`
    /// times; `Unavailable`.
    pub async fn report_outcome(
        &self,
        identity: &Identity,
        decision_id: &str,
        report: OutcomeReport,
    ) -> Result<u64, ServiceError> {
        let decision = self.find(decision_id).await?;
        let index = &decision.index;
        let reporter = match identity {
            Identity::Agent { agent } if *agent == index.agent => {
                if self.executed_by_gateway(&decision).await? {
                    return Err(ServiceError::Forbidden(format!(
                        "decision `{decision_id}` was executed by clearance's MCP gateway, which reports its outcome"
                    )));
                }
                agent.as_str()
            }
            Identity::Agent { agent } => {
                return Err(ServiceError::Forbidden(format!(
                    "agent `{agent}` cannot report on agent `{}`'s decision",
                    index.agent
                )));
            }
            other => other.evidence_recorder("report outcomes")?,
        };
        self.record_outcome(decision, reporter, report).await
    }

    /// Records how a call the MCP gateway forwarded went, as
    /// [`GATEWAY_REPORTER`]: the gateway executed it, so no identity but
    /// its own reports it. In-process only; no face exposes it.
    ///
    /// # Errors
    /// As [`Decisions::report_outcome`], but never `Forbidden`.
    pub async fn report_gateway_outcome(
        &self,
        decision_id: &str,
        report: OutcomeReport,
    ) -> Result<u64, ServiceError> {
        let decision = self.find(decision_id).await?;
        self.record_outcome(decision, GATEWAY_REPORTER, report)
            .await
    }

    async fn find(&self, decision_id: &str) -> Result<DecisionRow, ServiceError> {
        self.core
            .store
            .find_decision(decision_id)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading a decision"))?
            .ok_or_else(|| ServiceError::NotFound(format!("no decision `{decision_id}`")))
    }

    /// Whether `decision`'s record says the MCP gateway executed it.
    async fn executed_by_gateway(&self, decision: &DecisionRow) -> Result<bool, ServiceError> {
        let records = self
            .core
            .store
            .records(decision.seq.saturating_sub(1), 1)
            .await
            .map_err(|e| ServiceError::from_store(e, "reading a decision"))?;
        let record = records
            .first()
            .filter(|r| r.seq == decision.seq)
            .ok_or_else(|| {
                ServiceError::NotFound(format!("no record of decision `{}`", decision.index.id))
            })?;
        #[derive(Deserialize)]
        struct Executed {
            executed_by: Option<String>,
        }
        let executed: Executed = serde_json::from_str(&record.payload).map_err(|e| {
            tracing::error!(error = %e, seq = record.seq, "a decision record does not read");
            ServiceError::Unavailable
        })?;
        Ok(executed.executed_by.as_deref() == Some("gateway"))
    }

    async fn record_outcome(
        &self,
        decision: DecisionRow,
        reporter: &str,
        report: OutcomeReport,
    ) -> Result<u64, ServiceError> {
        let decision_id = decision.index.id.as_str();
        let index = &decision.index;
        if decision.reported.is_some() {
            return Err(ServiceError::Conflict(format!(
                "decision `{decision_id}` already has an outcome"
            )));
        }
        let time_to_recovery = self.validate(&report, index.at)?;
        // What the outcome says about the agent: an allowed execution is a
        // remediation sample; anything run without an `allow` is an action
        // outside its permitted scope.
        let sample = Sample::from_outcome(
            index.outcome == Outcome::Allow,
            index.execution,
            report.outcome.remediation(),
        );
        let payload = json(&OutcomeRecord {
            decision_id: decision_id.to_owned(),
            agent: index.agent.clone(),
            action: index.action.clone(),
            decided: index.outcome,
            sanctioned: index.outcome == Outcome::Allow,
            execution: index.execution,
            reported_by: reporter.to_owned(),
            outcome: report.outcome,
            started_at: report.started_at,
            finished_at: report.finished_at,
            recovered_at: report.recovered_at,
            time_to_recovery_seconds: time_to_recovery,
            sample: sample.clone(),
        })?;
        let (receipt, recorded_at) = self
            .core
            .transact(|_, _, now| {
                Ok(Plan {
                    kind: "outcome",
                    effects: own_effects("outcome", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: now,
                })
            })
            .await?;
        if let Some(seconds) = time_to_recovery {
            self.core.metrics().recovery(seconds);
        }
        if let Some(sample) = &sample {
            Trust { core: self.core }
                .after_sample(&index.agent, sample, recorded_at)
                .await?;
        }
        Ok(receipt.seq)
    }

    /// Checks the report's times against the clock and the decision's own
    /// (`decided`): the time to recovery, when it gives one, feeds the
    /// overview's mean, so a failure dated before its decision (1970, say)
    /// must not add decades to it.
    fn validate(
        &self,
        report: &OutcomeReport,
        decided: Timestamp,
    ) -> Result<Option<f64>, ServiceError> {
        let now = self.core.clock();
        let earliest = decided.checked_sub(CLOCK_SKEW).unwrap_or(decided);
        for (field, at) in [
            ("finished_at", report.finished_at),
            ("recovered_at", report.recovered_at),
        ] {
            if let Some(at) = at
                && at < earliest
            {
                return Err(ServiceError::invalid(
                    field,
                    format!("{at} is before the decision ({decided})"),
                ));
            }
        }
        if let (Some(started), Some(finished)) = (report.started_at, report.finished_at)
            && finished < started
        {
            return Err(ServiceError::invalid(
                "finished_at",
                format!("{finished} is before started_at ({started})"),
            ));
        }
        for (field, at) in [
            ("started_at", report.started_at),
            ("finished_at", report.finished_at),
            ("recovered_at", report.recovered_at),
        ] {
            if let Some(at) = at
                && at > now.checked_add(CLOCK_SKEW).unwrap_or(now)
            {
                return Err(ServiceError::invalid(
                    field,
                    format!("{at} is in the future (now is {now})"),
                ));
            }
        }
        match (report.outcome, report.finished_at, report.recovered_at) {
            (ReportedOutcome::Succeeded, _, Some(_)) => Err(ServiceError::invalid(
                "recovered_at",
                "only a failed or rolled-back action recovers",
            )),
            (_, Some(finished), Some(recovered)) if recovered < finished => Err(
                ServiceError::invalid("recovered_at", "recovery cannot precede the failure"),
            ),
            (_, Some(finished), Some(recovered)) => {
                Ok(Some(recovered.duration_since(finished).as_secs_f64()))
            }
            (_, None, Some(_)) => Err(ServiceError::invalid(
                "finished_at",
                "a recovery is timed from the failure: give finished_at with recovered_at",
            )),
            _ => Ok(None),
        }
    }
}

/// The agent `identity` asks as: only an agent, and only as itself.
fn asking_agent<'a>(
    identity: &'a Identity,
    request: &DecisionRequest,
) -> Result<&'a str, ServiceError> {
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
    Ok(agent)
}

fn unknown_agent(agent: &str) -> ServiceError {
    ServiceError::invalid(
        "agent",
        format!("agent `{agent}` is not defined in the active bundle"),
    )
}

/// What must still hold when the decision is written: an `allow` or a
/// `pending` made on facts older than a kill switch tripped elsewhere is
/// made again, and an execution must fit every hard stop counted across
/// every instance.
fn guards(
    bundle: &clearance_engine::Bundle,
    decision: &Decision,
    agent: &str,
    applied: u64,
    now: Timestamp,
) -> Vec<Guard> {
    let mut guards = Vec::new();
    if matches!(decision.outcome, Outcome::Allow | Outcome::Pending) {
        guards.push(Guard::NoKillSwitchTrippedAfter(applied));
    }
    if decision.is_execution() {
        guards.extend(
            bundle
                .hard_stops()
                .iter()
                .filter(|stop| stop.applies_to(agent) && decision.impact >= stop.impact)
                .map(|stop| Guard::HardStop {
                    agent: agent.to_owned(),
                    impacts: Impact::ALL
                        .into_iter()
                        .filter(|i| *i >= stop.impact)
                        .collect(),
                    since: now
                        .checked_sub(stop.per.as_signed())
                        .unwrap_or(Timestamp::MIN),
                    max: stop.max,
                }),
        );
    }
    guards
}
