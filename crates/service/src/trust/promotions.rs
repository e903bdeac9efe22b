//! Promotions and investigations: an operator opens a promotion for an
//! agent whose gate is cleared, distinct operators sign it (never an
//! agent, never the same person twice), and at the last signature — with
//! the gate re-checked — the agent moves up one phase. An investigation
//! lifts a lock, not the phase.

use clearance_engine::{
    Identity, Phase,
    trust::{GateProgress, check_demotion},
};
use clearance_store::Store;
use serde::Serialize;

use super::{
    PromotionView, Trust,
    phase::{Cause, PhaseChange},
    views::{describe_unmet, gate_name},
};
use crate::{
    ServiceError,
    core::Plan,
    identity::{Permissions as _, random_id},
    records::{InvestigationRecord, json, own_effects},
    text::check_operator_text,
};

/// Attempts at recording a promotion whose gate new samples kept making
/// stale.
const PROMOTION_ATTEMPTS: usize = 4;

/// `promotion.opened`.
#[derive(Serialize)]
struct OpenedRecord<'a> {
    promotion_id: &'a str,
    agent: &'a str,
    from: Phase,
    to: Phase,
    opened_by: &'a str,
    gate: &'a GateProgress,
}

/// `promotion.signed`.
#[derive(Serialize)]
struct SignedRecord<'a> {
    promotion_id: &'a str,
    agent: &'a str,
    operator: &'a str,
    signoffs: &'a [String],
    required: u32,
}

impl<S: Store> Trust<'_, S> {
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
        let operator = identity.operator("promote agents")?;
        let _phase_change = self.core.phase_changes.lock().await;
        let view = self.view(agent)?;
        if view.locked {
            return Err(ServiceError::Conflict(format!(
                "agent `{agent}` is locked until an investigation is recorded"
            )));
        }
        self.no_demotion_due(agent)?;
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
        let id = random_id("prm")?;
        let payload = json(&OpenedRecord {
            promotion_id: &id,
            agent,
            from: view.phase,
            to: gate.to,
            opened_by: operator,
            gate,
        })?;
        self.core
            .transact(|_, _, now| {
                Ok(Plan {
                    kind: "promotion.opened",
                    effects: own_effects("promotion.opened", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        let state = self.core.state();
        let row = state
            .promotions
            .get(&id)
            .ok_or_else(|| ServiceError::Conflict(format!("promotion `{id}` closed meanwhile")))?;
        Ok(PromotionView::of(row, gate.signoffs_required, "open"))
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
        let operator = identity.operator("sign off promotions")?;
        let _phase_change = self.core.phase_changes.lock().await;
        let bundle = self.core.bundle();
        let declared = bundle
            .agent(agent)
            .ok_or_else(|| ServiceError::NotFound(format!("no agent `{agent}`")))?;
        if !bundle.trust().owner_may_sign && declared.owner == operator {
            return Err(ServiceError::Forbidden(format!(
                "`{operator}` owns agent `{agent}` and may not sign its promotion"
            )));
        }
        let row = self
            .core
            .state()
            .promotions
            .get(promotion_id)
            .filter(|p| p.agent == agent)
            .cloned()
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "no open promotion `{promotion_id}` for agent `{agent}`"
                ))
            })?;
        let required = self.gate_still_holds(agent, row.from)?.signoffs_required;
        let signed = if row.signoffs.iter().any(|s| s == operator) {
            if (row.signoffs.len() as u64) < u64::from(required) {
                return Err(ServiceError::Conflict(format!(
                    "`{operator}` already signed promotion `{promotion_id}`; a second sign-off by the same operator does not count"
                )));
            }
            // Signed by enough operators yet open: recording its phase
            // change was refused (its samples kept changing). A signer
            // signing again retries it; no signature is added.
            row
        } else {
            self.record_signature(agent, promotion_id, operator, required, row)
                .await?
        };
        if (signed.signoffs.len() as u64) < u64::from(required) {
            return Ok(PromotionView::of(&signed, required, "open"));
        }
        self.complete(agent, promotion_id, &signed, required).await
    }

    /// Records `operator`'s signature of promotion `row`; the promotion with
    /// every signature recorded so far, on any instance.
    async fn record_signature(
        &self,
        agent: &str,
        promotion_id: &str,
        operator: &str,
        required: u32,
        row: clearance_store::PromotionRow,
    ) -> Result<clearance_store::PromotionRow, ServiceError> {
        let mut signoffs = row.signoffs.clone();
        signoffs.push(operator.to_owned());
        let payload = json(&SignedRecord {
            promotion_id,
            agent,
            operator,
            signoffs: &signoffs,
            required,
        })?;
        self.core
            .transact(|_, _, now| {
                Ok(Plan {
                    kind: "promotion.signed",
                    effects: own_effects("promotion.signed", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        Ok(self
            .core
            .state()
            .promotions
            .get(promotion_id)
            .cloned()
            .unwrap_or(clearance_store::PromotionRow { signoffs, ..row }))
    }

    /// Moves the agent of the fully signed promotion up, if its gate still
    /// holds when the move is recorded.
    async fn complete(
        &self,
        agent: &str,
        promotion_id: &str,
        signed: &clearance_store::PromotionRow,
        required: u32,
    ) -> Result<PromotionView, ServiceError> {
        for attempt in 0..PROMOTION_ATTEMPTS {
            if attempt > 0 {
                // A sample being recorded on this instance is in the ledger
                // within a commit or two.
                tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
            }
            // What the gate is measured on: the records applied before it
            // is, and the agent's standing then (what the move replaces).
            let (measured_at, standing) = {
                let state = self.core.state();
                (state.applied, state.standings.get(agent).cloned())
            };
            let standing =
                standing.ok_or_else(|| ServiceError::NotFound(format!("no agent `{agent}`")))?;
            let gate = self.gate_still_holds(agent, signed.from)?;
            let change = PhaseChange {
                agent,
                from: &standing,
                to: gate.to,
                locked: false,
                cause: Cause::Promotion {
                    id: promotion_id,
                    signoffs: &signed.signoffs,
                    gate: &gate,
                    measured_at,
                },
            };
            let why = match self.change_phase(change).await {
                Ok(()) => {
                    self.core.metrics().promotion(gate.to);
                    return Ok(PromotionView::of(signed, required, "completed"));
                }
                Err(ServiceError::Conflict(why)) => why,
                Err(other) => return Err(other),
            };
            // Refused: the agent changed phase meanwhile (the last signature
            // on another instance completed the promotion, or a demotion
            // cancelled it), or a sample came after the gate's measure.
            self.core.sync().await?;
            let state = self.core.state();
            let now = state.standings.get(agent);
            if now.is_some_and(|now| {
                now.phase == standing.phase && now.tally.since == standing.tally.since
            }) {
                tracing::info!(agent, %why, "promotion refused; measuring the gate again");
                continue;
            }
            if !state.promotions.contains_key(promotion_id)
                && now.is_some_and(|now| now.phase == gate.to)
            {
                tracing::info!(agent, %why, "promotion completed elsewhere");
                return Ok(PromotionView::of(signed, required, "completed"));
            }
            return Err(ServiceError::Conflict(format!(
                "agent `{agent}` changed phase while promotion `{promotion_id}` was recorded ({why}); it was not completed"
            )));
        }
        Err(ServiceError::Conflict(format!(
            "agent `{agent}`'s samples kept changing while promotion `{promotion_id}` was recorded; it stays open, fully signed: a signer signing again retries it"
        )))
    }

    /// The gate from `from`, measured now, if it still holds for `agent`.
    fn gate_still_holds(&self, agent: &str, from: Phase) -> Result<GateProgress, ServiceError> {
        self.no_demotion_due(agent)?;
        let view = self.view(agent)?;
        match view.next_gate {
            Some(gate) if gate.eligible && view.phase == from && !view.locked => Ok(gate),
            Some(gate) if view.phase == from => Err(ServiceError::Conflict(format!(
                "the gate no longer holds; unmet: {}",
                if view.locked {
                    "the agent is locked".to_owned()
                } else {
                    describe_unmet(&gate)
                }
            ))),
            _ => Err(ServiceError::Conflict(
                "the gate no longer holds; unmet: the agent is no longer in the phase it was promoted from"
                    .into(),
            )),
        }
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
    ) -> Result<super::AgentView, ServiceError> {
        let operator = identity.operator("record investigations")?;
        if findings.trim().is_empty() {
            return Err(ServiceError::invalid(
                "findings",
                "say what the investigation found",
            ));
        }
        check_operator_text("findings", findings)?;
        let _phase_change = self.core.phase_changes.lock().await;
        self.core
            .transact(|state, _, now| {
                let standing = state
                    .standings
                    .get(agent)
                    .ok_or_else(|| ServiceError::NotFound(format!("no agent `{agent}`")))?;
                if !standing.locked {
                    return Err(ServiceError::Conflict(format!(
                        "agent `{agent}` is not locked"
                    )));
                }
                let payload = json(&InvestigationRecord {
                    agent: agent.to_owned(),
                    operator: operator.to_owned(),
                    findings: findings.to_owned(),
                    phase: standing.phase,
                    phase_since: standing.tally.since,
                })?;
                Ok(Plan {
                    kind: "investigation.recorded",
                    effects: own_effects("investigation.recorded", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        self.view(agent)
    }

    /// `Conflict` when a rule already demotes `agent` and the timer has not
    /// made the demotion yet (or its sample's follow-up failed): no
    /// promotion passes a demotion that is due.
    fn no_demotion_due(&self, agent: &str) -> Result<(), ServiceError> {
        let bundle = self.core.bundle();
        let state = self.core.state();
        let due = state.standings.get(agent).and_then(|standing| {
            check_demotion(
                standing.phase,
                &standing.tally,
                None,
                &bundle.trust().demotion,
                self.core.clock(),
            )
        });
        match due {
            Some(demotion) => Err(ServiceError::Conflict(format!(
                "agent `{agent}` is due a demotion: {}",
                demotion.detail
            ))),
            None => Ok(()),
        }
    }
}
