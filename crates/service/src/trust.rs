//! Earned trust as use cases: graded evidence comes in, gates are measured
//! against the agent's tally, operators open and sign promotions, an
//! investigation lifts a lock, and demotion happens on its own — on every
//! new sample and on a timer, since windows slide. Every phase change is a
//! ledger record with its cause, appended before decisions see the new phase.

use clearance_engine::{
    Phase,
    decision::CLOCK_SKEW,
    trust::{Demotion, GateProgress, Sample, Tally, check_demotion, evaluate_gate},
};
use clearance_store::{AgentRow, Effect, EvidenceRow, PromotionRow, Store, timestamp_text};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    Gateway, Identity, ServiceError,
    identity::random_id,
    records::json,
    state::{OpenPromotion, Standing},
};

/// A graded sample, as a harness or operator sends it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    /// The agent graded.
    pub agent: String,
    /// `diagnosis`, `recommendation`, `escalation` or `out_of_scope_action`.
    pub kind: String,
    /// The incident graded: one sample per agent, kind and incident.
    pub incident_id: String,
    /// When the graded work happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// Diagnosis: the incident's domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Diagnosis, escalation: whether it was right.
    #[serde(default)]
    pub correct: Option<bool>,
    /// Recommendation: whether the operator accepted it.
    #[serde(default)]
    pub accepted: Option<bool>,
    /// Recommendation: how much the operator changed it, 0 to 1.
    #[serde(default)]
    pub edit_ratio: Option<f64>,
    /// Recommendation: whether it stayed in scope.
    #[serde(default)]
    pub in_scope: Option<bool>,
}

fn required<T: Copy>(value: Option<T>, field: &str, kind: &str) -> Result<T, ServiceError> {
    value.ok_or_else(|| ServiceError::invalid(field, format!("required for a {kind}")))
}

impl EvidenceInput {
    fn sample(&self) -> Result<Sample, ServiceError> {
        let kind = self.kind.as_str();
        match kind {
            "diagnosis" => Ok(Sample::Diagnosis {
                correct: required(self.correct, "correct", kind)?,
                domain: self.domain.clone(),
            }),
            "recommendation" => {
                let edit_ratio = required(self.edit_ratio, "edit_ratio", kind)?;
                if !(edit_ratio.is_finite() && (0.0..=1.0).contains(&edit_ratio)) {
                    return Err(ServiceError::invalid(
                        "edit_ratio",
                        format!("{edit_ratio} is not a number from 0 to 1"),
                    ));
                }
                Ok(Sample::Recommendation {
                    accepted: required(self.accepted, "accepted", kind)?,
                    edit_ratio,
                    in_scope: required(self.in_scope, "in_scope", kind)?,
                })
            }
            "escalation" => Ok(Sample::Escalation {
                correct: required(self.correct, "correct", kind)?,
            }),
            "out_of_scope_action" => Ok(Sample::OutOfScopeAction),
            "remediation" | "unsafe_attempt" => Err(ServiceError::invalid(
                "kind",
                format!(
                    "`{kind}` samples come from decisions and outcome reports, not from graders"
                ),
            )),
            other => Err(ServiceError::invalid(
                "kind",
                format!(
                    "`{other}` is not diagnosis, recommendation, escalation or out_of_scope_action"
                ),
            )),
        }
    }
}

/// What recording a sample did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceReceipt {
    /// The sample's ledger record.
    pub ledger_seq: u64,
    /// Whether it counts toward the agent's current phase (taken after the phase began).
    pub counted: bool,
    /// The demotion it triggered, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub demotion: Option<Demotion>,
}

/// The evidence since the agent entered its phase, as counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceSummary {
    /// Diagnoses graded / correct.
    pub diagnoses: u64,
    pub diagnoses_correct: u64,
    /// Distinct domains diagnosed in.
    pub domains: Vec<String>,
    /// Requests denied as out of scope.
    pub unsafe_attempts: u64,
    /// Recommendations graded / accepted / out of scope.
    pub recommendations: u64,
    pub recommendations_accepted: u64,
    pub recommendations_out_of_scope: u64,
    /// Escalations graded / correct.
    pub escalations: u64,
    pub escalations_correct: u64,
    /// Remediations run / completed / rolled back.
    pub remediations: u64,
    pub remediations_completed: u64,
    pub remediations_rolled_back: u64,
    /// Actions outside the permitted scope.
    pub out_of_scope_actions: u64,
}

impl From<&Tally> for EvidenceSummary {
    fn from(t: &Tally) -> Self {
        EvidenceSummary {
            diagnoses: t.diagnoses,
            diagnoses_correct: t.diagnoses_correct,
            domains: t.domains.iter().cloned().collect(),
            unsafe_attempts: t.unsafe_attempts,
            recommendations: t.recommendations,
            recommendations_accepted: t.recommendations_accepted,
            recommendations_out_of_scope: t.recommendations_out_of_scope,
            escalations: t.escalations,
            escalations_correct: t.escalations_correct,
            remediations: t.remediations,
            remediations_completed: t.remediations_completed,
            remediations_rolled_back: t.remediations_rolled_back,
            out_of_scope_actions: t.out_of_scope_actions,
        }
    }
}

/// A promotion as operators see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct PromotionView {
    /// Its id.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// From this phase.
    pub from: Phase,
    /// To this one.
    pub to: Phase,
    /// Who opened it.
    pub opened_by: String,
    /// The operators who signed, in order.
    pub signoffs: Vec<String>,
    /// How many distinct operators must sign.
    pub signoffs_required: u32,
    /// `open` or `completed`.
    pub status: &'static str,
}

/// An agent's standing and its progress toward the next phase.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct AgentView {
    /// Its id.
    pub id: String,
    /// The human accountable for it.
    pub owner: String,
    /// Its current phase.
    pub phase: Phase,
    /// Locked until an investigation is recorded.
    pub locked: bool,
    /// When the current phase began (absent: since the agent was declared).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub phase_since: Option<Timestamp>,
    /// Evidence gathered in this phase.
    pub evidence: EvidenceSummary,
    /// The gate to the next phase, measured; absent for autonomous agents.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub next_gate: Option<GateProgress>,
    /// Whether a promotion may be opened now.
    pub eligible: bool,
    /// The promotion waiting for sign-offs, if any.
    pub open_promotion: Option<PromotionView>,
}

#[derive(Serialize)]
struct PhaseChangeRecord<'a> {
    agent: &'a str,
    from: Phase,
    to: Phase,
    locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    demotion: Option<&'a Demotion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signoffs: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<&'a GateProgress>,
    evidence: EvidenceSummary,
    cancelled_promotions: &'a [String],
}

impl<S: Store> Gateway<S> {
    fn promotion_view(&self, row: &PromotionRow, status: &'static str) -> PromotionView {
        let from = Phase::from_number(u64::from(row.from_phase)).unwrap_or(Phase::Shadow);
        let required = self.bundle().trust().gate(from).map_or(1, |g| g.signoffs);
        PromotionView {
            id: row.id.clone(),
            agent: row.agent.clone(),
            from,
            to: Phase::from_number(u64::from(row.to_phase)).unwrap_or(from),
            opened_by: row.opened_by.clone(),
            signoffs: row.signoffs.clone(),
            signoffs_required: required,
            status,
        }
    }

    fn view(&self, id: &str) -> Result<AgentView, ServiceError> {
        let bundle = self.bundle();
        let declared = bundle.agent(id).ok_or_else(|| {
            ServiceError::NotFound(format!("no agent `{id}` in the active bundle"))
        })?;
        let now = self.now();
        let mut state = self.state();
        let standing = state
            .standing(&bundle, id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("no agent `{id}`")))?;
        let trust = bundle.trust();
        let next_gate = trust
            .gate(standing.phase)
            .map(|gate| evaluate_gate(gate, &standing.tally, trust.max_edit_ratio, now));
        let open_promotion = state
            .promotions
            .values()
            .find(|p| p.row.agent == id)
            .map(|p| self.promotion_view(&p.row, "open"));
        Ok(AgentView {
            id: id.to_owned(),
            owner: declared.owner.clone(),
            phase: standing.phase,
            locked: standing.locked,
            phase_since: (standing.tally.since != Timestamp::UNIX_EPOCH)
                .then_some(standing.tally.since),
            evidence: EvidenceSummary::from(&standing.tally),
            eligible: !standing.locked && next_gate.as_ref().is_some_and(|g| g.eligible),
            next_gate,
            open_promotion,
        })
    }

    fn may_read_agent(identity: &Identity, id: &str) -> Result<(), ServiceError> {
        match identity {
            Identity::Agent { agent } if agent != id => Err(ServiceError::Forbidden(format!(
                "agent `{agent}` can read only its own standing"
            ))),
            _ => Ok(()),
        }
    }

    /// Every agent of the active bundle, with its standing.
    ///
    /// # Errors
    /// `Forbidden` for an agent (it may read only itself).
    pub fn agents(&self, identity: &Identity) -> Result<Vec<AgentView>, ServiceError> {
        if let Identity::Agent { agent } = identity {
            return Ok(vec![self.view(agent)?]);
        }
        self.bundle().agents().map(|a| self.view(&a.id)).collect()
    }

    /// One agent's standing and gate progress.
    ///
    /// # Errors
    /// `Forbidden` for another agent; `NotFound`.
    pub fn agent(&self, identity: &Identity, id: &str) -> Result<AgentView, ServiceError> {
        Self::may_read_agent(identity, id)?;
        self.view(id)
    }

    /// Records a graded sample; it counts toward the agent's current phase
    /// when taken after that phase began, and may demote the agent.
    ///
    /// # Errors
    /// `Forbidden` for agents; `Invalid` input; `Conflict` for a duplicate
    /// (same agent, kind and incident); `Unavailable`.
    pub async fn record_evidence(
        &self,
        identity: &Identity,
        input: EvidenceInput,
    ) -> Result<EvidenceReceipt, ServiceError> {
        let grader = identity.grader("record evidence")?.to_owned();
        if self.bundle().agent(&input.agent).is_none() {
            return Err(ServiceError::invalid(
                "agent",
                format!(
                    "agent `{}` is not defined in the active bundle",
                    input.agent
                ),
            ));
        }
        if input.incident_id.trim().is_empty() {
            return Err(ServiceError::invalid(
                "incident_id",
                "name the incident graded",
            ));
        }
        let now = self.now();
        if input.at > now.checked_add(CLOCK_SKEW).unwrap_or(now) {
            return Err(ServiceError::invalid(
                "at",
                format!("{} is in the future (now is {now})", input.at),
            ));
        }
        let sample = input.sample()?;
        let key = (
            input.agent.clone(),
            sample.kind().to_owned(),
            input.incident_id.clone(),
        );
        if !self.state().evidence_in_flight.insert(key.clone()) {
            return Err(ServiceError::Conflict(format!(
                "a {} sample for incident `{}` is being recorded",
                key.1, key.2
            )));
        }
        let result = self.record_new_sample(&input, &sample, &grader).await;
        self.state().evidence_in_flight.remove(&key);
        let seq = result?;
        let (counted, demotion) = self.count_sample(&input.agent, &sample, input.at).await?;
        Ok(EvidenceReceipt {
            ledger_seq: seq,
            counted,
            demotion,
        })
    }

    async fn record_new_sample(
        &self,
        input: &EvidenceInput,
        sample: &Sample,
        grader: &str,
    ) -> Result<u64, ServiceError> {
        if self
            .store
            .evidence_exists(&input.agent, sample.kind(), &input.incident_id)
            .await?
        {
            return Err(ServiceError::Conflict(format!(
                "a {} sample for agent `{}` and incident `{}` is already recorded; it counts once",
                sample.kind(),
                input.agent,
                input.incident_id
            )));
        }
        #[derive(Serialize)]
        struct Record<'a> {
            agent: &'a str,
            incident_id: &'a str,
            at: Timestamp,
            graded_by: &'a str,
            sample: &'a Sample,
        }
        let payload = json(&Record {
            agent: &input.agent,
            incident_id: &input.incident_id,
            at: input.at,
            graded_by: grader,
            sample,
        })?;
        let row = EvidenceRow {
            agent: input.agent.clone(),
            kind: sample.kind().to_owned(),
            incident_id: input.incident_id.clone(),
            at: timestamp_text(input.at),
            sample: json(sample)?,
        };
        let receipt = self
            .append("evidence", payload, vec![Effect::Evidence(row)])
            .await?;
        self.metrics.evidence(sample.kind());
        Ok(receipt.seq)
    }

    /// The evidence row for a sample the gateway derives itself (unsafe
    /// attempts from decisions, remediations and out-of-scope actions from
    /// outcome reports), for the entry that records its cause.
    pub(crate) fn derived_evidence(
        agent: &str,
        sample: &Sample,
        incident_id: &str,
        at: Timestamp,
    ) -> Result<Effect, ServiceError> {
        Ok(Effect::Evidence(EvidenceRow {
            agent: agent.to_owned(),
            kind: sample.kind().to_owned(),
            incident_id: incident_id.to_owned(),
            at: timestamp_text(at),
            sample: json(sample)?,
        }))
    }

    /// Counts a recorded sample into the agent's tally, then demotes the
    /// agent if a rule trips. Returns whether it counted, and the demotion.
    pub(crate) async fn count_sample(
        &self,
        agent: &str,
        sample: &Sample,
        at: Timestamp,
    ) -> Result<(bool, Option<Demotion>), ServiceError> {
        let bundle = self.bundle();
        let counted = {
            let mut state = self.state();
            let Some(standing) = state.standing(&bundle, agent) else {
                return Ok((false, None));
            };
            let counted = at >= standing.tally.since;
            if counted {
                standing.tally.add(sample, at);
            }
            counted
        };
        // An out-of-scope action demotes and locks even if it predates the phase.
        let latest = (counted || matches!(sample, Sample::OutOfScopeAction)).then_some(sample);
        let demotion = self.demote_if_due(agent, latest).await?;
        Ok((counted, demotion))
    }

    /// Re-checks every agent's windows: they slide, so time alone can
    /// demote. Returns the demotions made.
    ///
    /// # Errors
    /// `Unavailable` when a demotion could not be recorded.
    pub async fn sweep_demotions(&self) -> Result<Vec<Demotion>, ServiceError> {
        let agents: Vec<String> = self.bundle().agents().map(|a| a.id.clone()).collect();
        let mut demotions = Vec::new();
        for agent in agents {
            if let Some(demotion) = self.demote_if_due(&agent, None).await? {
                demotions.push(demotion);
            }
        }
        Ok(demotions)
    }

    async fn demote_if_due(
        &self,
        agent: &str,
        latest: Option<&Sample>,
    ) -> Result<Option<Demotion>, ServiceError> {
        // Phase changes are serialised: two samples arriving together must
        // not both demote from the same phase.
        let _phase_change = self.phase_changes.lock().await;
        let bundle = self.bundle();
        let now = self.now();
        let due = {
            let mut state = self.state();
            let Some(standing) = state.standing(&bundle, agent) else {
                return Ok(None);
            };
            check_demotion(
                standing.phase,
                &standing.tally,
                latest,
                &bundle.trust().demotion,
                now,
            )
            .map(|d| (d, standing.clone()))
        };
        let Some((demotion, standing)) = due else {
            return Ok(None);
        };
        let locked = standing.locked || demotion.lock;
        self.change_phase(
            agent,
            &standing,
            demotion.to,
            locked,
            PhaseCause::Demotion(&demotion),
            now,
        )
        .await?;
        self.metrics.demotion(demotion_cause(&demotion));
        tracing::warn!(agent, from = %demotion.from, to = %demotion.to, "{}", demotion.detail);
        Ok(Some(demotion))
    }

    /// Records and applies a phase change; cancels the agent's open
    /// promotions (their evidence no longer counts).
    async fn change_phase(
        &self,
        agent: &str,
        standing: &Standing,
        to: Phase,
        locked: bool,
        cause: PhaseCause<'_>,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        let cancelled: Vec<String> = self
            .state()
            .promotions
            .values()
            .filter(|p| {
                p.row.agent == agent
                    && !matches!(cause, PhaseCause::Promotion { id, .. } if id == p.row.id)
            })
            .map(|p| p.row.id.clone())
            .collect();
        let (kind, demotion, promotion_id, signoffs, gate) = match &cause {
            PhaseCause::Demotion(d) => ("phase.demoted", Some(*d), None, None, None),
            PhaseCause::Promotion { id, signoffs, gate } => (
                "phase.promoted",
                None,
                Some(*id),
                Some(*signoffs),
                Some(*gate),
            ),
        };
        let payload = json(&PhaseChangeRecord {
            agent,
            from: standing.phase,
            to,
            locked,
            demotion,
            promotion_id,
            signoffs,
            gate,
            evidence: EvidenceSummary::from(&standing.tally),
            cancelled_promotions: &cancelled,
        })?;
        let mut effects = vec![Effect::Agent(AgentRow {
            id: agent.to_owned(),
            phase: to.number(),
            locked,
            phase_since: timestamp_text(now),
        })];
        effects.extend(cancelled.iter().map(|id| Effect::PromotionClosed {
            id: id.clone(),
            status: "cancelled",
        }));
        if let Some(id) = promotion_id {
            effects.push(Effect::PromotionClosed {
                id: id.to_owned(),
                status: "completed",
            });
        }
        self.append(kind, payload, effects).await?;
        let mut state = self.state();
        state.standings.insert(
            agent.to_owned(),
            Standing {
                phase: to,
                locked,
                tally: Tally::new(now),
            },
        );
        state.promotions.retain(|_, p| p.row.agent != agent);
        drop(state);
        self.metrics.standing(agent, to, locked);
        Ok(())
    }

    /// Opens a promotion for an agent whose gate is cleared.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `NotFound`; `Conflict` when
    /// locked, already autonomous, already open, or the gate is not cleared
    /// (naming every unmet criterion); `Unavailable`.
    pub async fn open_promotion(
        &self,
        identity: &Identity,
        agent: &str,
    ) -> Result<PromotionView, ServiceError> {
        let operator = identity.operator("promote agents")?.to_owned();
        let _phase_change = self.phase_changes.lock().await;
        let view = self.view(agent)?;
        if view.locked {
            return Err(ServiceError::Conflict(format!(
                "agent `{agent}` is locked until an investigation is recorded"
            )));
        }
        let Some(gate) = &view.next_gate else {
            return Err(ServiceError::Conflict(format!(
                "agent `{agent}` is already autonomous"
            )));
        };
        if let Some(open) = &view.open_promotion {
            return Err(ServiceError::Conflict(format!(
                "promotion `{}` is already open for agent `{agent}`",
                open.id
            )));
        }
        if !gate.eligible {
            return Err(ServiceError::Conflict(format!(
                "the {} gate is not cleared; unmet: {}",
                gate_name(gate),
                describe_unmet(gate)
            )));
        }
        let row = PromotionRow {
            id: random_id("prm")?,
            agent: agent.to_owned(),
            from_phase: view.phase.number(),
            to_phase: gate.to.number(),
            opened_by: operator.clone(),
            opened_at: timestamp_text(self.now()),
            signoffs: Vec::new(),
        };
        #[derive(Serialize)]
        struct Record<'a> {
            promotion_id: &'a str,
            agent: &'a str,
            from: Phase,
            to: Phase,
            opened_by: &'a str,
            gate: &'a GateProgress,
        }
        let payload = json(&Record {
            promotion_id: &row.id,
            agent,
            from: view.phase,
            to: gate.to,
            opened_by: &operator,
            gate,
        })?;
        self.append(
            "promotion.opened",
            payload,
            vec![Effect::PromotionOpened(row.clone())],
        )
        .await?;
        let view = self.promotion_view(&row, "open");
        self.state()
            .promotions
            .insert(row.id.clone(), OpenPromotion { row });
        Ok(view)
    }

    /// Signs a promotion. When enough distinct operators have signed, and the
    /// gate is still cleared, the agent moves up one phase.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator, or the agent's owner when
    /// barred; `NotFound`; `Conflict` when the operator already signed or
    /// the gate no longer holds; `Unavailable`.
    pub async fn sign_off(
        &self,
        identity: &Identity,
        agent: &str,
        promotion_id: &str,
    ) -> Result<PromotionView, ServiceError> {
        let operator = identity.operator("sign off promotions")?.to_owned();
        let _phase_change = self.phase_changes.lock().await;
        let bundle = self.bundle();
        let declared = bundle
            .agent(agent)
            .ok_or_else(|| ServiceError::NotFound(format!("no agent `{agent}`")))?;
        if !bundle.trust().owner_may_sign && declared.owner == operator {
            return Err(ServiceError::Forbidden(format!(
                "`{operator}` owns agent `{agent}` and may not sign its promotion"
            )));
        }
        let row = self
            .state()
            .promotions
            .get(promotion_id)
            .filter(|p| p.row.agent == agent)
            .map(|p| p.row.clone())
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "no open promotion `{promotion_id}` for agent `{agent}`"
                ))
            })?;
        if row.signoffs.contains(&operator) {
            return Err(ServiceError::Conflict(format!(
                "`{operator}` already signed promotion `{promotion_id}`; a second sign-off by the same operator does not count"
            )));
        }
        let view = self.view(agent)?;
        let gate = view
            .next_gate
            .as_ref()
            .filter(|g| g.eligible && view.phase.number() == row.from_phase && !view.locked);
        let Some(gate) = gate else {
            let unmet = view.next_gate.as_ref().map_or_else(
                || "the agent is no longer in the phase it was promoted from".to_owned(),
                describe_unmet,
            );
            return Err(ServiceError::Conflict(format!(
                "the gate no longer holds; unmet: {unmet}"
            )));
        };
        let mut signoffs = row.signoffs.clone();
        signoffs.push(operator.clone());
        #[derive(Serialize)]
        struct Record<'a> {
            promotion_id: &'a str,
            agent: &'a str,
            operator: &'a str,
            signoffs: &'a [String],
            required: u32,
        }
        let payload = json(&Record {
            promotion_id,
            agent,
            operator: &operator,
            signoffs: &signoffs,
            required: gate.signoffs_required,
        })?;
        self.append(
            "promotion.signed",
            payload,
            vec![Effect::PromotionSigned {
                id: promotion_id.to_owned(),
                operator: operator.clone(),
            }],
        )
        .await?;
        let signed = PromotionRow {
            signoffs: signoffs.clone(),
            ..row
        };
        if (signoffs.len() as u64) < u64::from(gate.signoffs_required) {
            let view = self.promotion_view(&signed, "open");
            if let Some(open) = self.state().promotions.get_mut(promotion_id) {
                open.row = signed;
            }
            return Ok(view);
        }
        let standing = self
            .state()
            .standing(&bundle, agent)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("no agent `{agent}`")))?;
        let now = self.now();
        self.change_phase(
            agent,
            &standing,
            gate.to,
            false,
            PhaseCause::Promotion {
                id: promotion_id,
                signoffs: &signoffs,
                gate,
            },
            now,
        )
        .await?;
        self.metrics.promotion(gate.to);
        Ok(self.promotion_view(&signed, "completed"))
    }

    /// Records an investigation of a locked agent: lifts the lock, not the
    /// phase.
    ///
    /// # Errors
    /// `Forbidden` for anyone but an operator; `Invalid` without findings;
    /// `NotFound`; `Conflict` when the agent is not locked; `Unavailable`.
    pub async fn investigate(
        &self,
        identity: &Identity,
        agent: &str,
        findings: &str,
    ) -> Result<AgentView, ServiceError> {
        let operator = identity.operator("record investigations")?.to_owned();
        if findings.trim().is_empty() {
            return Err(ServiceError::invalid(
                "findings",
                "say what the investigation found",
            ));
        }
        let _phase_change = self.phase_changes.lock().await;
        let bundle = self.bundle();
        let standing = self
            .state()
            .standing(&bundle, agent)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("no agent `{agent}`")))?;
        if !standing.locked {
            return Err(ServiceError::Conflict(format!(
                "agent `{agent}` is not locked"
            )));
        }
        #[derive(Serialize)]
        struct Record<'a> {
            agent: &'a str,
            operator: &'a str,
            findings: &'a str,
            phase: Phase,
        }
        let payload = json(&Record {
            agent,
            operator: &operator,
            findings,
            phase: standing.phase,
        })?;
        let since = timestamp_text(standing.tally.since);
        let effect = Effect::Agent(AgentRow {
            id: agent.to_owned(),
            phase: standing.phase.number(),
            locked: false,
            phase_since: since,
        });
        self.append("investigation.recorded", payload, vec![effect])
            .await?;
        if let Some(current) = self.state().standings.get_mut(agent) {
            current.locked = false;
        }
        self.metrics.standing(agent, standing.phase, false);
        self.view(agent)
    }
}

enum PhaseCause<'a> {
    Demotion(&'a Demotion),
    Promotion {
        id: &'a str,
        signoffs: &'a [String],
        gate: &'a GateProgress,
    },
}

fn demotion_cause(demotion: &Demotion) -> &'static str {
    match demotion.rule {
        clearance_engine::trust::DemotionRule::AccuracyDrift => "accuracy_drift",
        clearance_engine::trust::DemotionRule::RollbackRate => "rollback_rate",
        clearance_engine::trust::DemotionRule::OutOfScopeAction => "out_of_scope_action",
    }
}

fn gate_name(gate: &GateProgress) -> String {
    format!("{} → {}", gate.transition.from(), gate.to)
}

/// `samples 40/100, diagnostic_accuracy 0.91 (needs above 0.95)`.
fn describe_unmet(gate: &GateProgress) -> String {
    gate.criteria
        .iter()
        .filter(|c| !c.met)
        .map(|c| match c.compared {
            Some(value) if c.comparison == "at_least" => {
                format!("{} {value}/{}", c.name, c.threshold)
            }
            Some(value) => format!(
                "{} {value:.3} (needs {} {})",
                c.name,
                c.comparison.replace('_', " "),
                c.threshold
            ),
            None => format!("{} (no samples)", c.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
