//! The ledger writer: the only code that writes to the database, written
//! once for every backend. It takes every entry waiting (up to
//! [`MAX_BATCH`]) and, in one transaction holding the ledger's write lock:
//!
//! 1. reads the chain head, and the records other writers appended since
//!    this one last looked (another instance, or `clearance token issue`
//!    on the same file), a page at a time, and checks that they link to
//!    the record this one last wrote or read, as it had it: a ledger
//!    changed under the gateway (records rewritten and rehashed in the
//!    database) is never chained after, so no later checkpoint signs the
//!    change. Where they take more than a page (an instance far behind),
//!    the pages before the last are handed to the [`Applier`] as they are
//!    read, so that no more than a page is held;
//! 2. checks each entry's [`Guard`]s against everything committed and the
//!    entries before it in the batch, refusing those that fail;
//! 3. chains the rest after the head, inserts them, applies their effects
//!    (a conditional effect that no longer holds refuses its entry: the
//!    batch is rolled back and retried without it), announces the new head
//!    and commits — one fsync for the lot;
//! 4. hands the other writers' records (their last page), then its own, to
//!    the [`Applier`] in ledger order, and only then answers the waiters.
//!
//! A failed batch is rolled back whole, every waiter told so, and the next
//! batch starts on a fresh connection.

use std::{sync::Arc, time::Duration};

use clearance_engine::ledger::{Digest32, LedgerRecord};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Applier, Committed, Effect, Entry, Guard, Receipt, StoreError,
    backend::{Backend, Rejected},
    codec::timestamp_text,
    rows::DecisionIndex,
    stored,
};

/// How many entries the writer takes at most into one transaction: enough
/// to amortise the fsync, few enough to bound the latency of a batch.
pub(crate) const MAX_BATCH: usize = 512;

/// How many records of other writers are read per query while catching up.
const CATCH_UP_PAGE: u32 = 10_000;

/// How often an idle writer looks for other writers' records when nothing
/// announces them (and as a backstop where something does).
pub(crate) const POLL: Duration = Duration::from_millis(250);

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum Job {
    Append {
        entry: Entry,
        reply: Reply<Receipt>,
    },
    /// Records copied verbatim from another store, with their effects.
    Import {
        records: Vec<LedgerRecord>,
        effects: Vec<Vec<Effect>>,
        reply: Reply<u64>,
    },
    /// Catch up on other writers now.
    Sync {
        reply: Option<Reply<u64>>,
    },
    /// From now on, hand every record after `from` to `applier`.
    Attach {
        applier: Arc<dyn Applier>,
        from: u64,
        reply: Reply<()>,
    },
}

struct Writer<B: Backend> {
    backend: Arc<B>,
    conn: Option<B::Conn>,
    applier: Option<Arc<dyn Applier>>,
    /// How far the applier has been handed the ledger.
    followed: Followed,
    /// Whether the last batch found other writers' records under the lock:
    /// then the next one reads them before taking it, so the lock is held
    /// for this instance's own writes, not for reading another's.
    others_writing: bool,
    /// Whether the last catch-up failed: an outage is logged when it starts
    /// and when it ends, not on every poll.
    catch_up_failing: bool,
    jobs: mpsc::UnboundedReceiver<Job>,
    /// Jobs taken from the queue while a batch waited for the lock, and not
    /// appends: they are next, in order.
    backlog: Vec<Job>,
}

/// How far a writer has handed the ledger to its applier.
#[derive(Clone, Copy, Default)]
struct Followed {
    /// The newest record handed to the applier.
    applied: u64,
    /// The hash of record `applied` as this writer wrote or read it, once
    /// it has: what the ledger must still hold there.
    known: Option<Digest32>,
}

pub(crate) async fn run<B: Backend>(backend: Arc<B>, jobs: mpsc::UnboundedReceiver<Job>) {
    let mut writer = Writer {
        backend,
        conn: None,
        applier: None,
        followed: Followed::default(),
        others_writing: false,
        catch_up_failing: false,
        jobs,
        backlog: Vec::new(),
    };
    loop {
        let mut received = std::mem::take(&mut writer.backlog);
        if received.is_empty() && writer.jobs.recv_many(&mut received, MAX_BATCH).await == 0 {
            return;
        }
        writer.process(received).await;
    }
}

/// Sends a catch-up job whenever the backend says another instance
/// appended, and every [`POLL`]; ends with the store.
pub(crate) async fn follow<B: Backend>(backend: Arc<B>, jobs: mpsc::WeakUnboundedSender<Job>) {
    loop {
        tokio::select! {
            () = backend.appended_elsewhere() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        let Some(jobs) = jobs.upgrade() else { return };
        if jobs.send(Job::Sync { reply: None }).is_err() {
            return;
        }
    }
}

type Waiting = (Entry, Reply<Receipt>);

/// How a batch ended.
enum BatchError {
    /// One entry's conditional effect no longer holds: retry without it.
    Rejected(Rejected),
    /// Nothing was written.
    Failed(StoreError),
}

impl From<StoreError> for BatchError {
    fn from(error: StoreError) -> Self {
        BatchError::Failed(error)
    }
}

/// The database's ledger ends before what this instance has applied: it
/// lost committed records (a failover to a replica that lagged, a restore
/// from a backup). Records written there from now on would take numbers
/// this instance believes it has seen — a kill switch among them, never
/// applied here — so nothing is written until the instance is restarted
/// on the ledger as it is.
fn behind(head: u64, applied: u64) -> StoreError {
    StoreError::Unavailable(format!(
        "the ledger ends at record {head}, before record {applied} this instance applied: the database lost records (a failover to a lagging replica, a restore); restart every instance"
    ))
}

/// Whether the ledger still holds, as record `applied`, the record this
/// writer last wrote or read there (`known`, once it has one), and the
/// records read after it (`after`) link to it one by one up to the head.
/// Otherwise records were changed in the database under this gateway —
/// rewritten and rehashed, which the chain alone cannot show — and chaining
/// after them, or signing a checkpoint over them, would make the change
/// part of the history this gateway vouches for.
fn links(
    applied: u64,
    known: Option<Digest32>,
    after: &[LedgerRecord],
    (head_seq, head_hash): (u64, Digest32),
) -> Result<(), StoreError> {
    let Some(known) = known else {
        return Ok(());
    };
    let (mut seq, mut prev) = (applied, known);
    for record in after {
        if record.seq != seq + 1 || record.prev_hash != prev {
            return Err(changed(seq));
        }
        (seq, prev) = (record.seq, record.hash);
    }
    if (seq, prev) == (head_seq, head_hash) {
        Ok(())
    } else {
        Err(changed(seq))
    }
}

fn changed(seq: u64) -> StoreError {
    StoreError::Corrupt(format!(
        "the ledger was changed under this gateway: record {seq} is not the record it wrote or read there, or what follows does not link to it; nothing more is appended — run `clearance audit verify` (with --checkpoints), then restart"
    ))
}

/// What a committed batch holds, for the applier and the waiters.
struct Written {
    /// Other writers' records read under the lock and not yet applied: the
    /// page that reached the head.
    foreign: Vec<LedgerRecord>,
    /// Per entry: its record, or why its guard refused it.
    verdicts: Vec<Result<LedgerRecord, StoreError>>,
    head: u64,
    /// The hash of record `head`.
    head_hash: Digest32,
}

impl<B: Backend> Writer<B> {
    async fn process(&mut self, jobs: Vec<Job>) {
        let mut appends: Vec<Waiting> = Vec::new();
        let mut syncs = Vec::new();
        for job in jobs {
            match job {
                Job::Append { entry, reply } => appends.push((entry, reply)),
                Job::Sync { reply } => syncs.push(reply),
                Job::Attach {
                    applier,
                    from,
                    reply,
                } => {
                    self.write(std::mem::take(&mut appends)).await;
                    self.applier = Some(applier);
                    self.followed = Followed {
                        applied: from,
                        known: None,
                    };
                    let _ = reply.send(Ok(()));
                    syncs.push(None);
                }
                Job::Import {
                    records,
                    effects,
                    reply,
                } => {
                    self.write(std::mem::take(&mut appends)).await;
                    let _ = reply.send(self.import(records, effects).await);
                }
            }
        }
        if appends.is_empty() {
            if !syncs.is_empty() {
                let result = self.catch_up().await;
                for reply in syncs.into_iter().flatten() {
                    let _ = reply.send(result.clone());
                }
            }
        } else {
            self.write(appends).await;
            for reply in syncs.into_iter().flatten() {
                let _ = reply.send(Ok(self.followed.applied));
            }
        }
    }

    async fn connection(&mut self) -> Result<&mut B::Conn, StoreError> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            slot => Ok(slot.insert(self.backend.connect_writer().await?)),
        }
    }

    /// Writes a batch, retrying without each entry whose conditional effect
    /// no longer holds.
    async fn write(&mut self, mut batch: Vec<Waiting>) {
        if self.others_writing || self.catch_up_failing {
            // Best effort: what this misses, the locked read finds. Read
            // here, without the lock, so that the lock is held for this
            // instance's own writes rather than for another's records.
            let _ = self.catch_up().await;
        }
        // Set again by any attempt at this batch that finds some.
        self.others_writing = false;
        while !batch.is_empty() {
            match self.try_write(&mut batch).await {
                Ok(written) => {
                    self.deliver(&written, &batch);
                    for ((_, reply), verdict) in batch.into_iter().zip(written.verdicts) {
                        let answer = verdict.map(|r| Receipt {
                            seq: r.seq,
                            hash: r.hash,
                        });
                        // The waiter may have gone (client hung up); the record stands.
                        let _ = reply.send(answer);
                    }
                    return;
                }
                Err(BatchError::Rejected(Rejected { index, error })) => {
                    if index >= batch.len() {
                        self.fail(batch, StoreError::corrupt("a rejection named no entry"));
                        return;
                    }
                    let (_, reply) = batch.remove(index);
                    let _ = reply.send(Err(error));
                }
                Err(BatchError::Failed(error)) => {
                    self.fail(batch, error);
                    return;
                }
            }
        }
    }

    fn fail(&mut self, batch: Vec<Waiting>, error: StoreError) {
        tracing::error!(%error, entries = batch.len(), "ledger batch rolled back");
        // A failed transaction can leave the connection mid-transaction;
        // start the next batch on a fresh one rather than trust it.
        self.conn = None;
        for (_, reply) in batch {
            let _ = reply.send(Err(error.clone()));
        }
    }

    async fn try_write(&mut self, batch: &mut Vec<Waiting>) -> Result<Written, BatchError> {
        self.connection().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(BatchError::Failed(StoreError::Unavailable(
                "no connection".into(),
            )));
        };
        let head = B::begin_and_read_head(conn).await;
        // What arrived while waiting for the lock (another instance held
        // it) joins this batch: one commit for more entries.
        if head.is_ok() {
            take_appends(&mut self.jobs, &mut self.backlog, batch);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(BatchError::Failed(StoreError::Unavailable(
                "no connection".into(),
            )));
        };
        let result = match head {
            Ok(head) => {
                let applier = self.applier.as_deref();
                let before = self.followed.applied;
                let inside = Self::inside(conn, batch, applier, &mut self.followed, head).await;
                self.others_writing |= self.followed.applied > before;
                inside
            }
            Err(error) => Err(BatchError::Failed(error)),
        };
        if result.is_err() {
            // Best effort: on failure the connection is dropped anyway.
            let _ = B::rollback(conn).await;
        }
        result
    }

    async fn inside(
        conn: &mut B::Conn,
        batch: &[Waiting],
        applier: Option<&dyn Applier>,
        followed: &mut Followed,
        (head_seq, head_hash, latest_trip): (u64, Digest32, u64),
    ) -> Result<Written, BatchError> {
        if head_seq < followed.applied {
            return Err(BatchError::Failed(behind(head_seq, followed.applied)));
        }
        // What other writers appended since this one last caught up, read
        // a page at a time however far behind; the last page is applied
        // with this batch, after commit (the applier may compile a bundle,
        // which must not hold every other instance's appends back).
        let foreign = match applier {
            Some(applier) => {
                let head = (head_seq, head_hash);
                follow_to::<B>(conn, applier, followed, head, LastPage::Return).await?
            }
            None => Vec::new(),
        };
        let refusals = check_guards::<B>(conn, batch, latest_trip).await?;
        let mut seq = head_seq;
        let mut prev = head_hash;
        let mut records = Vec::with_capacity(batch.len());
        let mut verdicts = Vec::with_capacity(batch.len());
        for ((entry, _), refusal) in batch.iter().zip(refusals) {
            match refusal {
                Some(error) => verdicts.push(Err(error)),
                None => {
                    seq += 1;
                    let record = chained(seq, entry, prev);
                    prev = record.hash;
                    records.push(record.clone());
                    verdicts.push(Ok(record));
                }
            }
        }
        if records.is_empty() {
            B::rollback(conn).await?;
            return Ok(Written {
                foreign,
                verdicts,
                head: head_seq,
                head_hash,
            });
        }
        let accepted: Vec<(usize, (u64, &[Effect]))> = batch
            .iter()
            .zip(&verdicts)
            .enumerate()
            .filter_map(|(index, ((entry, _), verdict))| {
                verdict
                    .as_ref()
                    .ok()
                    .map(|record| (index, (record.seq, entry.effects.as_slice())))
            })
            .collect();
        let effects: Vec<(u64, &[Effect])> = accepted.iter().map(|(_, e)| *e).collect();
        if let Err(Rejected { index, error }) = B::write(conn, &records, &effects).await {
            return Err(match (error, accepted.get(index)) {
                (StoreError::Conflict(message), Some((original, _))) => {
                    BatchError::Rejected(Rejected {
                        index: *original,
                        error: StoreError::Conflict(message),
                    })
                }
                (other, _) => BatchError::Failed(other),
            });
        }
        B::finish(conn, seq).await?;
        Ok(Written {
            foreign,
            verdicts,
            head: seq,
            head_hash: prev,
        })
    }

    /// Hands the batch's records to the applier, other writers' first.
    fn deliver(&mut self, written: &Written, batch: &[Waiting]) {
        self.others_writing |= !written.foreign.is_empty();
        if let Some(applier) = &self.applier {
            let mut committed: Vec<Committed<'_>> =
                written.foreign.iter().map(Committed::Foreign).collect();
            for ((entry, _), verdict) in batch.iter().zip(&written.verdicts) {
                if let Ok(record) = verdict {
                    committed.push(Committed::Own {
                        record,
                        effects: &entry.effects,
                        claim: entry.claim,
                    });
                }
            }
            if !committed.is_empty() {
                applier.apply(&committed);
            }
        }
        if written.head >= self.followed.applied {
            self.followed = Followed {
                applied: written.head,
                known: Some(written.head_hash),
            };
        }
    }

    /// Reads and applies what other writers appended, with no lock: the
    /// ledger's committed records are always a prefix without gaps, since
    /// every append holds the write lock until it commits. A page at a
    /// time, each applied before the next is read, so that an instance
    /// far behind (cut off from the database for minutes) holds one page,
    /// not all it missed.
    async fn catch_up(&mut self) -> Result<u64, StoreError> {
        let Some(applier) = self.applier.clone() else {
            return Ok(self.followed.applied);
        };
        match self.catch_up_to_head(applier.as_ref()).await {
            Ok(()) => {
                if std::mem::take(&mut self.catch_up_failing) {
                    tracing::info!("catching up on other writers works again");
                }
                Ok(self.followed.applied)
            }
            Err(error) => {
                if !std::mem::replace(&mut self.catch_up_failing, true) {
                    tracing::warn!(%error, "catching up on other writers failed; retrying");
                }
                self.conn = None;
                Err(error)
            }
        }
    }

    /// Reads and applies other writers' records up to the head as it is
    /// now, page by page ([`follow_to`]).
    async fn catch_up_to_head(&mut self, applier: &dyn Applier) -> Result<(), StoreError> {
        let (head, head_hash) = B::head(self.connection().await?).await?;
        if head < self.followed.applied {
            return Err(behind(head, self.followed.applied));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(StoreError::Unavailable("no connection".into()));
        };
        follow_to::<B>(
            conn,
            applier,
            &mut self.followed,
            (head, head_hash),
            LastPage::Apply,
        )
        .await
        .map(|_| ())
    }

    /// Appends records copied from another store, verbatim: they must
    /// continue this ledger's chain exactly.
    async fn import(
        &mut self,
        records: Vec<LedgerRecord>,
        effects: Vec<Vec<Effect>>,
    ) -> Result<u64, StoreError> {
        let conn = self.connection().await?;
        B::begin_exclusive(conn).await?;
        let result = async {
            let (head_seq, head_hash) = B::head(conn).await?;
            if let Some(first) = records.first()
                && (first.seq != head_seq + 1 || first.prev_hash != head_hash)
            {
                return Err(StoreError::Conflict(format!(
                    "record {} does not continue this ledger (its head is record {head_seq})",
                    first.seq
                )));
            }
            B::insert_records(conn, &records).await?;
            let entries: Vec<(u64, &[Effect])> = records
                .iter()
                .zip(&effects)
                .map(|(r, e)| (r.seq, e.as_slice()))
                .collect();
            B::apply(conn, &entries).await.map_err(|r| r.error)?;
            let head = records.last().map_or(head_seq, |r| r.seq);
            B::announce(conn, head).await?;
            B::commit(conn).await?;
            Ok(head)
        }
        .await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

/// Moves the appends waiting in `jobs` into `batch` (up to [`MAX_BATCH`]),
/// stopping at the first other job, which goes to `backlog` to keep order.
fn take_appends(
    jobs: &mut mpsc::UnboundedReceiver<Job>,
    backlog: &mut Vec<Job>,
    batch: &mut Vec<Waiting>,
) {
    if !backlog.is_empty() {
        return;
    }
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(Job::Append { entry, reply }) => batch.push((entry, reply)),
            Ok(other) => {
                backlog.push(other);
                return;
            }
            Err(_) => return,
        }
    }
}

/// A payload larger than any reader takes ([`stored::MAX_PAYLOAD`]: past
/// it, a stored record is a break) is refused, not written.
fn too_large(entry: &Entry) -> Option<StoreError> {
    (entry.payload.len() as u64 > stored::MAX_PAYLOAD).then(|| {
        StoreError::Conflict(format!(
            "a `{}` record of {} bytes is more than the {} a record may hold",
            entry.kind,
            entry.payload.len(),
            stored::MAX_PAYLOAD
        ))
    })
}

fn chained(seq: u64, entry: &Entry, prev: Digest32) -> LedgerRecord {
    LedgerRecord::chained(
        seq,
        timestamp_text(entry.at),
        entry.kind.to_owned(),
        entry.payload.clone(),
        prev,
    )
}

/// What [`follow_to`] does with the page that reaches the head.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LastPage {
    /// Applies it, as every page before it.
    Apply,
    /// Returns it unapplied, for the caller to apply with what it appends.
    Return,
}

/// Reads and applies the records after `followed` up to `head` (its
/// hash `head_hash`), a page at a time, each page's links checked and
/// the page applied before the next is read: an instance far behind (cut
/// off from the database for minutes, or idle while another wrote) holds
/// one page, not all it missed. What a page applied stays applied, and
/// `followed` says so, if a later one fails. With [`LastPage::Return`],
/// the page that reaches the head is checked against it and returned
/// instead, `followed` left before it.
async fn follow_to<B: Backend>(
    conn: &mut B::Conn,
    applier: &dyn Applier,
    followed: &mut Followed,
    (head, head_hash): (u64, Digest32),
    last_page: LastPage,
) -> Result<Vec<LedgerRecord>, StoreError> {
    loop {
        let Followed { applied, known } = *followed;
        if applied == head {
            links(applied, known, &[], (head, head_hash))?;
            followed.known = Some(head_hash);
            return Ok(Vec::new());
        }
        let records = read_page::<B>(conn, applied, head).await?;
        let Some(last) = records.last() else {
            return Err(StoreError::Corrupt(format!(
                "the ledger's head is record {head}, yet no record follows record {applied}: another writer's records cannot be followed"
            )));
        };
        let end = (last.seq, last.hash);
        if last_page == LastPage::Return && end.0 == head {
            links(applied, known, &records, (head, head_hash))?;
            return Ok(records);
        }
        // The last page's end is held against the head's hash above.
        links(applied, known, &records, end)?;
        let committed: Vec<Committed<'_>> = records.iter().map(Committed::Foreign).collect();
        applier.apply(&committed);
        *followed = Followed {
            applied: end.0,
            known: Some(end.1),
        };
    }
}

/// The next page of records after `after`, none past `head`, without gaps.
async fn read_page<B: Backend>(
    conn: &mut B::Conn,
    after: u64,
    head: u64,
) -> Result<Vec<LedgerRecord>, StoreError> {
    let mut records = B::records_after(conn, after, CATCH_UP_PAGE).await?;
    // Read without the write lock (catching up), a page may hold records
    // committed after the head was read: they are the next catch-up's, so
    // that what is returned ends at the head its hash was read with.
    records.retain(|record| record.seq <= head);
    for (expected, record) in (after + 1..).zip(&records) {
        if record.seq != expected {
            return Err(StoreError::Corrupt(format!(
                "the ledger skips from record {} to {}: another writer's records cannot be followed",
                expected - 1,
                record.seq
            )));
        }
    }
    Ok(records)
}

/// What the entries accepted so far in a batch did, which the tables do
/// not show until the batch is applied.
#[derive(Default)]
struct EarlierInBatch<'a> {
    executions: Vec<&'a DecisionIndex>,
    opened_approvals: Vec<&'a str>,
    sampled_agents: Vec<&'a str>,
    tripped: bool,
}

impl<'a> EarlierInBatch<'a> {
    fn accept(&mut self, entry: &'a Entry) {
        for effect in &entry.effects {
            match effect {
                Effect::DecisionRecorded(index) if index.execution => self.executions.push(index),
                Effect::ApprovalOpened(row) => self.opened_approvals.push(&row.approval.id),
                Effect::KillSwitchTripped(_) => self.tripped = true,
                Effect::EvidenceRecorded(row) => self.sampled_agents.push(&row.agent),
                _ => {}
            }
        }
    }
}

/// Each entry's refusal, if a guard fails.
async fn check_guards<B: Backend>(
    conn: &mut B::Conn,
    batch: &[Waiting],
    latest_trip: u64,
) -> Result<Vec<Option<StoreError>>, StoreError> {
    let mut earlier = EarlierInBatch::default();
    let mut refusals = Vec::with_capacity(batch.len());
    for (entry, _) in batch {
        // Refused before its guards, and before it counts as earlier in the
        // batch: it is never written.
        let mut refusal = too_large(entry);
        for guard in &entry.guards {
            if refusal.is_some() {
                break;
            }
            refusal = check_guard::<B>(conn, guard, latest_trip, &earlier).await?;
        }
        if refusal.is_none() {
            earlier.accept(entry);
        }
        refusals.push(refusal);
    }
    Ok(refusals)
}

async fn check_guard<B: Backend>(
    conn: &mut B::Conn,
    guard: &Guard,
    latest: u64,
    earlier: &EarlierInBatch<'_>,
) -> Result<Option<StoreError>, StoreError> {
    Ok(match guard {
        Guard::NoKillSwitchTrippedAfter(_) if earlier.tripped => Some(StoreError::Conflict(
            "a kill switch tripped earlier in this batch, after the facts this was decided on"
                .into(),
        )),
        Guard::NoKillSwitchTrippedAfter(seq) => {
            (latest > *seq).then(|| {
                StoreError::Conflict(format!(
                    "a kill switch was tripped (record {latest}) after the facts this was decided on (record {seq})"
                ))
            })
        }
        Guard::HardStop {
            agent,
            impacts,
            since,
            max,
        } => {
            let stored = B::count_executions(conn, agent, impacts, *since).await?;
            let in_batch = earlier
                .executions
                .iter()
                .filter(|d| d.agent == *agent && impacts.contains(&d.impact) && d.at > *since)
                .count() as u64;
            (stored + in_batch + 1 > u64::from(*max)).then(|| {
                StoreError::Conflict(format!(
                    "hard stop: agent `{agent}` already has {} of {max} executions in its window",
                    stored + in_batch
                ))
            })
        }
        Guard::NoSampleAfter { agent, seq } => {
            let sampled = earlier.sampled_agents.contains(&agent.as_str())
                || B::sample_after(conn, agent, *seq).await?;
            sampled.then(|| {
                StoreError::Conflict(format!(
                    "a sample of agent `{agent}` was recorded after record {seq}, which the gate was measured on"
                ))
            })
        }
        Guard::NoUnknownApprovalsAfter { seq, known } => {
            // An approval opened earlier in this batch is not in the table
            // yet. Its opener's claim may already be released (the caller
            // hung up while the entry waited), so the trip cannot have
            // known of it from the state either.
            let in_batch = earlier
                .opened_approvals
                .iter()
                .find(|id| !known.contains(**id))
                .map(|id| (*id).to_owned());
            let unknown = match in_batch {
                Some(id) => Some(id),
                None => B::approvals_opened_after(conn, *seq)
                    .await?
                    .into_iter()
                    .find(|id| !known.contains(id)),
            };
            unknown.map(|id| {
                StoreError::Conflict(format!(
                    "approval `{id}` was opened after record {seq}, unknown to this entry"
                ))
            })
        }
    })
}
