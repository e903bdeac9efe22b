//! clearance's persistence: the [`Store`] trait, and [`SqliteStore`], its
//! embedded implementation. Everything that must survive a restart — the
//! hash-chained ledger, agents' phases, approvals, kill switches, evidence
//! records, token hashes — lives behind `Store`.
//!
//! Every change is an [`Entry`]: one ledger record plus the state
//! [`Effect`]s it justifies, written in one transaction, so no effect is
//! ever visible without its record. Entries are group-committed: one
//! transaction and one fsync serve every entry waiting at that moment.
//!
//! No policy logic lives here: this crate stores what the service decided.

mod error;
mod model;
mod sqlite;

use std::future::Future;

pub use error::StoreError;
pub use model::{
    AgentRow, ApprovalRow, AuditQuery, DecisionRow, Effect, Entry, EvidenceRow, KillSwitchRow,
    PromotionRow, Receipt, RollbackTestRow, SimulationRow, StoredState, TokenRow, VerifyReport,
};
pub use sqlite::{SqliteStore, timestamp_text};

use clearance_engine::ledger::LedgerRecord;

/// Durable state, behind one interface so a shared PostgreSQL can follow the
/// embedded SQLite file.
pub trait Store: Send + Sync + 'static {
    /// Appends `entry` to the ledger and applies its effects, atomically and
    /// durably; resolves only once both are on disk.
    fn append(&self, entry: Entry) -> impl Future<Output = Result<Receipt, StoreError>> + Send;

    /// Everything the service keeps in memory, as of now.
    fn load_state(
        &self,
        since: &str,
    ) -> impl Future<Output = Result<StoredState, StoreError>> + Send;

    /// The token with this hash.
    fn find_token(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<TokenRow>, StoreError>> + Send;

    /// Feeds `visit` each agent's evidence since it entered its current
    /// phase, oldest first, one row at a time: a million samples must not
    /// be held in memory to rebuild the tallies.
    fn replay_evidence<F>(&self, visit: F) -> impl Future<Output = Result<u64, StoreError>> + Send
    where
        F: FnMut(EvidenceRow) -> Result<(), StoreError> + Send;

    /// Whether a sample of this kind about this incident is already stored.
    fn evidence_exists(
        &self,
        agent: &str,
        kind: &str,
        incident_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The decision with this id.
    fn find_decision(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DecisionRow>, StoreError>> + Send;

    /// A page of ledger records.
    fn audit(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// Whether the database answers at all.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the database takes a durable write right now (a heartbeat
    /// row, not a ledger record).
    fn probe_write(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Re-reads the whole ledger and checks its chain.
    fn verify(&self) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send;
}
