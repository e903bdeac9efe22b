//! [`Gateway`]: the running service. It starts from the stored state and
//! follows the ledger from there, activates bundles, and hands out the
//! per-use-case services every face calls: [`Gateway::decisions`],
//! [`Gateway::approvals`], [`Gateway::kill_switches`],
//! [`Gateway::reports`], [`Gateway::trust`], [`Gateway::audit`].

use std::sync::Arc;

use clearance_engine::{Bundle, BundleSource, Phase};
use clearance_store::{Effect, Store};

use crate::{
    Metrics, Overview, PhaseChanged, Publication, PublicationState, ServiceError, Sessions,
    approvals::Approvals,
    audit::Audit,
    checkpoints::Checkpoints,
    core::{Clock, Core, Follower, Plan, hard_stop_horizon},
    decisions::Decisions,
    kill_switches::KillSwitches,
    reconcile::Reconcile,
    records::{RegistrationRecord, json, own_effects},
    reports::Reports,
    state::State,
    trust::Trust,
};

/// The service.
pub struct Gateway<S: Store> {
    pub(crate) core: Core<S>,
}

impl<S: Store> Gateway<S> {
    /// Loads the stored state, follows the ledger from there, and activates
    /// `bundle` (recording the activation, with its files, first).
    ///
    /// # Errors
    /// When the store cannot be read or written.
    pub async fn start(
        store: S,
        bundle: Bundle,
        source: &BundleSource,
        clock: Clock,
    ) -> Result<Gateway<S>, ServiceError> {
        let horizon = clock()
            .checked_sub(hard_stop_horizon(&bundle))
            .unwrap_or(jiff::Timestamp::MIN);
        let state = store
            .load(horizon, State::from_stored, |state, row| {
                state.apply(&Effect::EvidenceRecorded(row));
                Ok(())
            })
            .await
            .map_err(|e| ServiceError::from_store(e, "loading the stored state"))?;
        let as_of = state.applied;
        let core = Core::new(store, state, bundle, clock)?;
        let follower = Arc::new(Follower {
            shared: core.shared.clone(),
        });
        core.store
            .attach(follower, as_of)
            .await
            .map_err(|e| ServiceError::from_store(e, "following the ledger"))?;
        {
            let state = core.state();
            for (agent, standing) in &state.standings {
                core.metrics()
                    .standing(agent, standing.phase, standing.locked);
            }
        }
        let gateway = Gateway { core };
        let bundle = gateway.bundle();
        gateway.record_activation(&bundle, source).await?;
        gateway.register_new_agents(&bundle).await?;
        Ok(gateway)
    }

    /// Makes `bundle` the active one, after its activation is in the ledger
    /// (other instances follow it from there). On error the previous
    /// bundle stays active.
    ///
    /// # Errors
    /// When the ledger cannot record the activation.
    pub async fn activate(
        &self,
        bundle: Bundle,
        source: &BundleSource,
    ) -> Result<(), ServiceError> {
        self.record_activation(&bundle, source).await?;
        self.register_new_agents(&bundle).await?;
        self.core
            .shared
            .own_checkpoints
            .store(Arc::new(bundle.checkpoints().cloned()));
        self.core.shared.bundle.store(Arc::new(bundle));
        Ok(())
    }

    async fn record_activation(
        &self,
        bundle: &Bundle,
        source: &BundleSource,
    ) -> Result<(), ServiceError> {
        let payload = Core::<S>::activation(bundle, source)?;
        self.core
            .transact(|_, _, now| {
                Ok(Plan {
                    kind: "bundle.activated",
                    effects: own_effects("bundle.activated", &payload, now)?,
                    payload,
                    guards: Vec::new(),
                    value: (),
                })
            })
            .await?;
        Ok(())
    }

    /// Records the starting phase of every agent the ledger has not seen:
    /// from then on its phase lives in the store, and a bundle that says
    /// otherwise changes nothing (a reload never silently promotes).
    async fn register_new_agents(&self, bundle: &Bundle) -> Result<(), ServiceError> {
        let new: Vec<(String, Phase)> = {
            let state = self.core.state();
            bundle
                .agents()
                .filter(|a| !state.standings.contains_key(&a.id))
                .map(|a| (a.id.clone(), a.starting_phase))
                .collect()
        };
        for (agent, phase) in new {
            let result = self
                .core
                .transact(|state, _, now| {
                    if state.standings.contains_key(&agent) {
                        return Err(ServiceError::Conflict(format!("`{agent}` is registered")));
                    }
                    let payload = json(&RegistrationRecord {
                        agent: agent.clone(),
                        phase,
                    })?;
                    Ok(Plan {
                        kind: "agent.registered",
                        effects: own_effects("agent.registered", &payload, now)?,
                        payload,
                        guards: Vec::new(),
                        value: (),
                    })
                })
                .await;
            match result {
                // Another instance registered it first: its record says so.
                Ok(_) | Err(ServiceError::Conflict(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// The active bundle.
    pub fn bundle(&self) -> Arc<Bundle> {
        self.core.bundle()
    }

    /// When this instance signs the ledger's head: `checkpoints:` of the
    /// bundle it loaded itself (at start, or activated on it since), never
    /// of a bundle it followed from another instance's record, which
    /// anyone able to write to the database could have appended.
    pub fn checkpoint_settings(&self) -> Option<clearance_engine::bundle::Checkpoints> {
        self.core.shared.own_checkpoints.load().as_ref().clone()
    }

    /// The time, from the gateway's clock.
    pub fn now(&self) -> jiff::Timestamp {
        self.core.clock()
    }

    /// False after a ledger append failed, until one succeeds again.
    pub fn healthy(&self) -> bool {
        self.core.healthy()
    }

    /// Checks the store. After a failed append, also probes whether it takes
    /// writes again — so that an instance a load balancer took out of
    /// rotation (and so sends no decisions) can come back.
    ///
    /// # Errors
    /// Why the gateway cannot serve decisions now, in words for operators
    /// (the detail is logged).
    pub async fn check_health(&self) -> Result<(), String> {
        if let Err(error) = self.core.store.ping().await {
            tracing::warn!(%error, "health: the database does not answer");
            return Err("the database does not answer".into());
        }
        if let Some(seq) = self.core.state().unreadable {
            return Err(format!(
                "ledger record {seq}, appended by another instance, cannot be read by this version: \
                 decisions are refused until it is restarted on a version that reads it"
            ));
        }
        if self.healthy() {
            return Ok(());
        }
        match self.core.store.probe_write().await {
            Ok(()) => {
                self.core.set_healthy(true);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "health: the database does not take writes");
                Err("the database does not take writes: decisions are refused".into())
            }
        }
    }

    /// The newest ledger record this instance's state reflects.
    pub fn applied_seq(&self) -> u64 {
        self.core.state().applied
    }

    /// Catches up on other instances' records now.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn sync(&self) -> Result<u64, ServiceError> {
        self.core.sync().await
    }

    /// Every phase change this instance records from now on, once it is in
    /// the ledger.
    pub fn subscribe_phase_changes(&self) -> tokio::sync::broadcast::Receiver<PhaseChanged> {
        self.core.shared.changes.subscribe()
    }

    /// Where publishing `agent`'s latest phase change to the GitOps
    /// repository stands; shown with the agent and counted in `/metrics`.
    pub fn publication(&self, agent: &str, publication: Publication) {
        self.core.metrics().publication(&publication.state);
        let mut publications = self
            .core
            .shared
            .publications
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer = publications
            .by_agent
            .get(agent)
            .is_none_or(|p| p.ledger_seq <= publication.ledger_seq);
        if newer {
            publications.by_agent.insert(agent.to_owned(), publication);
        }
        let pending = publications
            .by_agent
            .values()
            .filter(|p| p.state != PublicationState::Published)
            .count();
        self.core.metrics().publications_pending(pending);
    }

    /// The Prometheus series.
    pub fn metrics(&self) -> &Metrics {
        self.core.metrics()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// Deciding requests and hearing what happened when they ran.
    pub fn decisions(&self) -> Decisions<'_, S> {
        Decisions { core: &self.core }
    }

    /// Approving and denying what waits for an operator.
    pub fn approvals(&self) -> Approvals<'_, S> {
        Approvals { core: &self.core }
    }

    /// Tripping and resetting kill switches.
    pub fn kill_switches(&self) -> KillSwitches<'_, S> {
        KillSwitches { core: &self.core }
    }

    /// Simulation reports and rollback tests, which the checks consume.
    pub fn reports(&self) -> Reports<'_, S> {
        Reports { core: &self.core }
    }

    /// Evidence, gates, promotions, demotions and locks.
    pub fn trust(&self) -> Trust<'_, S> {
        Trust { core: &self.core }
    }

    /// Signing the ledger's head.
    pub fn checkpoints(&self) -> Checkpoints<'_, S> {
        Checkpoints { core: &self.core }
    }

    /// Reading the ledger back.
    pub fn audit(&self) -> Audit<'_, S> {
        Audit { core: &self.core }
    }

    /// Reading the platform's audit log against the ledger.
    pub fn reconcile(&self) -> Reconcile<'_, S> {
        Reconcile { core: &self.core }
    }

    /// The headline numbers, by day.
    pub fn overview(&self) -> Overview<'_, S> {
        Overview { core: &self.core }
    }

    /// Console sessions.
    pub fn sessions(&self) -> Sessions<'_, S> {
        Sessions { core: &self.core }
    }
}
