//! [`Backend`]: what a database must supply — its SQL and nothing else.
//! Batching, the chain head, catching up on other writers, guards, fan-out
//! of receipts and reconnecting live once, in [`crate::writer`]; reads that
//! are the same for every backend live once in [`crate::database`], and
//! verification in [`crate::verify`].

use std::future::Future;

use clearance_engine::{
    Impact,
    ledger::{Digest32, LedgerRecord},
};
use jiff::Timestamp;

use crate::{
    Effect, StoreError,
    rows::{
        AgentRow, ApprovalState, AuditQuery, DecisionRow, EvidenceRow, ExecutionCandidate,
        KillSwitchHistoryRow, LedgerFilter, Overview, PlatformEventRow, SessionRow, StoredState,
        TokenRow,
    },
};

/// Why a batch's effects were not applied: the entry at `index` (in the
/// batch's order) failed with `error`.
#[derive(Debug)]
pub struct Rejected {
    /// Which entry.
    pub index: usize,
    /// Why.
    pub error: StoreError,
}

/// One database. The writer owns a dedicated connection (`Conn`) and calls
/// the transaction methods on it; reads go through the backend's pool.
pub trait Backend: Send + Sync + 'static {
    /// The writer's connection.
    type Conn: Send + 'static;

    /// `sqlite` or `postgres`, for logs.
    const NAME: &'static str;

    /// A fresh connection for the writer.
    fn connect_writer(&self) -> impl Future<Output = Result<Self::Conn, StoreError>> + Send;

    /// Starts a transaction that holds the ledger's write lock: no other
    /// writer, in this process or another, appends until it ends.
    fn begin_exclusive(
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Commits.
    fn commit(conn: &mut Self::Conn) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Rolls back.
    fn rollback(conn: &mut Self::Conn) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The newest record's sequence number and hash (0 and the genesis
    /// hash for an empty ledger).
    fn head(
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<(u64, Digest32), StoreError>> + Send;

    /// Up to `limit` records after `after`, in order — fewer when their
    /// payloads are large (`PAGE_BYTES`), but never none while a record
    /// follows.
    fn records_after(
        conn: &mut Self::Conn,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// The sequence number of the newest kill switch trip still in force
    /// (0 when none).
    fn latest_trip(conn: &mut Self::Conn) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many allowed executions `agent` has at one of `impacts` after
    /// `since`.
    fn count_executions(
        conn: &mut Self::Conn,
        agent: &str,
        impacts: &[Impact],
        since: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Whether a sample of `agent` came with a ledger record after `seq`.
    fn sample_after(
        conn: &mut Self::Conn,
        agent: &str,
        seq: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The approvals opened after ledger record `seq` that can still count.
    fn approvals_opened_after(
        conn: &mut Self::Conn,
        seq: u64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Inserts chained records.
    fn insert_records(
        conn: &mut Self::Conn,
        records: &[LedgerRecord],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies each entry's effects, in order; `seq` is its record's.
    fn apply(
        conn: &mut Self::Conn,
        entries: &[(u64, &[Effect])],
    ) -> impl Future<Output = Result<(), Rejected>> + Send;

    /// Tells other instances the ledger grew (inside the transaction, so
    /// they hear of it only once it commits). A no-op where nobody listens.
    fn announce(
        conn: &mut Self::Conn,
        head: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`Backend::begin_exclusive`], then [`Backend::head`] and
    /// [`Backend::latest_trip`]: how every batch starts. The lock is held
    /// until the batch commits, so a backend that can do this in fewer round
    /// trips shortens every other writer's wait.
    fn begin_and_read_head(
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<(u64, Digest32, u64), StoreError>> + Send {
        async move {
            Self::begin_exclusive(conn).await?;
            let (seq, hash) = Self::head(conn).await?;
            let trip = Self::latest_trip(conn).await?;
            Ok((seq, hash, trip))
        }
    }

    /// [`Backend::insert_records`] then [`Backend::apply`]; a backend may do
    /// both in fewer round trips.
    fn write(
        conn: &mut Self::Conn,
        records: &[LedgerRecord],
        entries: &[(u64, &[Effect])],
    ) -> impl Future<Output = Result<(), Rejected>> + Send {
        async move {
            Self::insert_records(conn, records)
                .await
                .map_err(|error| Rejected {
                    index: usize::MAX,
                    error,
                })?;
            Self::apply(conn, entries).await
        }
    }

    /// [`Backend::announce`] then [`Backend::commit`].
    fn finish(
        conn: &mut Self::Conn,
        head: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            Self::announce(conn, head).await?;
            Self::commit(conn).await
        }
    }

    /// Resolves when another instance may have appended; never resolves
    /// where nothing announces (the writer polls as well).
    fn appended_elsewhere(&self) -> impl Future<Output = ()> + Send;

    /// Everything decisions read, as of one snapshot: the rows, handed to
    /// `build`, then each agent's evidence since it entered its phase,
    /// oldest first, to `visit`.
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

    /// Every stored agent.
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
    /// (inclusive), oldest first, at most `limit`: what a platform write
    /// may be the running of.
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

    /// As [`crate::Store::overview`].
    fn overview(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Overview, StoreError>> + Send;

    /// As [`crate::Store::find_session`].
    fn find_session(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<SessionRow>, StoreError>> + Send;

    /// As [`crate::Store::open_sessions`].
    fn open_sessions(&self) -> impl Future<Output = Result<Vec<SessionRow>, StoreError>> + Send;

    /// As [`crate::Store::touch_session`].
    fn touch_session(
        &self,
        id: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// As [`crate::Store::ledger_page`].
    fn ledger_page(
        &self,
        filter: &LedgerFilter,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// As [`crate::Store::ungraded_recommendations`].
    fn ungraded_recommendations(
        &self,
        since: Timestamp,
        per_agent: u32,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// As [`crate::Store::evidence_since`].
    fn evidence_since(
        &self,
        agent: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<EvidenceRow>, StoreError>> + Send;

    /// As [`crate::Store::notification_records`].
    fn notification_records(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// As [`crate::Store::lease_cursor`].
    fn lease_cursor(
        &self,
        webhook: &str,
        holder: &str,
        until: Timestamp,
        start: u64,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// As [`crate::Store::advance_cursor`].
    fn advance_cursor(
        &self,
        webhook: &str,
        holder: &str,
        seq: u64,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// As [`crate::Store::forget_cursors_except`].
    fn forget_cursors_except(
        &self,
        keep: &[String],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The approval with this id, whatever its status.
    fn find_approval(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApprovalState>, StoreError>> + Send;

    /// As [`crate::Store::kill_switch_history`].
    fn kill_switch_history(
        &self,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<KillSwitchHistoryRow>, StoreError>> + Send;

    /// A filtered page of records.
    fn audit(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// Up to `limit` records after `after`, in order, from the pool —
    /// fewer when their payloads are large
    /// (`PAGE_BYTES`), but never none while a record
    /// follows: only an empty page says the ledger ends.
    fn page(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LedgerRecord>, StoreError>> + Send;

    /// A page of the ledger as verification reads it: decoded and hashed
    /// on other threads (`crate::verify`).
    type VerifyPage: crate::verify::VerifyPage;

    /// Whether [`Backend::verify_page`] reads, in this database, the very
    /// records [`Backend::page`] reads; when not, verification reads every
    /// record the row reader's way.
    fn verify_pages_sound(&self) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async { Ok(true) }
    }

    /// The lowest number of a record the chain cannot hold, as the
    /// database writes it (`NULL` for a record without one): numbered 0 or
    /// below, it is read by no reader that goes by number, verification
    /// included, yet a listing of the table shows it. `None` when every
    /// record is numbered from 1.
    fn outside_chain(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The lowest number two records share among those numbered 1 to
    /// `through`: a reader that goes by number may read one of them and step
    /// over the other, which a listing of the table still shows. `None`
    /// when none is shared — at once, without reading the table, where the
    /// schema keeps the numbers unique (the primary key, which only someone
    /// rewriting the database can drop).
    fn repeated_number(
        &self,
        through: u64,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// The records numbered in `(after, after + limit]`, in order, read
    /// for verification the backend's quickest way: numbered, so that the
    /// next page is known before this one is read and several are read at
    /// once (a gap shows as one, a short page as the end of what is read).
    fn verify_page(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Self::VerifyPage, StoreError>> + Send;

    /// Whether the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether it takes a durable write now (a heartbeat row, not a record).
    fn probe_write(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
