//! [`Core`]: what every use case shares — the store, the active bundle
//! (swapped atomically on reload), the in-memory [`State`], the clock,
//! metrics and health — and [`Core::transact`], the one door every change
//! goes through.
//!
//! A change is planned under the state lock from the state as it is, and
//! its at-most-once rules admitted there; while it is being written its
//! effects are reservations that make later decisions stricter (a trip in
//! flight already denies). It is submitted to the ledger once the lock is
//! released, so two changes admitted close together may be recorded in
//! either order: what that could break is guarded in the store (see
//! [`Core::transact_then_write`]). Its effects reach the state only once
//! committed, through [`Follower`] — the same path other instances'
//! records take.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;
use clearance_engine::{
    Bundle, BundleSource, Identity, SourceFile, bundle::Checkpoints, checkpoint::CHECKPOINT_KIND,
};
use clearance_store::{Applier, Committed, Effect, Entry, Guard, Receipt, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Semaphore;

use crate::{
    Metrics, ServiceError,
    platform::{PhaseChanged, Publications},
    records::{BundleRecord, effects_of},
    state::{Claim, State},
};

/// Where the gateway reads the time: the wall clock in production, a fixed
/// or stepped clock in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How many entries may wait for the ledger at once: back-pressure for a
/// queue that is never made to wait under the state lock.
const MAX_IN_FLIGHT: usize = 8_192;

/// Phase changes a slow subscriber may fall behind by before it must catch
/// up from the ledger.
const PHASE_CHANGES: usize = 1_024;

/// What the use cases and the [`Follower`] share.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub bundle: ArcSwap<Bundle>,
    /// `checkpoints:` of the bundle this instance loaded itself — at start
    /// or on its own reload — never of one it followed: a
    /// `bundle.activated` record anyone able to write to the database can
    /// append must not turn the signing of the chain off, or change it,
    /// on every instance that follows it.
    pub own_checkpoints: ArcSwap<Option<Checkpoints>>,
    pub metrics: Metrics,
    /// Phase changes this instance recorded, for the platform.
    pub changes: tokio::sync::broadcast::Sender<PhaseChanged>,
    /// Where publishing each agent's latest phase change stands.
    pub publications: Mutex<Publications>,
    /// Who holds each token met so far, by hash; `None` once revoked, so
    /// that a lookup racing the revocation cannot cache it again.
    pub tokens: RwLock<HashMap<String, Option<Identity>>>,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed
        // in a way that would allow more: every change under it is a single
        // insert or removal. Recover the guard rather than fail every request.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A change, planned under the state lock.
pub(crate) struct Plan<T> {
    /// Its record's kind.
    pub kind: &'static str,
    /// Its record.
    pub payload: String,
    /// What it changes.
    pub effects: Vec<Effect>,
    /// What must still hold when it is written.
    pub guards: Vec<Guard>,
    /// What the use case returns once it is recorded.
    pub value: T,
}

pub(crate) struct Core<S: Store> {
    pub store: S,
    pub shared: Arc<Shared>,
    clock: Clock,
    healthy: AtomicBool,
    decision_ids: AtomicU64,
    boot_nonce: String,
    /// Serialises this instance's phase changes (promotions, demotions,
    /// investigations); the store's version check covers other instances.
    pub phase_changes: tokio::sync::Mutex<()>,
    capacity: Semaphore,
}

impl<S: Store> Core<S> {
    pub(crate) fn new(
        store: S,
        state: State,
        bundle: Bundle,
        clock: Clock,
    ) -> Result<Core<S>, ServiceError> {
        Ok(Core {
            store,
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                own_checkpoints: ArcSwap::from_pointee(bundle.checkpoints().cloned()),
                bundle: ArcSwap::from_pointee(bundle),
                metrics: Metrics::default(),
                changes: tokio::sync::broadcast::channel(PHASE_CHANGES).0,
                publications: Mutex::new(Publications::default()),
                tokens: RwLock::new(HashMap::new()),
            }),
            clock,
            healthy: AtomicBool::new(true),
            decision_ids: AtomicU64::new(0),
            boot_nonce: crate::identity::random_id("dec")?,
            phase_changes: tokio::sync::Mutex::new(()),
            capacity: Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    pub(crate) fn bundle(&self) -> Arc<Bundle> {
        self.shared.bundle.load_full()
    }

    pub(crate) fn clock(&self) -> Timestamp {
        (self.clock)()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    pub(crate) fn next_decision_id(&self) -> String {
        let n = self.decision_ids.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:08x}", self.boot_nonce)
    }

    /// Plans a change from the state as it is, admits what it holds, and
    /// submits it to the ledger — planning and admission under the state
    /// lock — then waits for it to be recorded. Its effects are in the
    /// state when this returns `Ok`; what it held is released whatever
    /// happens.
    pub(crate) async fn transact<T>(
        &self,
        plan: impl FnOnce(&mut State, &Bundle, Timestamp) -> Result<Plan<T>, ServiceError>,
    ) -> Result<(Receipt, T), ServiceError> {
        let (receipt, (value, _)) = self
            .transact_then_write(
                |state, bundle, now| {
                    let plan = plan(state, bundle, now)?;
                    Ok(Plan {
                        kind: plan.kind,
                        payload: String::new(),
                        effects: plan.effects,
                        guards: plan.guards,
                        value: (plan.value, plan.payload),
                    })
                },
                |(_, payload)| Ok(std::mem::take(payload)),
            )
            .await?;
        Ok((receipt, value))
    }

    /// [`Core::transact`], with the record written by `write` after the
    /// state lock is released: the hot path (a decision) holds the lock
    /// only to decide and admit, not to serialise its record.
    ///
    /// Ledger order may then differ from admission order. What that could
    /// break is guarded where it is written: an entry decided on facts that
    /// a kill switch recorded before it made stale is refused by its
    /// `NoKillSwitchTrippedAfter` guard (and decided again), and every
    /// at-most-once effect is conditional in the store.
    pub(crate) async fn transact_then_write<T>(
        &self,
        plan: impl FnOnce(&mut State, &Bundle, Timestamp) -> Result<Plan<T>, ServiceError>,
        write: impl FnOnce(&mut T) -> Result<String, ServiceError>,
    ) -> Result<(Receipt, T), ServiceError> {
        let _permit = self
            .capacity
            .acquire()
            .await
            .map_err(|_| ServiceError::Unavailable)?;
        let bundle = self.bundle();
        let clock = self.clock();
        let (plan, claim, now) = {
            let mut state = self.state();
            let now = state.now(clock);
            let plan = plan(&mut state, &bundle, now)?;
            let claim = state.admit(&plan.effects)?;
            (plan, claim, now)
        };
        let _held = Held {
            shared: &self.shared,
            claim,
        };
        let Plan {
            kind,
            effects,
            guards,
            mut value,
            ..
        } = plan;
        let entry = Entry {
            at: now,
            kind,
            payload: write(&mut value)?,
            effects,
            guards,
            claim,
        };
        match self.store.submit(entry).await {
            Ok(receipt) => {
                self.set_healthy(true);
                Ok((receipt, value))
            }
            Err(error) => Err(self.refused(error, kind)),
        }
    }

    /// Catches up on other instances' records now; the newest applied.
    pub(crate) async fn sync(&self) -> Result<u64, ServiceError> {
        self.store
            .sync()
            .await
            .map_err(|e| ServiceError::from_store(e, "following the ledger"))
    }

    /// A store failure: a conflict is the caller's to handle; anything else
    /// makes the gateway unhealthy until a write succeeds again.
    pub(crate) fn refused(&self, error: StoreError, kind: &'static str) -> ServiceError {
        if !matches!(error, StoreError::Conflict(_)) {
            self.set_healthy(false);
            self.metrics().ledger_failure();
            tracing::error!(%error, kind, "ledger append failed; refused");
        }
        ServiceError::from_store(error, kind)
    }

    /// The `bundle.activated` record for `bundle`, with its files.
    pub(crate) fn activation(
        bundle: &Bundle,
        source: &BundleSource,
    ) -> Result<String, ServiceError> {
        let file = |f: &SourceFile| crate::records::SourceFileRecord {
            path: f.path.clone(),
            text: f.text.clone(),
        };
        crate::records::json(&BundleRecord {
            revision: bundle.revision().to_owned(),
            policy_owner: bundle.policy_owner().to_owned(),
            agents: bundle.agents().count(),
            actions: bundle.action_count(),
            sources: Some(crate::records::SourcesRecord {
                config: file(&source.config),
                policies: source.policies.iter().map(file).collect(),
            }),
        })
    }
}

/// Releases what an entry held when its use case is done with it — also
/// when the caller hung up and the future was dropped. Once the entry
/// committed, the [`Follower`] has released it already.
struct Held<'a> {
    shared: &'a Shared,
    claim: Option<Claim>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(claim) = self.claim {
            self.shared.state().in_flight.release(claim);
        }
    }
}

/// How far back executions can still count against a hard stop.
pub(crate) fn hard_stop_horizon(bundle: &Bundle) -> SignedDuration {
    bundle
        .hard_stops()
        .iter()
        .map(|stop| stop.per.as_signed())
        .max()
        .unwrap_or(SignedDuration::ZERO)
}

/// Follows the ledger: every committed record — this instance's and every
/// other writer's — is applied to the state here, in ledger order.
pub(crate) struct Follower {
    pub shared: Arc<Shared>,
}

impl Applier for Follower {
    fn apply(&self, committed: &[Committed<'_>]) {
        let mut activations = Vec::new();
        let mut agents = Vec::new();
        let mut changes = Vec::new();
        let mut revoked = Vec::new();
        {
            let mut state = self.shared.state();
            for record in committed {
                match record {
                    Committed::Own {
                        record,
                        effects,
                        claim,
                    } => {
                        if let Some(claim) = claim {
                            state.in_flight.release(*claim);
                        }
                        for effect in *effects {
                            state.apply(effect);
                            note_agent(effect, &mut agents);
                            note_revoked(effect, &mut revoked);
                        }
                        if matches!(record.kind.as_str(), "phase.promoted" | "phase.demoted") {
                            changes.extend(PhaseChanged::from_record(
                                record.seq,
                                &record.kind,
                                &record.payload,
                            ));
                        }
                        state.applied = record.seq;
                        state.applied_head = Some((record.hash, record.kind == CHECKPOINT_KIND));
                    }
                    Committed::Foreign(record) => {
                        let effects = record
                            .at
                            .parse::<Timestamp>()
                            .map_err(|e| e.to_string())
                            .and_then(|at| {
                                state.followed(at);
                                effects_of(&record.kind, &record.payload, at)
                                    .map_err(|e| e.to_string())
                            });
                        match effects {
                            Ok(effects) => {
                                for effect in &effects {
                                    state.apply(effect);
                                    note_agent(effect, &mut agents);
                                    note_revoked(effect, &mut revoked);
                                }
                                if record.kind == "bundle.activated" {
                                    activations.push(record.payload.clone());
                                }
                                self.shared.metrics.followed();
                            }
                            Err(error) => {
                                self.shared.metrics.unreadable_record();
                                state.unreadable.get_or_insert(record.seq);
                                tracing::error!(seq = record.seq, kind = %record.kind, %error,
                                    "another writer's record cannot be applied; this instance's state misses it, and it decides nothing until restarted on a version that reads it");
                            }
                        }
                        state.applied = record.seq;
                        state.applied_head = Some((record.hash, record.kind == CHECKPOINT_KIND));
                    }
                }
            }
            for agent in &agents {
                if let Some(standing) = state.standings.get(agent) {
                    self.shared
                        .metrics
                        .standing(agent, standing.phase, standing.locked);
                }
            }
        }
        if !revoked.is_empty() {
            let mut tokens = self
                .shared
                .tokens
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for hash in revoked {
                tokens.insert(hash, None);
            }
        }
        for payload in activations {
            self.activate(&payload);
        }
        for change in changes {
            // Nobody listening is fine: no platform to tell.
            let _ = self.shared.changes.send(change);
        }
    }
}

fn note_revoked(effect: &Effect, revoked: &mut Vec<String>) {
    if let Effect::TokenRevoked { hash, .. } = effect {
        revoked.push(hash.clone());
    }
}

fn note_agent(effect: &Effect, agents: &mut Vec<String>) {
    if let Effect::AgentRegistered(row) | Effect::AgentChanged { row, .. } = effect
        && !agents.contains(&row.id)
    {
        agents.push(row.id.clone());
    }
}

impl Follower {
    /// Another instance activated a bundle: run the same one, so that every
    /// instance decides under the revision the ledger says is active.
    fn activate(&self, payload: &str) {
        let Ok(record) = serde_json::from_str::<BundleRecord>(payload) else {
            return;
        };
        if self.shared.bundle.load().revision() == record.revision {
            return;
        }
        let revision = record.revision.clone();
        let Some(source) = record.into_source() else {
            tracing::warn!(%revision, "another instance activated a bundle without recording its files; keeping ours");
            return;
        };
        match Bundle::compile(&source) {
            Ok(bundle) => {
                tracing::info!(%revision, "following the bundle another instance activated");
                if bundle.checkpoints() != self.shared.own_checkpoints.load().as_ref().as_ref() {
                    tracing::warn!(%revision,
                        "the bundle another instance activated says `checkpoints:` otherwise; this instance signs the chain as its own bundle says");
                }
                self.shared.bundle.store(Arc::new(bundle));
            }
            Err(errors) => {
                tracing::error!(%revision, "the bundle another instance activated does not compile here; keeping ours:\n{errors}");
            }
        }
    }
}
