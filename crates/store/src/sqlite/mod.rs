//! [`Sqlite`]: the embedded backend — one file in WAL mode with
//! `synchronous = FULL` (every commit is fsync'd before it returns; group
//! commit makes that one fsync per batch, not per record).
//!
//! The write lock is SQLite's own: `BEGIN IMMEDIATE` takes it before the
//! head is read, so another process appending to the same file
//! (`clearance token issue` beside a running server) is chained after,
//! never forked from. Nothing announces appends; the writer polls.

mod apply;
mod console;
mod packed;
mod read;

use std::{path::Path, str::FromStr, time::Duration};

use clearance_engine::{
    Impact,
    ledger::{Digest32, LedgerRecord},
};
use jiff::Timestamp;
use sqlx::{
    Connection, Sqlite as Driver, SqliteConnection, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};

use crate::{
    Database, Effect, StoreError,
    backend::{Backend, Rejected},
    codec::{digest, int, seq, timestamp_text},
    database::empty_head,
    decode::{self, bounded, bounded_payload, columns_for, max_hash, record_columns},
    rows::{
        AgentRow, ApprovalState, AuditQuery, DecisionRow, EvidenceRow, ExecutionCandidate,
        KillSwitchHistoryRow, LedgerFilter, Overview, PlatformEventRow, SessionRow, StoredState,
        TokenRow,
    },
    stored,
};

columns_for!(sqlx::sqlite::SqliteRow, stored_payload, stored_digest);

/// Whether a row's value is a BLOB: storage format 2 (`stored`).
fn is_blob_value(value: &sqlx::sqlite::SqliteValueRef<'_>) -> bool {
    sqlx::TypeInfo::name(&*sqlx::ValueRef::type_info(value)) == "BLOB"
}

/// A payload in either storage format; NULL, one past the bound
/// ([`decode::record_columns`]).
fn stored_payload(row: &SqliteRow, column: &str) -> Result<String, StoreError> {
    let value = sqlx::Row::try_get_raw(row, column)?;
    if sqlx::ValueRef::is_null(&value) {
        return Err(stored::past_the_bound());
    }
    if is_blob_value(&value) {
        stored::decode_payload(&sqlx::Row::try_get::<Vec<u8>, _>(row, column)?)
    } else {
        let text: String = sqlx::Row::try_get(row, column)?;
        if text.len() as u64 > stored::MAX_PAYLOAD {
            return Err(stored::past_the_bound());
        }
        Ok(text)
    }
}

/// A hash in either storage format; NULL, one past the bound.
fn stored_digest(row: &SqliteRow, column: &str) -> Result<Digest32, StoreError> {
    let value = sqlx::Row::try_get_raw(row, column)?;
    if sqlx::ValueRef::is_null(&value) {
        return Err(stored::field_past_the_bound(column, stored::MAX_HASH));
    }
    if is_blob_value(&value) {
        stored::decode_digest(&sqlx::Row::try_get::<Vec<u8>, _>(row, column)?)
    } else {
        digest(&sqlx::Row::try_get::<String, _>(row, column)?)
    }
}

/// The embedded store.
pub type SqliteStore = Database<Sqlite>;

/// The SQLite backend: a read pool and the options the writer connects with.
pub struct Sqlite {
    pool: SqlitePool,
    options: SqliteConnectOptions,
}

fn options(path: &Path) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path`, applies the
    /// migrations and starts the ledger writer on the current runtime.
    ///
    /// # Errors
    /// When the file cannot be opened, migrated or read.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(options(path)?.create_if_missing(true)).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<SqliteStore, StoreError> {
        let mut connection = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut connection)
            .await?;
        connection.close().await?;
        // The pool writes too (console sessions, webhook cursors): like the
        // writer's, a connection SQLite opened read-only is refused.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| Box::pin(refuse_read_only(conn)))
            .connect_with(options.clone())
            .await?;
        Ok(Database::start(Sqlite { pool, options }))
    }

    /// Opens the database at `path` as [`SqliteStore::open`] does, but only
    /// if the file is there: the commands that add to an installation
    /// (`token issue`, `reconcile`) must not start a new one on a mistyped
    /// `--db`, where what they record would reach no gateway.
    ///
    /// # Errors
    /// When there is no file at `path`, or as [`SqliteStore::open`].
    pub async fn open_existing(path: &Path) -> Result<SqliteStore, StoreError> {
        refuse_missing(path)?;
        SqliteStore::open_with(options(path)?.create_if_missing(false)).await
    }

    /// Opens an existing database read-only, for `clearance audit`: every
    /// append fails. A file on read-only media (a backup, an evidence
    /// archive) is read too: SQLite cannot create the shared-memory index a
    /// WAL database is read through there, and none beside it means no
    /// writer has it open, so with no index and no log beside it the file
    /// is read as the unchanging file it is, without locks. That holds for
    /// media nothing writes: a writer that opens the file through another
    /// mount while it is read could make the read see a torn page (the
    /// README says to verify a live ledger where it is written).
    ///
    /// # Errors
    /// When the file cannot be opened, or holds a write-ahead log that
    /// cannot be read where it lies.
    pub async fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        refuse_missing(path)?;
        let options = options(path)?.read_only(true);
        let (pool, options) = match read_pool(&options).await {
            Ok(pool) => (pool, options),
            Err(error) if !cannot_open(&error) => return Err(error.into()),
            Err(_) if beside(path, "-wal") || beside(path, "-shm") => {
                return Err(StoreError::Unavailable(format!(
                    "its write-ahead log ({}-wal) is read through a shared-memory file SQLite cannot create in this read-only directory; verify it where it is written, or copy the file and its -wal to a writable directory",
                    path.display()
                )));
            }
            Err(_) => {
                let options = options.immutable(true);
                (read_pool(&options).await?, options)
            }
        };
        Ok(Database::start(Sqlite { pool, options }))
    }
}

async fn read_pool(options: &SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
}

/// SQLITE_CANTOPEN: here, the file or what it is read through could not be
/// opened.
fn cannot_open(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("14"))
}

/// Whether a file with content named `path` + `suffix` lies beside the
/// database: its write-ahead log (`-wal`) or shared-memory index (`-shm`).
fn beside(path: &Path, suffix: &str) -> bool {
    let mut file = path.as_os_str().to_owned();
    file.push(suffix);
    std::fs::metadata(file).is_ok_and(|m| m.len() > 0)
}

/// SQLite opens a file it cannot write read-only without a word, and the
/// connection stays read-only after the file is writable again. The writer
/// keeps its connection between batches (and reads with it to catch up),
/// and the pool keeps its own, so one opened while the disk refused writes
/// would fail writes long after it recovered: a write statement is run,
/// and rolled back, on connecting, so such a connection is refused then
/// and opened again. Taking the write lock alone is not enough: `BEGIN
/// IMMEDIATE` succeeds on a read-only connection; a write statement fails
/// there as it starts, whatever rows it matches.
async fn refuse_read_only(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let wrote = sqlx::query("UPDATE health_probe SET at = at WHERE id = 1")
        .execute(&mut *conn)
        .await;
    let rolled_back = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    wrote?;
    rolled_back?;
    Ok(())
}

fn refuse_missing(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "no database at {}",
            path.display()
        )))
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

impl Backend for Sqlite {
    type Conn = SqliteConnection;

    const NAME: &'static str = "sqlite";

    async fn connect_writer(&self) -> Result<SqliteConnection, StoreError> {
        // A batch's multi-row INSERTs keep a statement journal (a statement
        // could fail halfway); past 64 KiB SQLite spills it to a temporary
        // file, created and unlinked on the writer's path ~200 times a
        // second under load. A batch is at most MAX_BATCH records, so the
        // journal stays small enough to keep in memory. Only here: the
        // pool's sorts for the console may be large, and stay on disk.
        let options = self.options.clone().pragma("temp_store", "memory");
        let mut conn = SqliteConnection::connect_with(&options).await?;
        refuse_read_only(&mut conn).await?;
        Ok(conn)
    }

    async fn begin_exclusive(conn: &mut SqliteConnection) -> Result<(), StoreError> {
        exec(conn, "BEGIN IMMEDIATE").await
    }

    async fn commit(conn: &mut SqliteConnection) -> Result<(), StoreError> {
        exec(conn, "COMMIT").await
    }

    async fn rollback(conn: &mut SqliteConnection) -> Result<(), StoreError> {
        exec(conn, "ROLLBACK").await
    }

    async fn head(conn: &mut SqliteConnection) -> Result<(u64, Digest32), StoreError> {
        let row = sqlx::query(concat!(
            "SELECT seq, ",
            bounded!("", "hash", max_hash!()),
            " FROM ledger ORDER BY seq DESC LIMIT 1"
        ))
        .fetch_optional(conn)
        .await?;
        match row {
            None => Ok(empty_head()),
            Some(row) => Ok((
                seq(sqlx::Row::try_get(&row, "seq")?)?,
                stored_digest(&row, "hash")?,
            )),
        }
    }

    async fn records_after(
        conn: &mut SqliteConnection,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        decode::ledger_page(
            sqlx::query(concat!(
                "SELECT ",
                record_columns!(),
                " FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?"
            ))
            .bind(int(after))
            .bind(i64::from(limit))
            .fetch(conn),
        )
        .await
    }

    async fn latest_trip(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
        let (latest,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(tripped_seq), 0) FROM kill_switches WHERE reset_at IS NULL",
        )
        .fetch_one(conn)
        .await?;
        seq(latest)
    }

    async fn count_executions(
        conn: &mut SqliteConnection,
        agent: &str,
        impacts: &[Impact],
        since: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut query = sqlx::QueryBuilder::<Driver>::new(
            "SELECT COUNT(*) FROM decisions WHERE execution = 1 AND agent = ",
        );
        query.push_bind(agent);
        query.push(" AND at > ");
        query.push_bind(timestamp_text(since));
        query.push(" AND impact IN (");
        let mut names = query.separated(", ");
        for impact in impacts {
            names.push_bind(impact.name());
        }
        query.push(")");
        let (count,): (i64,) = query.build_query_as().fetch_one(conn).await?;
        seq(count)
    }

    async fn sample_after(
        conn: &mut SqliteConnection,
        agent: &str,
        seq: u64,
    ) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM evidence WHERE agent = ? AND seq > ?)",
            )
            .bind(agent)
            .bind(int(seq))
            .fetch_one(conn)
            .await?,
        )
    }

    async fn approvals_opened_after(
        conn: &mut SqliteConnection,
        after: u64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM approvals WHERE opened_seq > ? AND status IN ('pending', 'approved') AND used = 0",
        )
        .bind(int(after))
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn insert_records(
        conn: &mut SqliteConnection,
        records: &[LedgerRecord],
    ) -> Result<(), StoreError> {
        // Storage format 2 (`stored`): the payload compressed, the hashes
        // as bytes, the agent it names beside it.
        let bodies = records
            .iter()
            .map(|record| stored::encode_payload(&record.payload))
            .collect::<Result<Vec<_>, _>>()?;
        // SQLite binds at most 32,766 values per statement: 7 per record.
        for (chunk, bodies) in records.chunks(4_000).zip(bodies.chunks(4_000)) {
            let mut insert = sqlx::QueryBuilder::<Driver>::new(
                "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash, agent) ",
            );
            insert.push_values(chunk.iter().zip(bodies), |mut row, (record, body)| {
                row.push_bind(int(record.seq))
                    .push_bind(record.at.clone())
                    .push_bind(record.kind.clone())
                    .push_bind(body.clone())
                    .push_bind(stored::encode_digest(&record.prev_hash))
                    .push_bind(stored::encode_digest(&record.hash))
                    .push_bind(stored::agent_of(&record.payload));
            });
            insert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn apply(
        conn: &mut SqliteConnection,
        entries: &[(u64, &[Effect])],
    ) -> Result<(), Rejected> {
        apply::apply(conn, entries).await
    }

    async fn announce(_conn: &mut SqliteConnection, _head: u64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn appended_elsewhere(&self) {
        std::future::pending::<()>().await;
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
        read::load(&self.pool, horizon, build, visit).await
    }

    async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let rows = sqlx::query("SELECT id, phase, locked, phase_since FROM agents ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode::agent).collect()
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row =
            sqlx::query("SELECT hash, kind, subject, role, created_at FROM tokens WHERE hash = ?")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(decode::token).transpose()
    }

    async fn find_decision(&self, id: &str) -> Result<Option<DecisionRow>, StoreError> {
        let row = sqlx::query("SELECT id, seq, agent, action, outcome, impact, execution, blocked, at, reported FROM decisions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode::decision).transpose()
    }

    async fn execution_candidates(
        &self,
        agent: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<ExecutionCandidate>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT d.id, d.seq, d.agent, d.action, d.outcome, d.impact, d.execution, d.blocked, d.at, d.reported, ",
            bounded_payload!("l."),
            ",
                    CASE WHEN p.event_key IS NULL THEN 0 ELSE 1 END AS matched
             FROM decisions d
             JOIN ledger l ON l.seq = d.seq
             LEFT JOIN platform_events p ON p.decision_id = d.id
             WHERE d.agent = ? AND d.execution = 1 AND d.at >= ? AND d.at <= ?
             ORDER BY d.at LIMIT ?"
        ))
        .bind(agent)
        .bind(timestamp_text(from))
        .bind(timestamp_text(to))
        .bind(i64::from(limit))
        .fetch(&self.pool);
        decode::within_page_bytes(rows, decode::execution_candidate, |c| c.payload.len()).await
    }

    async fn find_platform_event(&self, key: &str) -> Result<Option<PlatformEventRow>, StoreError> {
        let row = sqlx::query(
            "SELECT event_key, decision_id, seq FROM platform_events WHERE event_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode::platform_event).transpose()
    }

    async fn platform_event_of(
        &self,
        decision_id: &str,
    ) -> Result<Option<PlatformEventRow>, StoreError> {
        let row = sqlx::query(
            "SELECT event_key, decision_id, seq FROM platform_events WHERE decision_id = ?",
        )
        .bind(decision_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode::platform_event).transpose()
    }

    async fn overview(&self, since: Timestamp) -> Result<Overview, StoreError> {
        console::overview(&self.pool, since).await
    }

    async fn find_session(&self, hash: &str) -> Result<Option<SessionRow>, StoreError> {
        console::find_session(&self.pool, hash).await
    }

    async fn open_sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        console::open_sessions(&self.pool).await
    }

    async fn touch_session(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        console::touch_session(&self.pool, id, at).await
    }

    async fn ledger_page(&self, filter: &LedgerFilter) -> Result<Vec<LedgerRecord>, StoreError> {
        console::ledger_page(&self.pool, filter).await
    }

    async fn ungraded_recommendations(
        &self,
        since: Timestamp,
        per_agent: u32,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        console::ungraded_recommendations(&self.pool, since, per_agent, limit).await
    }

    async fn evidence_since(
        &self,
        agent: &str,
        since: Timestamp,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        console::evidence_since(&self.pool, agent, since).await
    }

    async fn notification_records(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        console::notification_records(&self.pool, after, limit).await
    }

    async fn lease_cursor(
        &self,
        webhook: &str,
        holder: &str,
        until: Timestamp,
        start: u64,
    ) -> Result<Option<u64>, StoreError> {
        console::lease_cursor(&self.pool, webhook, holder, until, start).await
    }

    async fn advance_cursor(
        &self,
        webhook: &str,
        holder: &str,
        seq: u64,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        console::advance_cursor(&self.pool, webhook, holder, seq, until).await
    }

    async fn forget_cursors_except(&self, keep: &[String]) -> Result<u64, StoreError> {
        console::forget_cursors_except(&self.pool, keep).await
    }

    async fn find_approval(&self, id: &str) -> Result<Option<ApprovalState>, StoreError> {
        read::find_approval(&self.pool, id).await
    }

    async fn kill_switch_history(
        &self,
        since: Timestamp,
    ) -> Result<Vec<KillSwitchHistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, scope, target, reason, tripped_by, tripped_at, tripped_seq, reset_by, reset_at, reset_seq
             FROM kill_switches WHERE tripped_at >= ?1 OR reset_at IS NULL OR reset_at >= ?1
             ORDER BY tripped_seq DESC LIMIT 1000",
        )
        .bind(timestamp_text(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode::kill_switch_history).collect()
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<LedgerRecord>, StoreError> {
        decode::ledger_page(
            sqlx::query(concat!(
                "SELECT ",
                record_columns!(),
                " FROM ledger
                 WHERE seq > ? AND (? IS NULL OR kind = ?) AND (? IS NULL OR COALESCE(agent, CASE WHEN typeof(payload) = 'text' THEN json_extract(payload, '$.agent') END) = ?)
                 ORDER BY seq LIMIT ?"
            ))
            .bind(int(query.after))
            .bind(&query.kind)
            .bind(&query.kind)
            .bind(&query.agent)
            .bind(&query.agent)
            .bind(i64::from(query.limit))
            .fetch(&self.pool),
        )
        .await
    }

    async fn page(&self, after: u64, limit: u32) -> Result<Vec<LedgerRecord>, StoreError> {
        decode::ledger_page(
            sqlx::query(concat!(
                "SELECT ",
                record_columns!(),
                " FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?"
            ))
            .bind(int(after))
            .bind(i64::from(limit))
            .fetch(&self.pool),
        )
        .await
    }

    type VerifyPage = packed::PackedPage;

    async fn verify_pages_sound(&self) -> Result<bool, StoreError> {
        packed::sound(&self.pool).await
    }

    async fn outside_chain(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT quote(seq) FROM ledger WHERE seq IS NULL OR seq <= 0 ORDER BY seq LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn repeated_number(&self, through: u64) -> Result<Option<u64>, StoreError> {
        // Sound, `seq` is the rowid: unique.
        if packed::sound(&self.pool).await? {
            return Ok(None);
        }
        let number: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM ledger WHERE seq BETWEEN 1 AND ?
             GROUP BY seq HAVING count(*) > 1 ORDER BY seq LIMIT 1",
        )
        .bind(int(through))
        .fetch_optional(&self.pool)
        .await?;
        number.map(seq).transpose()
    }

    async fn verify_page(&self, after: u64, limit: u32) -> Result<packed::PackedPage, StoreError> {
        packed::read(&self.pool, after, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        // A fresh connection: one that failed a write while the file was
        // unwritable can fail the next one too, after it is writable again.
        let mut conn = SqliteConnection::connect_with(&self.options).await?;
        sqlx::query("UPDATE health_probe SET at = ? WHERE id = 1")
            .bind(timestamp_text(Timestamp::now()))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}
