//! clearance's persistence: the [`Store`] trait and [`Database`], its one
//! implementation over two backends — [`SqliteStore`], one embedded file
//! (the default), and [`PostgresStore`], shared by several gateway
//! instances. Everything that must survive a restart lives behind `Store`:
//! the hash-chained ledger, agents' phases, approvals, kill switches,
//! evidence, token hashes.
//!
//! Every change is an [`Entry`]: one ledger record plus the [`Effect`]s it
//! justifies, written in one transaction after its [`Guard`]s held, so no
//! effect is ever visible without its record. Entries are group-committed:
//! one transaction and one fsync serve every entry waiting at that moment.
//! Every committed record — this instance's and every other writer's — is
//! handed to the [`Applier`] in ledger order: that is how each instance's
//! memory follows the one ledger.
//!
//! A SQLite file keeps new records in storage format 2 (`stored`: the
//! payload compressed, the hashes as bytes); what is read back, hashed and
//! verified is always the record's own text.
//!
//! No policy logic lives here: this crate stores what the service decided,
//! and refuses only what would break an at-most-once rule.

mod backend;
mod codec;
mod console;
mod database;
mod decode;
mod effect;
mod error;
mod location;
mod postgres;
mod rows;
mod sqlite;
mod stored;
mod verify;
mod writer;

use std::{future::Future, sync::Arc};

pub use backend::{Backend, Rejected};
pub use codec::timestamp_text;
pub use console::{day_of, utc_days};
pub use database::Database;
pub use decode::cut_for_size;
pub use effect::{Applier, Committed, Effect, Entry, Failure, Guard, Receipt};
pub use error::StoreError;
pub use location::{Location, LocationError};
pub use postgres::{Postgres, PostgresStore};
pub use rows::{
    AgentRow, AgentVersion, ApprovalRow, ApprovalState, ApprovalVoid, AuditQuery, DecisionDay,
    DecisionIndex, DecisionRow, EvidenceRow, ExecutionCandidate, ExecutionRow,
    KillSwitchHistoryRow, KillSwitchRow, LedgerFilter, Overview, PlatformEventRow, PromotionRow,
    PromotionStatus, RecoveryDay, RollbackTestRow, SessionRow, StoredState, TokenRow, VerifyReport,
    is_open,
};
pub use sqlite::{Sqlite, SqliteStore};
pub use verify::{Observer, VerifyPage};

use clearance_engine::ledger::LedgerRecord;
use jiff::Timestamp;
use tokio::sync::oneshot;

/// An entry queued for the ledger: resolves to its receipt.
pub struct Submitted(Result<oneshot::Receiver<Result<Receipt, StoreError>>, StoreError>);

impl Future for Submitted {
    type Output = Result<Receipt, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            Err(error) => std::task::Poll::Ready(Err(error.clone())),
            Ok(receipt) => std::pin::Pin::new(receipt).poll(cx).map(|answer| {
                answer.unwrap_or_else(|_| {
                    Err(StoreError::Unavailable("the ledger writer stopped".into()))
                })
            }),
        }
    }
}

/// Durable state, as the service uses it.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;

    /// Queues `entry` for the ledger without waiting: entries are written
    /// in the order they are submitted. The answer resolves once the record
    /// and its effects are on disk (atomically and durably, its guards
    /// having held) and the applier has seen it.
    fn submit(&self, entry: Entry) -> Submitted;

    /// [`Store::submit`], and wait for the answer.
    fn append(&self, entry: Entry) -> impl Future<Output = Result<Receipt, StoreError>> + Send {
        self.submit(entry)
    }

    /// Hands every record after `from` (the snapshot [`Store::load`]
    /// returned), and every record committed from now on, to `applier`, in
    /// order; other writers' records are picked up when announced and
    /// polled for besides.
    fn attach(
        &self,
        applier: Arc<dyn Applier>,
        from: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Catches up on other writers' records now; the newest record applied.
    fn sync(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Appends records copied from another ledger, verbatim, with the
    /// effects they imply: they must continue this ledger's chain.
    fn import(
        &self,
        records: Vec<LedgerRecord>,
        effects: Vec<Vec<Effect>>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Everything decisions read, as of one snapshot (executions since
    /// `horizon`): `build` turns the rows into the caller's state, then
    /// `visit` feeds it each agent's evidence since it entered its phase,
    /// oldest first, one row at a time — a million samples must not be held
    /// in memory to rebuild the tallies.
    fn load<T, Build, Visit>(
        &self,
        horizon: Timestamp,
        build: Build,
        visit: Visit,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send,
        Build: FnOnce(StoredState) -> T + Send,
        Visit: FnMut(&mut T, EvidenceRow) -> Result<(), StoreError> + Send;

    /// Every stored agent's phase and lock.
    fn agents(&self) -> impl Future<Output = Result<Vec<AgentRow>, StoreError>> + Send;

    /// The token with this hash.
    fn find_token(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<TokenRow>, StoreError>> + Send;

    /// The decision with this id.
    fn find_decision(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DecisionRow>, StoreError>> + Send;

    /// Allowed executions of `agent` decided from `from` to `to`
    /// (inclusive), oldest first, at most `limit` — fewer when their
    /// payloads pass 64 MiB together: what a platform write may be the
    /// running of.
    fn execution_candidates(
        &self,
        agent: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ExecutionCandidate>, StoreError>> + Send;

    /// The platform event recorded under `key`, if any.
    fn find_platform_event(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<PlatformEventRow>, StoreError>> + Send;

    /// The platform event that matched decision `decision_id`, if any.
    fn platform_event_of(
        &self,
        decision_id: &str,
    ) -> impl Future<Output = Result<Option<PlatformEventRow>, StoreError>> + Send;

    /// Decisions by UTC day, outcome and blocked, and failures with their recoveries, from the day of `since` on.
    fn overview(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Overview, StoreError>> + Send;

    /// The session whose secret hashes to `hash`, open or closed.
    fn find_session(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<SessionRow>, StoreError>> + Send;

    /// Every session not closed, newest first (at most 1,000).
    fn open_sessions(&self) -> impl Future<Output = Result<Vec<SessionRow>, StoreError>> + Send;

    /// Marks session `id` seen at `at`: a plain write, not a record (as the health probe).
    fn touch_session(
        &self,
        id: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A filtered page of records, newest first — fewer than its limit
    /// when their payloads are large (as [`Store::records`]).
    fn ledger_page(
        &self,
        filter: &LedgerFilter,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// `recommend` decisions at or after `since` that no `recommendation`
    /// sample grades yet: at most `per_agent` of each agent, `limit` in
    /// all, taken round by round (every agent's newest, then every agent's
    /// second newest, …) so that no agents' floods bury another's; in that
    /// order, not by time. Fewer when their payloads are large.
    fn ungraded_recommendations(
        &self,
        since: Timestamp,
        per_agent: u32,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// `agent`'s samples taken at or after `since`, oldest first (at most 100,000).
    fn evidence_since(
        &self,
        agent: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<EvidenceRow>, StoreError>> + Send;

    /// Records after `after` a webhook may be told of, oldest first: pending decisions, phase changes, kill switch trips.
    /// Fewer than `limit` when their payloads are large, but never none
    /// while such a record follows (as [`Store::records`]).
    fn notification_records(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// Takes (or renews) the lease on `webhook`'s delivery cursor for `holder` until `until`, creating the cursor at `start` when it has none; the cursor, or `None` while another holder's lease runs.
    fn lease_cursor(
        &self,
        webhook: &str,
        holder: &str,
        until: Timestamp,
        start: u64,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Moves `webhook`'s cursor forward to `seq`, renewing the lease until `until`, while `holder` holds it; whether it did.
    fn advance_cursor(
        &self,
        webhook: &str,
        holder: &str,
        seq: u64,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Drops the delivery cursors of webhooks not in `keep` whose lease has
    /// run out (no instance delivers them): they left the bundle, and a
    /// webhook of that name added later starts at the ledger's head rather
    /// than resuming where the old one stopped and sending everything
    /// since. Returns how many were dropped.
    fn forget_cursors_except(
        &self,
        keep: &[String],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The approval with this id, whatever its status.
    fn find_approval(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApprovalState>, StoreError>> + Send;

    /// Kill switches tripped at or after `since`, or still tripped, newest
    /// first (at most 1,000).
    fn kill_switch_history(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<KillSwitchHistoryRow>, StoreError>> + Send;

    /// A page of ledger records, filtered, in order — fewer than its limit
    /// when their payloads are large, but never none while a record
    /// matching follows (as [`Store::records`]).
    fn audit(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// Up to `limit` records after `after`, in order — fewer when their
    /// payloads are large, but never none while a record follows: only an
    /// empty page says the ledger ends.
    fn records(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// The lowest number of a record the chain cannot hold (0 or below,
    /// or none), as the database writes it: no reader that goes by number
    /// ([`Store::records`]) reaches such a record, so an export, which
    /// cannot carry it, says so.
    fn outside_chain(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The lowest number two records share among those numbered 1 to
    /// `through`, or none: the chain holds one record of each number, so
    /// an export, which reads by number ([`Store::records`]), says so.
    fn repeated_number(
        &self,
        through: u64,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Whether the database answers at all.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the database takes a durable write right now (a heartbeat
    /// row, not a ledger record).
    fn probe_write(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Re-reads the whole ledger and checks its chain.
    fn verify(&self) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send {
        async move {
            self.verify_observed(&mut |_, _| std::ops::ControlFlow::Continue(()))
                .await
        }
    }

    /// [`Store::verify`], handing each record the chain has verified, in
    /// order, to `observe`, which may stop it there (the report then
    /// covers the records up to that one).
    fn verify_observed(
        &self,
        observe: &mut Observer<'_>,
    ) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send;
}
