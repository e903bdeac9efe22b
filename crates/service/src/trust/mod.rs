//! [`Trust`]: earned trust as use cases. Graded evidence comes in, gates
//! are measured against the agent's tally, operators open and sign
//! promotions, an investigation lifts a lock, and demotion happens on its
//! own — after every sample and on a timer, since windows slide. Every
//! phase change is a ledger record with its cause, and changes the agent
//! only from the version it was decided on (so two instances never both
//! demote it).

mod console;
mod evidence;
mod phase;
mod promotions;
mod views;

use clearance_engine::{
    Identity, Phase,
    trust::{Demotion, Sample, check_demotion, evaluate_gate},
};
use clearance_store::Store;
use jiff::Timestamp;

pub use console::{AgentDay, AgentHistory, PhaseEvent, RecommendationView, Verdict};
pub use evidence::EvidenceInput;
pub use views::{AgentView, EvidenceReceipt, EvidenceSummary, PromotionView};

use crate::{ServiceError, core::Core};
use phase::{Cause, PhaseChange};

/// Evidence, gates, promotions, demotions and locks.
pub struct Trust<'a, S: Store> {
    pub(crate) core: &'a Core<S>,
}

impl<S: Store> Trust<'_, S> {
    fn view(&self, id: &str) -> Result<AgentView, ServiceError> {
        let bundle = self.core.bundle();
        let declared = bundle.agent(id).ok_or_else(|| {
            ServiceError::NotFound(format!("no agent `{id}` in the active bundle"))
        })?;
        let now = self.core.clock();
        let state = self.core.state();
        let standing = state
            .standings
            .get(id)
            .ok_or_else(|| ServiceError::NotFound(format!("agent `{id}` is not registered yet")))?;
        let trust = bundle.trust();
        let next_gate = trust
            .gate(standing.phase)
            .map(|gate| evaluate_gate(gate, &standing.tally, trust.max_edit_ratio, now));
        let open_promotion = state
            .promotions
            .values()
            .find(|p| p.agent == id)
            .map(|p| PromotionView::of(p, self.signoffs_required(p.from), "open"));
        Ok(AgentView {
            id: id.to_owned(),
            owner: declared.owner.clone(),
            phase: standing.phase,
            locked: standing.locked,
            phase_since: (standing.tally.since != jiff::Timestamp::UNIX_EPOCH)
                .then_some(standing.tally.since),
            evidence: EvidenceSummary::from(&standing.tally),
            eligible: !standing.locked && next_gate.as_ref().is_some_and(|g| g.eligible),
            next_gate,
            open_promotion,
            demotion_rules: clearance_engine::trust::demotion_readings(
                &standing.tally,
                &trust.demotion,
                now,
            )
            .to_vec(),
            platform: self
                .core
                .shared
                .publications
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .by_agent
                .get(id)
                .cloned(),
        })
    }

    fn signoffs_required(&self, from: clearance_engine::Phase) -> u32 {
        self.core
            .bundle()
            .trust()
            .gate(from)
            .map_or(1, |g| g.signoffs)
    }

    /// Every agent of the active bundle, with its standing; an agent sees
    /// only itself.
    ///
    /// # Errors
    /// `NotFound` for an agent the bundle lacks.
    pub fn agents(&self, identity: &Identity) -> Result<Vec<AgentView>, ServiceError> {
        if let Identity::Agent { agent } = identity {
            return Ok(vec![self.view(agent)?]);
        }
        self.core
            .bundle()
            .agents()
            .map(|a| self.view(&a.id))
            .collect()
    }

    /// One agent's standing and gate progress.
    ///
    /// # Errors
    /// `Forbidden` for another agent; `NotFound`.
    pub fn agent(&self, identity: &Identity, id: &str) -> Result<AgentView, ServiceError> {
        if let Identity::Agent { agent } = identity
            && agent != id
        {
            return Err(ServiceError::Forbidden(format!(
                "agent `{agent}` can read only its own standing"
            )));
        }
        self.view(id)
    }

    /// After a sample about `agent` was recorded (and counted by the state,
    /// when taken in its phase): demotes the agent if a rule now trips.
    pub(crate) async fn after_sample(
        &self,
        agent: &str,
        sample: &Sample,
    ) -> Result<Option<Demotion>, ServiceError> {
        self.demote_if_due(agent, Some(sample)).await
    }

    /// [`Trust::after_sample`] for a sample recorded at `recorded_at`, when
    /// many may arrive at once (a batch of platform events): one already
    /// covered by a demotion recorded after it — the agent is where a new
    /// demotion would put it, locked, its tally restarted later than the
    /// sample — records no second demotion. Returns the phase the agent
    /// was demoted to, by this sample or by the one covering it.
    pub(crate) async fn after_recorded_sample(
        &self,
        agent: &str,
        sample: &Sample,
        recorded_at: Timestamp,
    ) -> Result<Option<Phase>, ServiceError> {
        let _phase_change = self.core.phase_changes.lock().await;
        if let Some(to) = self.covered(agent, sample, recorded_at) {
            tracing::debug!(agent, "sample covered by a later demotion");
            return Ok(Some(to));
        }
        Ok(self.demote_locked(agent, Some(sample)).await?.map(|d| d.to))
    }

    /// The phase a demotion recorded after `recorded_at` left the agent in,
    /// when that is where `sample` would demote it now.
    fn covered(&self, agent: &str, sample: &Sample, recorded_at: Timestamp) -> Option<Phase> {
        let bundle = self.core.bundle();
        let state = self.core.state();
        let standing = state.standings.get(agent)?;
        if !(standing.locked && recorded_at < standing.tally.since) {
            return None;
        }
        let due = check_demotion(
            standing.phase,
            &standing.tally,
            Some(sample),
            &bundle.trust().demotion,
            self.core.clock(),
        )?;
        (due.to == standing.phase && due.lock).then_some(standing.phase)
    }

    /// Re-checks every agent's windows: they slide, so time alone can
    /// demote. Returns the demotions made.
    ///
    /// # Errors
    /// `Unavailable` when a demotion could not be recorded.
    pub async fn sweep_demotions(&self) -> Result<Vec<Demotion>, ServiceError> {
        let agents: Vec<String> = self.core.bundle().agents().map(|a| a.id.clone()).collect();
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
        let _phase_change = self.core.phase_changes.lock().await;
        self.demote_locked(agent, latest).await
    }

    /// [`Trust::demote_if_due`], the phase-change lock held by the caller.
    async fn demote_locked(
        &self,
        agent: &str,
        latest: Option<&Sample>,
    ) -> Result<Option<Demotion>, ServiceError> {
        let bundle = self.core.bundle();
        let now = self.core.clock();
        let due = {
            let state = self.core.state();
            let Some(standing) = state.standings.get(agent) else {
                return Ok(None);
            };
            check_demotion(
                standing.phase,
                &standing.tally,
                latest,
                &bundle.trust().demotion,
                now,
            )
            .map(|demotion| (demotion, standing.clone()))
        };
        let Some((demotion, standing)) = due else {
            return Ok(None);
        };
        let change = PhaseChange {
            agent,
            from: &standing,
            to: demotion.to,
            locked: standing.locked || demotion.lock,
            cause: Cause::Demotion(&demotion),
        };
        match self.change_phase(change).await {
            Ok(()) => {}
            // Another instance changed the agent first (and recorded why).
            Err(ServiceError::Conflict(why)) => {
                tracing::info!(agent, %why, "demotion already made elsewhere");
                return Ok(None);
            }
            Err(other) => return Err(other),
        }
        self.core
            .metrics()
            .demotion(views::demotion_cause(&demotion));
        tracing::warn!(agent, from = %demotion.from, to = %demotion.to, "{}", demotion.detail);
        Ok(Some(demotion))
    }
}
