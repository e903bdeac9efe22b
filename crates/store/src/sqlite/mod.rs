//! [`SqliteStore`]: the embedded store, one SQLite file in WAL mode with
//! `synchronous = FULL` (every commit is fsync'd before it returns; group
//! commit makes that one fsync per batch, not per record).
//!
//! Reads go through a small pool; all writes go through one writer task
//! (`writer`) that owns its own connection and the head of the chain.

pub(crate) mod reads;

pub use reads::text as timestamp_text;
mod writer;

use std::{path::Path, str::FromStr, time::Duration};

use clearance_engine::ledger::Digest32;
use sqlx::{
    Connection, SqliteConnection, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::sync::{mpsc, oneshot};

use crate::{Entry, Receipt, StoreError};

/// How many entries the writer waits for at most before it commits: enough
/// to amortise the fsync, few enough to bound the latency of a batch.
const MAX_BATCH: usize = 512;

/// The embedded SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<writer::Job>,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path`, applies the
    /// migrations and starts the ledger writer on the current runtime.
    ///
    /// # Errors
    /// When the file cannot be opened, migrated or read.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let mut writer_connection = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations")
            .run(&mut writer_connection)
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        let (sender, receiver) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(writer::run(options, writer_connection, receiver));
        Ok(SqliteStore {
            pool,
            writer: sender,
        })
    }

    /// Opens an existing database read-only, for `clearance audit`. No
    /// writer runs; `append` fails.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub async fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        let (sender, _) = mpsc::channel(1);
        Ok(SqliteStore {
            pool,
            writer: sender,
        })
    }
}

impl crate::Store for SqliteStore {
    async fn append(&self, entry: Entry) -> Result<Receipt, StoreError> {
        let (reply, receipt) = oneshot::channel();
        self.writer
            .send(writer::Job { entry, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        receipt.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn load_state(&self, since: &str) -> Result<crate::StoredState, StoreError> {
        reads::load_state(&self.pool, since).await
    }

    async fn find_token(&self, hash: &str) -> Result<Option<crate::TokenRow>, StoreError> {
        reads::find_token(&self.pool, hash).await
    }

    async fn replay_evidence<F>(&self, visit: F) -> Result<u64, StoreError>
    where
        F: FnMut(crate::EvidenceRow) -> Result<(), StoreError> + Send,
    {
        reads::replay_evidence(&self.pool, visit).await
    }

    async fn evidence_exists(
        &self,
        agent: &str,
        kind: &str,
        incident_id: &str,
    ) -> Result<bool, StoreError> {
        reads::evidence_exists(&self.pool, agent, kind, incident_id).await
    }

    async fn find_decision(&self, id: &str) -> Result<Option<crate::DecisionRow>, StoreError> {
        reads::find_decision(&self.pool, id).await
    }

    async fn audit(
        &self,
        query: &crate::AuditQuery,
    ) -> Result<Vec<clearance_engine::ledger::LedgerRecord>, StoreError> {
        reads::audit(&self.pool, query).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let at = timestamp_text(jiff::Timestamp::now());
        sqlx::query("UPDATE health_probe SET at = ? WHERE id = 1")
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn verify(&self) -> Result<crate::VerifyReport, StoreError> {
        reads::verify(&self.pool).await
    }
}

fn digest(text: &str) -> Result<Digest32, StoreError> {
    Digest32::from_hex(text)
        .ok_or_else(|| StoreError::Corrupt(format!("`{text}` is not a SHA-256 hex digest")))
}
