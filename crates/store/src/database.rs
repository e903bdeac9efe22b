//! [`Database`]: a backend with its writer running — the one implementation
//! of [`Store`] — and what every backend shares (verification is in
//! [`crate::verify`]).

use std::sync::Arc;

use clearance_engine::ledger::{Digest32, LedgerRecord};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::{
    Applier, Effect, Entry, Observer, Store, StoreError, Submitted,
    backend::Backend,
    rows::{
        AgentRow, ApprovalState, AuditQuery, DecisionRow, EvidenceRow, ExecutionCandidate,
        KillSwitchHistoryRow, LedgerFilter, Overview, PlatformEventRow, SessionRow, StoredState,
        TokenRow, VerifyReport,
    },
    writer::{self, Job},
};

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
        per_agent: u32,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        self.backend
            .ungraded_recommendations(since, per_agent, limit)
            .await
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

    async fn outside_chain(&self) -> Result<Option<String>, StoreError> {
        self.backend.outside_chain().await
    }

    async fn repeated_number(&self, through: u64) -> Result<Option<u64>, StoreError> {
        self.backend.repeated_number(through).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        self.backend.probe_write().await
    }

    async fn verify_observed(
        &self,
        observe: &mut Observer<'_>,
    ) -> Result<VerifyReport, StoreError> {
        crate::verify::verify(&*self.backend, observe).await
    }
}

/// The genesis head, for an empty ledger.
pub(crate) fn empty_head() -> (u64, Digest32) {
    (0, Digest32::GENESIS)
}
