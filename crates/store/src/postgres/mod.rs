//! [`Postgres`]: the shared backend, for several gateway instances on one
//! database. The ledger stays one chain: every append takes a
//! transaction-scoped advisory lock before reading the head, so appends are
//! serialised across instances while each instance still group-commits.
//! Each commit announces the new head with `NOTIFY`; a listener task wakes
//! the writer of every other instance, which then applies the records (the
//! writer also polls, in case a notification is lost across a reconnect).

mod apply;
mod console;
mod read;

use std::{str::FromStr, sync::Arc, time::Duration};

use clearance_engine::{
    Impact,
    ledger::{Digest32, LedgerRecord},
};
use jiff::Timestamp;
use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};
use tokio::{sync::Notify, task::JoinHandle};

use crate::{
    Database, Effect, StoreError,
    backend::{Backend, Rejected},
    codec::{digest, int, seq, timestamp_text},
    database::empty_head,
    decode::{self, bounded, bounded_payload, columns_for, max_hash, max_payload, record_columns},
    rows::{
        AgentRow, ApprovalState, AuditQuery, DecisionRow, EvidenceRow, ExecutionCandidate,
        KillSwitchHistoryRow, LedgerFilter, Overview, PlatformEventRow, SessionRow, StoredState,
        TokenRow,
    },
    stored,
};

columns_for!(sqlx::postgres::PgRow, payload_text, digest_hex);

/// The rows `query` returns, decoded within the bytes of a page
/// ([`decode::within_page_bytes`]), on a connection of their own. A page
/// cut short, or ended by a row that does not decode, leaves rows unread
/// on the connection, which the pool would drain before handing it out
/// again — as long as reading them, and a page of bombs is gigabytes — so
/// that connection is closed instead.
pub(super) async fn within_page_bytes<T>(
    pool: &PgPool,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    decode: impl Fn(&sqlx::postgres::PgRow) -> Result<T, StoreError>,
    bytes_of: impl Fn(&T) -> usize,
) -> Result<Vec<T>, StoreError> {
    use sqlx::Executor as _;
    let mut conn = pool.acquire().await?;
    let read = decode::within_page_bytes(conn.fetch(query), decode, &bytes_of).await;
    let whole = read
        .as_ref()
        .is_ok_and(|items| !decode::reached_page_bytes(items, &bytes_of));
    if !whole {
        conn.close_on_drop();
    }
    read
}

/// PostgreSQL keeps payloads as text (its TOAST compresses large ones);
/// one past the bound comes as NULL ([`record_columns!`]).
fn payload_text(row: &sqlx::postgres::PgRow, column: &str) -> Result<String, StoreError> {
    let payload: Option<String> = sqlx::Row::try_get(row, column)?;
    payload.ok_or_else(stored::past_the_bound)
}

/// The `agent` column of each record: the agent its payload names, as the
/// SQLite file keeps it, but for one holding a control character (no
/// agent id does, and a NUL, which no TEXT can hold, would fail the
/// batch). Migration 0009's `clearance_agent_of` reads older records so.
pub(super) fn agents_of(records: &[LedgerRecord]) -> Vec<Option<String>> {
    records
        .iter()
        .map(|r| stored::agent_of(&r.payload).filter(|agent| !agent.chars().any(char::is_control)))
        .collect()
}

/// PostgreSQL keeps hashes as hex.
fn digest_hex(row: &sqlx::postgres::PgRow, column: &str) -> Result<Digest32, StoreError> {
    bounded_digest(sqlx::Row::try_get(row, column)?, column)
}

/// A hash `column` read bounded (`record_columns!`): NULL is one past the
/// bound.
fn bounded_digest(hex: Option<String>, column: &str) -> Result<Digest32, StoreError> {
    digest(&hex.ok_or_else(|| stored::field_past_the_bound(column, stored::MAX_HASH))?)
}

/// The shared store.
pub type PostgresStore = Database<Postgres>;

/// The channel every instance listens on.
const CHANNEL: &str = "clearance_ledger";

/// The advisory lock that serialises appends: `clearanc` in ASCII.
const LEDGER_LOCK: i64 = 0x636c_6561_7261_6e63;

/// The PostgreSQL backend: a read pool, the writer's connection options,
/// and the listener that hears other instances.
pub struct Postgres {
    pool: PgPool,
    options: PgConnectOptions,
    appended: Arc<Notify>,
    listener: JoinHandle<()>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// clearance's PostgreSQL schema, in the order it is applied.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresStore {
    /// Connects to `url`, applies the migrations (instances starting
    /// together take turns: sqlx locks the migration table) and starts the
    /// ledger writer on the current runtime.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let (pool, options) = pool(url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(start(pool, options))
    }

    /// Connects to `url` as [`PostgresStore::connect`] does, but only to a
    /// database that already holds clearance's schema, whole, and changes
    /// no schema: the commands that read an installation or add to one
    /// (`audit`, `replay`, `token issue`, `reconcile`) must not start a
    /// second installation on a mistyped URL, nor need the rights to (an
    /// auditor's read-only role).
    ///
    /// # Errors
    /// When the database cannot be reached, holds no clearance schema, or
    /// one older, newer or other than this build's.
    pub async fn connect_existing(url: &str) -> Result<PostgresStore, StoreError> {
        let (pool, options) = pool(url).await?;
        schema_current(&pool).await?;
        Ok(start(pool, options))
    }
}

async fn pool(url: &str) -> Result<(PgPool, PgConnectOptions), StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await?;
    Ok((pool, options))
}

fn start(pool: PgPool, options: PgConnectOptions) -> PostgresStore {
    let appended = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(pool.clone(), appended.clone()));
    Database::start(Postgres {
        pool,
        options,
        appended,
        listener,
    })
}

/// Whether the database holds exactly the migrations this build knows,
/// each applied whole and as this build wrote it; names what is missing,
/// different or unknown.
async fn schema_current(pool: &PgPool) -> Result<(), StoreError> {
    let (migrated,): (bool,) = sqlx::query_as("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !migrated {
        return Err(StoreError::Unavailable(
            "no clearance installation in this database (it holds no clearance schema): check the URL, or start `clearance serve` on it first".into(),
        ));
    }
    let applied: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(pool)
    .await?;
    let checksum_of = |version| {
        applied
            .iter()
            .find(|(applied, _)| *applied == version)
            .map(|(_, checksum)| checksum.as_slice())
    };
    for migration in MIGRATOR.iter() {
        match checksum_of(migration.version) {
            None => {
                return Err(StoreError::Unavailable(format!(
                    "this database's clearance schema is older than this clearance (migration {} `{}` not applied): start this version's `clearance serve` on it, which migrates it",
                    migration.version, migration.description
                )));
            }
            // What `serve` would refuse too (sqlx's migrator compares the
            // same checksums): the tables may not be what this build reads.
            Some(checksum) if checksum != &*migration.checksum => {
                return Err(StoreError::Unavailable(format!(
                    "this database's migration {} `{}` is not this clearance's (its checksum differs): it was migrated by a different build of clearance; use that build",
                    migration.version, migration.description
                )));
            }
            Some(_) => {}
        }
    }
    if let Some((unknown, _)) = applied.iter().find(|(v, _)| !MIGRATOR.version_exists(*v)) {
        return Err(StoreError::Unavailable(format!(
            "this database's clearance schema is newer than this clearance (migration {unknown} is unknown to it): use the clearance that migrated it"
        )));
    }
    Ok(())
}

/// Wakes the writer whenever another instance announces an append. Owns
/// its connection, so that waiting for the next one is never cancelled
/// half-way; reconnects on its own after an outage.
async fn listen(pool: PgPool, appended: Arc<Notify>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other instances' appends; polling meanwhile");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "LISTEN failed; polling meanwhile");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => appended.notify_one(),
                // The connection dropped: what was announced meanwhile is
                // lost, so look now, then listen again.
                Ok(None) => appended.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, "listening for appends failed; reconnecting");
                    appended.notify_one();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

async fn exec(conn: &mut PgConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

impl Postgres {
    /// Ledger records as `query` selects them, given `after` and `limit`
    /// as `$1` and `$2`, decoded as they stream in, within a page's bound
    /// in bytes ([`decode::ledger_page`]).
    async fn records(
        &self,
        query: &'static str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        within_page_bytes(
            &self.pool,
            sqlx::query(query).bind(int(after)).bind(i64::from(limit)),
            decode::ledger_record,
            decode::record_bytes,
        )
        .await
    }
}

/// Whether an index keeps the ledger's numbers unique: one unique, valid
/// index on `seq` alone, over every row (not partial, no expression).
const SEQ_UNIQUE: &str = "
SELECT EXISTS (
    SELECT 1 FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = 'ledger'::regclass
      AND i.indisunique AND i.indisvalid AND i.indisready AND i.indislive
      AND i.indnkeyatts = 1
      AND i.indpred IS NULL AND i.indexprs IS NULL
      AND a.attname = 'seq'
)";

impl Backend for Postgres {
    type Conn = PgConnection;

    const NAME: &'static str = "postgres";

    async fn connect_writer(&self) -> Result<PgConnection, StoreError> {
        Ok(PgConnection::connect_with(&self.options).await?)
    }

    async fn begin_exclusive(conn: &mut PgConnection) -> Result<(), StoreError> {
        // One round trip: the simple protocol takes both statements at once.
        // READ COMMITTED whatever the server's default: under REPEATABLE
        // READ the snapshot would be taken before the lock's wait, and the
        // head read after it would be stale.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({LEDGER_LOCK})"
        )))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn begin_and_read_head(
        conn: &mut PgConnection,
    ) -> Result<(u64, Digest32, u64), StoreError> {
        use sqlx::Row as _;
        // One round trip: the simple protocol takes every statement at
        // once; the rows are the last statement's.
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({LEDGER_LOCK});
             SELECT h.seq, h.hash,
                    (SELECT COALESCE(MAX(tripped_seq), 0)::BIGINT FROM kill_switches WHERE reset_at IS NULL) AS trip
             FROM (SELECT 1) one LEFT JOIN (SELECT seq, {hash} FROM ledger ORDER BY seq DESC LIMIT 1) h ON TRUE",
            hash = bounded!("", "hash", max_hash!()),
        )))
        .fetch_all(&mut *conn)
        .await?;
        let row = rows
            .last()
            .ok_or_else(|| StoreError::corrupt("the ledger head query returned no row"))?;
        let n: Option<i64> = row.try_get("seq")?;
        let hash: Option<String> = row.try_get("hash")?;
        let trip: i64 = row.try_get("trip")?;
        let (seq_, hash) = match n {
            Some(n) => (seq(n)?, bounded_digest(hash, "hash")?),
            None => empty_head(),
        };
        Ok((seq_, hash, seq(trip)?))
    }

    async fn write(
        conn: &mut PgConnection,
        records: &[LedgerRecord],
        entries: &[(u64, &[Effect])],
    ) -> Result<(), Rejected> {
        apply::write(conn, records, entries).await
    }

    async fn finish(conn: &mut PgConnection, head: u64) -> Result<(), StoreError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SELECT pg_notify('{CHANNEL}', '{head}'); COMMIT"
        )))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn commit(conn: &mut PgConnection) -> Result<(), StoreError> {
        exec(conn, "COMMIT").await
    }

    async fn rollback(conn: &mut PgConnection) -> Result<(), StoreError> {
        exec(conn, "ROLLBACK").await
    }

    async fn head(conn: &mut PgConnection) -> Result<(u64, Digest32), StoreError> {
        let row: Option<(i64, Option<String>)> = sqlx::query_as(concat!(
            "SELECT seq, ",
            bounded!("", "hash", max_hash!()),
            " FROM ledger ORDER BY seq DESC LIMIT 1"
        ))
        .fetch_optional(conn)
        .await?;
        match row {
            None => Ok(empty_head()),
            Some((n, hash)) => Ok((seq(n)?, bounded_digest(hash, "hash")?)),
        }
    }

    async fn records_after(
        conn: &mut PgConnection,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        // Cut in SQL where the payloads pass 64 MiB (their sizes read from
        // headers): a page cut by the reader would leave the rest of the
        // rows on the writer's own connection, read and dropped before its
        // next query — the rest of a page of bombs, page after page.
        decode::ledger_page(
            sqlx::query(concat!(
                "SELECT seq, at, kind, payload, prev_hash, hash FROM (
                     SELECT ",
                record_columns!(),
                ", sum(octet_length(ledger.payload)) OVER (ORDER BY seq) - octet_length(ledger.payload) AS before
                     FROM ledger WHERE seq > $1 ORDER BY seq LIMIT $2
                 ) page WHERE before < ",
                max_payload!(),
                " ORDER BY seq"
            ))
            .bind(int(after))
            .bind(i64::from(limit))
            .fetch(conn),
        )
        .await
    }

    async fn latest_trip(conn: &mut PgConnection) -> Result<u64, StoreError> {
        let (latest,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(tripped_seq), 0)::BIGINT FROM kill_switches WHERE reset_at IS NULL",
        )
        .fetch_one(conn)
        .await?;
        seq(latest)
    }

    async fn count_executions(
        conn: &mut PgConnection,
        agent: &str,
        impacts: &[Impact],
        since: Timestamp,
    ) -> Result<u64, StoreError> {
        let names: Vec<&str> = impacts.iter().map(|i| i.name()).collect();
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM decisions WHERE execution AND agent = $1 AND at > $2 AND impact = ANY($3)",
        )
        .bind(agent)
        .bind(timestamp_text(since))
        .bind(names)
        .fetch_one(conn)
        .await?;
        seq(count)
    }

    async fn sample_after(
        conn: &mut PgConnection,
        agent: &str,
        seq: u64,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM evidence WHERE agent = $1 AND seq > $2)",
        )
        .bind(agent)
        .bind(int(seq))
        .fetch_one(conn)
        .await?)
    }

    async fn approvals_opened_after(
        conn: &mut PgConnection,
        after: u64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM approvals WHERE opened_seq > $1 AND status IN ('pending', 'approved') AND NOT used",
        )
        .bind(int(after))
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn insert_records(
        conn: &mut PgConnection,
        records: &[LedgerRecord],
    ) -> Result<(), StoreError> {
        let seqs: Vec<i64> = records.iter().map(|r| int(r.seq)).collect();
        let ats: Vec<&str> = records.iter().map(|r| r.at.as_str()).collect();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        let payloads: Vec<&str> = records.iter().map(|r| r.payload.as_str()).collect();
        let prevs: Vec<String> = records.iter().map(|r| r.prev_hash.to_hex()).collect();
        let hashes: Vec<String> = records.iter().map(|r| r.hash.to_hex()).collect();
        let agents = agents_of(records);
        sqlx::query(
            "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash, agent)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[])",
        )
        .bind(seqs)
        .bind(ats)
        .bind(kinds)
        .bind(payloads)
        .bind(prevs)
        .bind(hashes)
        .bind(agents)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn apply(conn: &mut PgConnection, entries: &[(u64, &[Effect])]) -> Result<(), Rejected> {
        apply::apply(conn, entries).await
    }

    async fn announce(conn: &mut PgConnection, head: u64) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(head.to_string())
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn appended_elsewhere(&self) {
        self.appended.notified().await;
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
            sqlx::query("SELECT hash, kind, subject, role, created_at FROM tokens WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(decode::token).transpose()
    }

    async fn find_decision(&self, id: &str) -> Result<Option<DecisionRow>, StoreError> {
        let row = sqlx::query("SELECT id, seq, agent, action, outcome, impact, execution, blocked, at, reported FROM decisions WHERE id = $1")
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
        let query = sqlx::query(concat!(
            "SELECT d.id, d.seq, d.agent, d.action, d.outcome, d.impact, d.execution, d.blocked, d.at, d.reported, ",
            bounded_payload!("l."),
            ",
                    CAST(CASE WHEN p.event_key IS NULL THEN 0 ELSE 1 END AS BIGINT) AS matched
             FROM decisions d
             JOIN ledger l ON l.seq = d.seq
             LEFT JOIN platform_events p ON p.decision_id = d.id
             WHERE d.agent = $1 AND d.execution = TRUE AND d.at >= $2 AND d.at <= $3
             ORDER BY d.at LIMIT $4"
        ))
        .bind(agent)
        .bind(timestamp_text(from))
        .bind(timestamp_text(to))
        .bind(i64::from(limit));
        within_page_bytes(&self.pool, query, decode::execution_candidate, |c| {
            c.payload.len()
        })
        .await
    }

    async fn find_platform_event(&self, key: &str) -> Result<Option<PlatformEventRow>, StoreError> {
        let row = sqlx::query(
            "SELECT event_key, decision_id, seq FROM platform_events WHERE event_key = $1",
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
            "SELECT event_key, decision_id, seq FROM platform_events WHERE decision_id = $1",
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
             FROM kill_switches WHERE tripped_at >= $1 OR reset_at IS NULL OR reset_at >= $1
             ORDER BY tripped_seq DESC LIMIT 1000",
        )
        .bind(timestamp_text(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode::kill_switch_history).collect()
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<LedgerRecord>, StoreError> {
        within_page_bytes(
            &self.pool,
            sqlx::query(
                concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM ledger
                     WHERE seq > $1 AND ($2::TEXT IS NULL OR kind = $2) AND ($3::TEXT IS NULL OR agent = $3)
                     ORDER BY seq LIMIT $4"
                ),
            )
            .bind(int(query.after))
            .bind(&query.kind)
            .bind(&query.agent)
            .bind(i64::from(query.limit)),
            decode::ledger_record,
            decode::record_bytes,
        )
        .await
    }

    async fn page(&self, after: u64, limit: u32) -> Result<Vec<LedgerRecord>, StoreError> {
        self.records(
            concat!(
                "SELECT ",
                record_columns!(),
                " FROM ledger WHERE seq > $1 ORDER BY seq LIMIT $2"
            ),
            after,
            limit,
        )
        .await
    }

    // Rows arrive decoded; hashing them is the work verification spreads.
    type VerifyPage = Vec<LedgerRecord>;

    // The row reader's decoder, by number: producing rows is most of what
    // verifying costs here, and pages read at once are each produced by a
    // server process of their own. Every row numbered in the range comes,
    // so a record inserted twice (only possible with the primary key
    // dropped) is a break even where `page`, reading on after the last
    // record it read, would step over its copy.
    // Within the bound in bytes `page` keeps: TOAST keeps a payload of
    // 64 MiB of one byte in a few hundred KiB, so a page of them read whole
    // would be the decompression bomb SQLite's frames are. A page cut
    // short hands on to the row reader, as a short page does.
    async fn verify_page(&self, after: u64, limit: u32) -> Result<Vec<LedgerRecord>, StoreError> {
        self.records(
            concat!(
                "SELECT ",
                record_columns!(),
                " FROM ledger WHERE seq > $1 AND seq <= $1 + $2 ORDER BY seq"
            ),
            after,
            limit,
        )
        .await
    }

    async fn outside_chain(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(seq::TEXT, 'NULL') FROM ledger
             WHERE seq IS NULL OR seq <= 0 ORDER BY seq NULLS FIRST LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn repeated_number(&self, through: u64) -> Result<Option<u64>, StoreError> {
        let unique: bool = sqlx::query_scalar(SEQ_UNIQUE).fetch_one(&self.pool).await?;
        if unique {
            return Ok(None);
        }
        let number: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM ledger WHERE seq BETWEEN 1 AND $1
             GROUP BY seq HAVING count(*) > 1 ORDER BY seq LIMIT 1",
        )
        .bind(int(through))
        .fetch_optional(&self.pool)
        .await?;
        number.map(seq).transpose()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE health_probe SET at = $1 WHERE id = 1")
            .bind(timestamp_text(Timestamp::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clearance_testkit::TestDb;
    use sqlx::{Connection, PgConnection};

    use super::SEQ_UNIQUE;

    async fn unique(conn: &mut PgConnection) -> bool {
        sqlx::query_scalar(SEQ_UNIQUE)
            .fetch_one(conn)
            .await
            .unwrap()
    }

    async fn run(conn: &mut PgConnection, sql: &'static str) {
        sqlx::raw_sql(sql).execute(conn).await.unwrap();
    }

    /// Verify skips its search for a number two rows share only where this
    /// says an index rules one out: it must say so of the schema as
    /// migrated, and of no index that leaves a second row possible.
    #[tokio::test]
    async fn only_an_index_that_keeps_every_number_unique_counts() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        drop(super::PostgresStore::connect(&db.url).await.unwrap());
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        assert!(unique(&mut conn).await, "the primary key, as migrated");

        run(&mut conn, "ALTER TABLE ledger DROP CONSTRAINT ledger_pkey").await;
        assert!(!unique(&mut conn).await, "no key");
        for (index, what) in [
            ("CREATE INDEX tried ON ledger (seq)", "not unique"),
            (
                "CREATE UNIQUE INDEX tried ON ledger (seq) WHERE seq > 1",
                "partial",
            ),
            (
                "CREATE UNIQUE INDEX tried ON ledger (seq, at)",
                "two columns",
            ),
            (
                "CREATE UNIQUE INDEX tried ON ledger ((seq + 0))",
                "an expression",
            ),
        ] {
            run(&mut conn, index).await;
            assert!(!unique(&mut conn).await, "{what}");
            run(&mut conn, "DROP INDEX tried").await;
        }

        // A unique index built over rows that already share a number fails
        // and, built concurrently, is left behind invalid.
        run(
            &mut conn,
            "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash)
             VALUES (1, 'a', 'k', '{}', 'p', 'h'), (1, 'a', 'k', '{}', 'p', 'h')",
        )
        .await;
        let refused =
            sqlx::raw_sql("CREATE UNIQUE INDEX CONCURRENTLY left_invalid ON ledger (seq)")
                .execute(&mut conn)
                .await;
        assert!(refused.is_err(), "two rows share 1");
        assert!(!unique(&mut conn).await, "an invalid index");

        run(&mut conn, "DELETE FROM ledger").await;
        run(&mut conn, "CREATE UNIQUE INDEX restored ON ledger (seq)").await;
        assert!(unique(&mut conn).await, "a unique index on seq alone");
    }
}
