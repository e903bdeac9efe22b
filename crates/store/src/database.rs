//! [`Database`]: a backend with its writer running — the one implementation
//! of [`Store`] — and what every backend shares: verification and paging.

use std::sync::Arc;

use clearance_engine::ledger::{ChainBreak, ChainVerifier, Digest32, LedgerRecord};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::{
    Applier, Effect, Entry, Store, StoreError, Submitted,
    backend::Backend,
    rows::{
        AgentRow, ApprovalState, AuditQuery, DecisionRow, EvidenceRow, ExecutionCandidate,
        KillSwitchHistoryRow, LedgerFilter, Overview, PlatformEventRow, SessionRow, StoredState,
        TokenRow, VerifyReport,
    },
    writer::{self, Job},
};

/// How many records verification and export read per query: large enough
/// that the round trip vanishes, small enough to bound memory (verifying
/// 412k records read as fast with 20,000 and held 64 MB, not 24 MB).
const PAGE: u32 = 2_000;

/// A database and its ledger writer.
pub struct Database<B: Backend> {
    backend: Arc<B>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl<B: Backend> Clone for Database<B> {
    fn clone(&self) -> Self {
        Database {
            backend: self.backend.clone(),
            jobs: self.jobs.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for Database<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &B::NAME)
            .finish()
    }
}

impl<B: Backend> Database<B> {
    /// Starts the writer for `backend` on the current runtime.
    pub(crate) fn start(backend: B) -> Database<B> {
        let backend = Arc::new(backend);
        // Unbounded: submitting must not wait (it happens under the
        // service's state lock, to keep ledger order = admission order);
        // the service bounds what is in flight.
        let (jobs, receiver) = mpsc::unbounded_channel();
        tokio::spawn(writer::run(backend.clone(), receiver));
        Database { backend, jobs }
    }

    async fn ask<T>(&self, job: impl FnOnce(writer::Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .map_err(|_| StoreError::Unavailable("the ledger writer is not running".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the ledger writer stopped".into()))?
    }
}

impl<B: Backend> Store for Database<B> {
    fn backend_name(&self) -> &'static str {
        B::NAME
    }

    fn submit(&self, entry: Entry) -> Submitted {
        let (reply, receipt) = oneshot::channel();
        match self.jobs.send(Job::Append { entry, reply }) {
            Ok(()) => Submitted(Ok(receipt)),
            Err(_) => Submitted(Err(StoreError::Unavailable(
                "the ledger writer is not running".into(),
            ))),
        }
    }

    async fn attach(&self, applier: Arc<dyn Applier>, from: u64) -> Result<(), StoreError> {
        self.ask(|reply| Job::Attach {
            applier,
            from,
            reply,
        })
        .await?;
        tokio::spawn(writer::follow(self.backend.clone(), self.jobs.downgrade()));
        Ok(())
    }

    async fn sync(&self) -> Result<u64, StoreError> {
        self.ask(|reply| Job::Sync { reply: Some(reply) }).await
    }

    async fn import(
        &self,
        records: Vec<LedgerRecord>,
        effects: Vec<Vec<Effect>>,
    ) -> Result<u64, StoreError> {
        self.ask(|reply| Job::Import {
            records,
            effects,
            reply,
        })
        .await
    }

    async fn load<T, Build, Visit>(
        &self,
        horizon: Timestamp,
        build: Build,
        visit: Visit,
    ) -> Result<T, StoreError>
    where
        T: Send,
        Build: FnOnce(StoredState) -> T + Send,
        Visit: FnMut(&mut T, EvidenceRow) -> Result<(), StoreError> + Send,
    {
        self.backend.load(horizon, build, visit).await
    }

    async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        self.backend.agents().await
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        self.backend.find_token(hash).await
    }

    async fn find_decision(&self, id: &str) -> Result<Option<DecisionRow>, StoreError> {
        self.backend.find_decision(id).await
    }

    async fn execution_candidates(
        &self,
        agent: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<ExecutionCandidate>, StoreError> {
        self.backend
            .execution_candidates(agent, from, to, limit)
            .await
    }

    async fn find_platform_event(&self, key: &str) -> Result<Option<PlatformEventRow>, StoreError> {
        self.backend.find_platform_event(key).await
    }

    async fn platform_event_of(
        &self,
        decision_id: &str,
    ) -> Result<Option<PlatformEventRow>, StoreError> {
        self.backend.platform_event_of(decision_id).await
    }

    async fn overview(&self, since: Timestamp) -> Result<Overview, StoreError> {
        self.backend.overview(since).await
    }

    async fn find_session(&self, hash: &str) -> Result<Option<SessionRow>, StoreError> {
        self.backend.find_session(hash).await
    }

    async fn open_sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        self.backend.open_sessions().await
    }

    async fn touch_session(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.backend.touch_session(id, at).await
    }

    async fn ledger_page(&self, filter: &LedgerFilter) -> Result<Vec<LedgerRecord>, StoreError> {
        self.backend.ledger_page(filter).await
    }

    async fn ungraded_recommendations(
        &self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        self.backend.ungraded_recommendations(since, limit).await
    }

    async fn evidence_since(
        &self,
        agent: &str,
        since: Timestamp,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        self.backend.evidence_since(agent, since).await
    }

    async fn notification_records(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        self.backend.notification_records(after, limit).await
    }

    async fn lease_cursor(
        &self,
        webhook: &str,
        holder: &str,
        until: Timestamp,
        start: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.backend
            .lease_cursor(webhook, holder, until, start)
            .await
    }

    async fn advance_cursor(
        &self,
        webhook: &str,
        holder: &str,
        seq: u64,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.backend
            .advance_cursor(webhook, holder, seq, until)
            .await
    }

    async fn forget_cursors_except(&self, keep: &[String]) -> Result<u64, StoreError> {
        self.backend.forget_cursors_except(keep).await
    }

    async fn find_approval(&self, id: &str) -> Result<Option<ApprovalState>, StoreError> {
        self.backend.find_approval(id).await
    }

    async fn kill_switch_history(
        &self,
        since: Timestamp,
    ) -> Result<Vec<KillSwitchHistoryRow>, StoreError> {
        self.backend.kill_switch_history(since).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<LedgerRecord>, StoreError> {
        self.backend.audit(query).await
    }

    async fn records(&self, after: u64, limit: u32) -> Result<Vec<LedgerRecord>, StoreError> {
        self.backend.page(after, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        self.backend.probe_write().await
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        verify(|after, limit| self.backend.page(after, limit)).await
    }
}

/// Re-reads the whole ledger page by page and checks its chain, stopping at
/// the first break. Gaps and out-of-place numbers reach the verifier, which
/// expects 1, 2, 3… and names the first record that is not.
///
/// Reading and hashing overlap: while a page is hashed on a blocking
/// thread, the next is read (and decoded) on this one.
pub(crate) async fn verify<F, Fut>(mut page: F) -> Result<VerifyReport, StoreError>
where
    F: FnMut(u64, u32) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<LedgerRecord>, StoreError>>,
{
    let mut verifier = ChainVerifier::default();
    let mut fetched = fetch(&mut page, 0).await?;
    loop {
        let (records, more) = match fetched {
            Fetched::Page { records, more } => (records, more),
            Fetched::Unreadable(problem) => {
                return Ok(broken(&verifier, verifier.verified() + 1, problem));
            }
        };
        let last = records.last().map(|r| r.seq);
        let hashing = tokio::task::spawn_blocking(move || {
            let first_break = records.iter().find_map(|r| verifier.push(r).err());
            (verifier, first_break)
        });
        let next = async {
            match last {
                Some(last) if more => Some(fetch(&mut page, last).await),
                _ => None,
            }
        };
        let (hashed, next) = tokio::join!(hashing, next);
        let (hashed, first_break) = hashed
            .map_err(|e| StoreError::Unavailable(format!("verifying a page stopped: {e}")))?;
        verifier = hashed;
        if let Some(ChainBreak { seq, problem }) = first_break {
            return Ok(broken(&verifier, seq, problem));
        }
        match next {
            Some(next) => fetched = next?,
            None => {
                return Ok(VerifyReport {
                    verified: verifier.verified(),
                    head: verifier.head(),
                    first_break: None,
                });
            }
        }
    }
}

/// A page read for verifying.
enum Fetched {
    /// Records in order; `more` when the ledger may go on after them.
    Page {
        records: Vec<LedgerRecord>,
        more: bool,
    },
    /// The next record does not decode: why.
    Unreadable(String),
}

async fn fetch<F, Fut>(page: &mut F, after: u64) -> Result<Fetched, StoreError>
where
    F: FnMut(u64, u32) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<LedgerRecord>, StoreError>>,
{
    match page(after, PAGE).await {
        Ok(records) => {
            let more = records.len() == PAGE as usize;
            Ok(Fetched::Page { records, more })
        }
        // A row that does not decode is a break, not an outage: the page is
        // read again a record at a time to find it.
        Err(StoreError::Corrupt(_)) => Ok(match readable_prefix(page, after).await? {
            Ok(records) => Fetched::Page {
                records,
                more: true,
            },
            Err(problem) => Fetched::Unreadable(problem),
        }),
        Err(other) => Err(other),
    }
}

/// The records after `after` that decode, one at a time, up to the first
/// that does not: `Ok` with the first of them when some do (the caller
/// verifies them and comes back for the rest), the unreadable record's
/// problem when it is the very next one.
async fn readable_prefix<F, Fut>(
    page: &mut F,
    after: u64,
) -> Result<Result<Vec<LedgerRecord>, String>, StoreError>
where
    F: FnMut(u64, u32) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<LedgerRecord>, StoreError>>,
{
    let mut records = Vec::new();
    let mut last = after;
    while records.len() < PAGE as usize - 1 {
        match page(last, 1).await {
            Ok(next) => match next.into_iter().next() {
                Some(record) => {
                    last = record.seq;
                    records.push(record);
                }
                None => break,
            },
            Err(StoreError::Corrupt(problem)) if records.is_empty() => return Ok(Err(problem)),
            Err(StoreError::Corrupt(_)) => break,
            Err(other) => return Err(other),
        }
    }
    Ok(Ok(records))
}

fn broken(verifier: &ChainVerifier, seq: u64, problem: String) -> VerifyReport {
    VerifyReport {
        verified: verifier.verified(),
        head: verifier.head(),
        first_break: Some(ChainBreak { seq, problem }),
    }
}

/// The genesis head, for an empty ledger.
pub(crate) fn empty_head() -> (u64, Digest32) {
    (0, Digest32::GENESIS)
}
