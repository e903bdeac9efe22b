//! [`Gateway`]: the running service — the active bundle (swapped
//! atomically on reload), the in-memory state, the store, and the
//! authentication cache.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;
use clearance_engine::Bundle;
use clearance_engine::{Phase, trust::Tally};
use clearance_store::{AgentRow, Effect, Entry, Receipt, Store, TokenRow, timestamp_text};
use jiff::{SignedDuration, Timestamp};

use crate::{
    Identity, Metrics, Role, ServiceError,
    identity::{new_token, token_hash},
    records::{BundleRecord, TokenRecord, json},
    state::{Standing, State},
};

/// Where the gateway reads the time: the wall clock in production, a fixed
/// or stepped clock in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The service.
pub struct Gateway<S: Store> {
    pub(crate) store: S,
    bundle: ArcSwap<Bundle>,
    state: Mutex<State>,
    tokens: RwLock<HashMap<String, Identity>>,
    pub(crate) metrics: Metrics,
    clock: Clock,
    healthy: AtomicBool,
    decision_ids: AtomicU64,
    boot_nonce: String,
    /// Serialises phase changes (promotions, demotions, investigations).
    pub(crate) phase_changes: tokio::sync::Mutex<()>,
}

impl<S: Store> Gateway<S> {
    /// Loads the stored state and activates `bundle` (recording the
    /// activation in the ledger first).
    ///
    /// # Errors
    /// When the store cannot be read or written.
    pub async fn start(store: S, bundle: Bundle, clock: Clock) -> Result<Gateway<S>, ServiceError> {
        let now = clock();
        let since = now
            .checked_sub(hard_stop_horizon(&bundle))
            .unwrap_or(Timestamp::MIN);
        let mut state = State::from_stored(store.load_state(&timestamp_text(since)).await?)?;
        store
            .replay_evidence(|row| state.count_stored(&bundle, &row))
            .await?;
        let entry = Entry {
            at: timestamp_text(now),
            kind: "bundle.activated",
            payload: activation(&bundle)?,
            effects: Vec::new(),
        };
        store.append(entry).await?;
        let gateway = Gateway {
            store,
            bundle: ArcSwap::from_pointee(bundle),
            state: Mutex::new(state),
            tokens: RwLock::new(HashMap::new()),
            metrics: Metrics::default(),
            clock,
            healthy: AtomicBool::new(true),
            decision_ids: AtomicU64::new(0),
            boot_nonce: crate::identity::random_id("dec")?,
            phase_changes: tokio::sync::Mutex::new(()),
        };
        gateway
            .register_new_agents(gateway.bundle().as_ref())
            .await?;
        Ok(gateway)
    }

    /// Makes `bundle` the active one, after its activation is in the ledger.
    /// On error the previous bundle stays active.
    ///
    /// # Errors
    /// When the ledger cannot record the activation.
    pub async fn activate(&self, bundle: Bundle) -> Result<(), ServiceError> {
        self.append("bundle.activated", activation(&bundle)?, Vec::new())
            .await?;
        self.register_new_agents(&bundle).await?;
        self.bundle.store(Arc::new(bundle));
        Ok(())
    }

    /// Records the starting phase of every agent the store has not seen:
    /// from then on its phase lives in the store, and a bundle that says
    /// otherwise changes nothing (a reload never silently promotes).
    pub(crate) async fn register_new_agents(&self, bundle: &Bundle) -> Result<(), ServiceError> {
        let now = self.now();
        let new: Vec<(String, Phase)> = {
            let state = self.state();
            bundle
                .agents()
                .filter(|a| !state.standings.contains_key(&a.id))
                .map(|a| (a.id.clone(), a.starting_phase))
                .collect()
        };
        for (agent, phase) in new {
            #[derive(serde::Serialize)]
            struct Record<'a> {
                agent: &'a str,
                phase: Phase,
            }
            let payload = json(&Record {
                agent: &agent,
                phase,
            })?;
            let row = AgentRow {
                id: agent.clone(),
                phase: phase.number(),
                locked: false,
                phase_since: timestamp_text(now),
            };
            self.append("agent.registered", payload, vec![Effect::Agent(row)])
                .await?;
            self.state().standings.insert(
                agent.clone(),
                Standing {
                    phase,
                    locked: false,
                    tally: Tally::new(now),
                },
            );
            self.metrics.standing(&agent, phase, false);
        }
        Ok(())
    }

    /// The active bundle.
    pub fn bundle(&self) -> Arc<Bundle> {
        self.bundle.load_full()
    }

    /// The time, from the gateway's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// False after a ledger append failed, until one succeeds again.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Checks the store. After a failed append, also probes whether it takes
    /// writes again — so that an instance a load balancer took out of
    /// rotation (and so sends no decisions) can come back.
    ///
    /// # Errors
    /// Why the gateway cannot serve decisions now.
    pub async fn check_health(&self) -> Result<(), String> {
        self.store
            .ping()
            .await
            .map_err(|e| format!("database: {e}"))?;
        if self.healthy() {
            return Ok(());
        }
        match self.store.probe_write().await {
            Ok(()) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => Err(format!(
                "the database does not take writes ({error}): decisions are refused"
            )),
        }
    }

    /// The Prometheus series.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed
        // in a way that would allow more: every change under it is a single
        // insert or removal. Recover the guard rather than fail every request.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn next_decision_id(&self) -> String {
        let n = self.decision_ids.fetch_add(1, Ordering::Relaxed);
        format!("{}{n:08x}", self.boot_nonce)
    }

    /// Appends one record with its effects; health follows the result.
    pub(crate) async fn append(
        &self,
        kind: &'static str,
        payload: String,
        effects: Vec<Effect>,
    ) -> Result<Receipt, ServiceError> {
        let entry = Entry {
            at: timestamp_text(self.now()),
            kind,
            payload,
            effects,
        };
        match self.store.append(entry).await {
            Ok(receipt) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(receipt)
            }
            Err(error) => {
                self.healthy.store(false, Ordering::Relaxed);
                self.metrics.ledger_failure();
                tracing::error!(%error, kind, "ledger append failed; refused");
                Err(error.into())
            }
        }
    }

    /// Who holds `token`.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown token; `Unavailable` when the store
    /// cannot be asked.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, ServiceError> {
        let hash = token_hash(token);
        if let Some(identity) = self
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
        {
            return Ok(identity.clone());
        }
        let unknown = || ServiceError::Unauthenticated("unknown bearer token".into());
        let row = self.store.find_token(&hash).await?.ok_or_else(unknown)?;
        let identity = identity_of(&row).ok_or_else(unknown)?;
        self.tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(hash, identity.clone());
        Ok(identity)
    }

    /// Issues a token for `identity`: recorded (as a hash) in the ledger,
    /// returned once.
    ///
    /// # Errors
    /// When the identity is malformed or the store cannot record it.
    pub async fn issue_token(&self, identity: &Identity) -> Result<String, ServiceError> {
        issue_token(&self.store, identity, self.now()).await
    }
}

/// Issues a token straight into a store, for `clearance token issue` with
/// no gateway running.
///
/// # Errors
/// When the identity is malformed or the store cannot record it.
pub async fn issue_token<S: Store>(
    store: &S,
    identity: &Identity,
    now: Timestamp,
) -> Result<String, ServiceError> {
    if identity.subject().trim().is_empty() {
        return Err(ServiceError::invalid("subject", "an identity needs a name"));
    }
    let token = new_token()?;
    let hash = token_hash(&token);
    let role = match identity {
        Identity::Operator { role, .. } => Some(role.name().to_owned()),
        _ => None,
    };
    let row = TokenRow {
        hash: hash.clone(),
        kind: identity.kind().to_owned(),
        subject: identity.subject().to_owned(),
        role,
        created_at: timestamp_text(now),
    };
    let payload = json(&TokenRecord {
        identity,
        token_sha256: &hash,
    })?;
    store
        .append(Entry {
            at: timestamp_text(now),
            kind: "token.issued",
            payload,
            effects: vec![Effect::TokenIssued(row)],
        })
        .await?;
    Ok(token)
}

fn activation(bundle: &Bundle) -> Result<String, ServiceError> {
    json(&BundleRecord {
        revision: bundle.revision(),
        policy_owner: bundle.policy_owner(),
        agents: bundle.agents().count(),
        actions: bundle.action_count(),
    })
}

fn identity_of(row: &TokenRow) -> Option<Identity> {
    match row.kind.as_str() {
        "agent" => Some(Identity::Agent {
            agent: row.subject.clone(),
        }),
        "harness" => Some(Identity::Harness {
            name: row.subject.clone(),
        }),
        "operator" => Some(Identity::Operator {
            name: row.subject.clone(),
            role: Role::from_name(row.role.as_deref()?)?,
        }),
        _ => None,
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
