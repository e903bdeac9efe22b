//! A phase change — a promotion completed or a demotion — as one ledger
//! record with its cause. It changes the agent only from the version it was
//! decided on: the store refuses it when the agent changed meanwhile (on
//! this instance or another), so a phase is never changed twice for one
//! cause.

use clearance_engine::{
    Phase,
    trust::{Demotion, GateProgress},
};
use clearance_store::{Guard, Store};
use jiff::Timestamp;
use serde::Serialize;

use super::{EvidenceSummary, Trust};
use crate::{
    ServiceError,
    core::Plan,
    records::{json, own_effects},
    state::Standing,
};

/// Why the phase changes.
pub(super) enum Cause<'a> {
    Demotion(&'a Demotion),
    Promotion {
        id: &'a str,
        signoffs: &'a [String],
        gate: &'a GateProgress,
        /// The last record applied before `gate` was measured: a sample
        /// recorded after it makes the gate stale.
        measured_at: u64,
    },
}

/// A change of `agent` from the standing it was decided on.
pub(super) struct PhaseChange<'a> {
    pub agent: &'a str,
    pub from: &'a Standing,
    pub to: Phase,
    pub locked: bool,
    pub cause: Cause<'a>,
}

/// `phase.promoted`, `phase.demoted`.
#[derive(Serialize)]
struct PhaseChangeRecord<'a> {
    agent: &'a str,
    from: Phase,
    to: Phase,
    locked: bool,
    /// When the agent entered `from`: the version this change replaces.
    from_since: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    demotion: Option<&'a Demotion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promotion_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signoffs: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<&'a GateProgress>,
    evidence: EvidenceSummary,
    cancelled_promotions: Vec<String>,
}

impl<S: Store> Trust<'_, S> {
    /// Records and applies a phase change; cancels the agent's other open
    /// promotions (their evidence no longer counts).
    pub(super) async fn change_phase(&self, change: PhaseChange<'_>) -> Result<(), ServiceError> {
        let (kind, demotion, promotion_id, signoffs, gate) = match &change.cause {
            Cause::Demotion(d) => ("phase.demoted", Some(*d), None, None, None),
            Cause::Promotion {
                id, signoffs, gate, ..
            } => (
                "phase.promoted",
                None,
                Some(*id),
                Some(*signoffs),
                Some(*gate),
            ),
        };
        let from = change.from;
        self.core
            .transact(|state, _, now| {
                let current = state.standings.get(change.agent);
                if current
                    .is_none_or(|s| s.phase != from.phase || s.tally.since != from.tally.since)
                {
                    return Err(ServiceError::Conflict(format!(
                        "agent `{}` changed phase meanwhile",
                        change.agent
                    )));
                }
                if matches!(change.cause, Cause::Promotion { .. }) && state.sampling(change.agent)
                {
                    return Err(ServiceError::Conflict(format!(
                        "a sample of agent `{}` is being recorded right now; its gate is measured again once it is",
                        change.agent
                    )));
                }
                let cancelled: Vec<String> = state
                    .promotions
                    .values()
                    .filter(|p| p.agent == change.agent && Some(p.id.as_str()) != promotion_id)
                    .map(|p| p.id.clone())
                    .collect();
                let payload = json(&PhaseChangeRecord {
                    agent: change.agent,
                    from: from.phase,
                    to: change.to,
                    locked: change.locked,
                    from_since: from.tally.since,
                    demotion,
                    promotion_id,
                    signoffs,
                    gate,
                    evidence: EvidenceSummary::from(&from.tally),
                    cancelled_promotions: cancelled,
                })?;
                // A sample recorded after the records a promotion's gate was
                // measured on (by another instance, not applied here then)
                // makes it stale.
                let guards = match change.cause {
                    Cause::Promotion { measured_at, .. } => vec![Guard::NoSampleAfter {
                        agent: change.agent.to_owned(),
                        seq: measured_at,
                    }],
                    Cause::Demotion(_) => Vec::new(),
                };
                Ok(Plan {
                    kind,
                    effects: own_effects(kind, &payload, now)?,
                    payload,
                    guards,
                    value: (),
                })
            })
            .await?;
        Ok(())
    }
}
