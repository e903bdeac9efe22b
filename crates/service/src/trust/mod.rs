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

/// How many times a sample's demotion is looked at again when another
/// phase change gets there first.
const DEMOTION_ATTEMPTS: usize = 3;

/// What a sample came to.
enum AfterSample {
    /// It demoted the agent.
    Demoted(Demotion),
    /// A demotion recorded after it already left the agent in this phase.
    Covered(Phase),
    /// No rule trips.
    Stays,
}

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

    /// After a sample about `agent` recorded at `recorded_at` (and counted
    /// by the state, when taken in its phase): demotes the agent if a rule
    /// now trips. Returns the demotion this sample made.
    pub(crate) async fn after_sample(
        &self,
        agent: &str,
        sample: &Sample,
        recorded_at: Timestamp,
    ) -> Result<Option<Demotion>, ServiceError> {
        Ok(match self.demote_after(agent, sample, recorded_at).await? {
            AfterSample::Demoted(demotion) => Some(demotion),
            AfterSample::Covered(_) | AfterSample::Stays => None,
        })
    }

    /// [`Trust::after_sample`] when many may arrive at once (a batch of
    /// platform events). Returns the phase the agent was demoted to, by
    /// this sample or by the demotion covering it.
    pub(crate) async fn after_recorded_sample(
        &self,
        agent: &str,
        sample: &Sample,
        recorded_at: Timestamp,
    ) -> Result<Option<Phase>, ServiceError> {
        Ok(match self.demote_after(agent, sample, recorded_at).await? {
            AfterSample::Demoted(demotion) => Some(demotion.to),
            AfterSample::Covered(phase) => Some(phase),
            AfterSample::Stays => None,
        })
    }

    /// The demotion one sample calls for, made once. A demotion recorded
    /// after the sample that already put the agent where this one would —
    /// another event of the batch, another instance, the timer — covers
    /// it. Another phase change recorded meanwhile (a promotion completed
    /// on another instance before the sample reached it) does not swallow
    /// it: the agent is looked at again, on its new standing.
    async fn demote_after(
        &self,
        agent: &str,
        sample: &Sample,
        recorded_at: Timestamp,
    ) -> Result<AfterSample, ServiceError> {
        let _phase_change = self.core.phase_changes.lock().await;
        for _ in 0..DEMOTION_ATTEMPTS {
            if let Some(to) = self.covered(agent, sample, recorded_at) {
                tracing::debug!(agent, "sample covered by a later demotion");
                return Ok(AfterSample::Covered(to));
            }
            match self.demote_locked(agent, Some(sample)).await {
                Ok(Some(demotion)) => return Ok(AfterSample::Demoted(demotion)),
                Ok(None) => return Ok(AfterSample::Stays),
                Err(ServiceError::Conflict(why)) => {
                    tracing::info!(agent, %why, "the agent changed phase meanwhile; looking again");
                    self.core
                        .store
                        .sync()
                        .await
                        .map_err(|e| self.core.refused(e, "demotion"))?;
                }
                Err(other) => return Err(other),
            }
        }
        // The sample is recorded, and counted: the minute's sweep makes the
        // demotion if it is still due. An error here would answer the
        // sample's sender as if it were not recorded.
        tracing::warn!(
            agent,
            "a demotion kept racing other phase changes; the sweep makes it if still due"
        );
        Ok(AfterSample::Stays)
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
            let _phase_change = self.core.phase_changes.lock().await;
            match self.demote_locked(&agent, None).await {
                Ok(Some(demotion)) => demotions.push(demotion),
                Ok(None) => {}
                // Another instance changed the agent first; the next sweep
                // looks at it again if a demotion is still due.
                Err(ServiceError::Conflict(why)) => {
                    tracing::info!(agent, %why, "agent changed phase elsewhere during the sweep");
                }
                Err(other) => return Err(other),
            }
        }
        Ok(demotions)
    }

    /// Demotes `agent` if a rule trips now, `latest` its newest sample; the
    /// phase-change lock held by the caller. `Conflict` when the agent
    /// changed phase after the standing this was decided on.
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
        self.change_phase(change).await?;
        self.core
            .metrics()
            .demotion(views::demotion_cause(&demotion));
        tracing::warn!(agent, from = %demotion.from, to = %demotion.to, "{}", demotion.detail);
        Ok(Some(demotion))
    }
}
