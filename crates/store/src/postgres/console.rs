//! PostgreSQL reads and the one plain write of the operator console.

use clearance_engine::ledger::LedgerRecord;
use jiff::Timestamp;
use sqlx::{AssertSqlSafe, PgPool, Postgres as Driver};

use crate::{
    StoreError,
    codec::{int, timestamp_text},
    console::{self, Dialect, day_of},
    decode::{self, bounded, max_field, record_columns},
    rows::{EvidenceRow, LedgerFilter, Overview, SessionRow},
};

const DIALECT: Dialect = Dialect {
    agent_of_payload: "agent",
    record_columns: record_columns!(),
    joined_record_columns: record_columns!(l),
};

const SESSION_COLUMNS: &str =
    "id, hash, operator, role, created_at, expires_at, last_seen, closed_at, token_sha256";

pub(super) async fn overview(pool: &PgPool, since: Timestamp) -> Result<Overview, StoreError> {
    let day = day_of(since);
    let decisions = sqlx::query(
        "SELECT day, outcome, blocked, decisions FROM decision_days WHERE day >= $1 ORDER BY day, outcome, blocked",
    )
    .bind(&day)
    .fetch_all(pool)
    .await?;
    let recoveries = sqlx::query(
        "SELECT day, failures, recovered, recovery_seconds FROM recovery_days WHERE day >= $1 ORDER BY day",
    )
    .bind(&day)
    .fetch_all(pool)
    .await?;
    Ok(Overview {
        decisions: decisions
            .iter()
            .map(decode::decision_day)
            .collect::<Result<_, _>>()?,
        recoveries: recoveries
            .iter()
            .map(decode::recovery_day)
            .collect::<Result<_, _>>()?,
    })
}

pub(super) async fn find_session(
    pool: &PgPool,
    hash: &str,
) -> Result<Option<SessionRow>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE hash = $1"
    )))
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(decode::session).transpose()
}

pub(super) async fn open_sessions(pool: &PgPool) -> Result<Vec<SessionRow>, StoreError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE closed_at IS NULL ORDER BY created_at DESC LIMIT 1000"
    )))
    .fetch_all(pool)
    .await?;
    rows.iter().map(decode::session).collect()
}

pub(super) async fn touch_session(
    pool: &PgPool,
    id: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    let at = timestamp_text(at);
    sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id = $2 AND last_seen < $1")
        .bind(&at)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn ledger_page(
    pool: &PgPool,
    filter: &LedgerFilter,
) -> Result<Vec<LedgerRecord>, StoreError> {
    let (head,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM ledger")
        .fetch_one(pool)
        .await?;
    let seqs = console::seq_window(filter, crate::codec::seq(head)?, async |seq| {
        let at: Option<(Option<String>,)> = sqlx::query_as(concat!(
            "SELECT ",
            bounded!("", "at", max_field!()),
            " FROM ledger WHERE seq = $1"
        ))
        .bind(int(seq))
        .fetch_optional(pool)
        .await?;
        at.map(|(at,)| decode::bounded_field(at, "at")).transpose()
    })
    .await?;
    let mut query = console::ledger_page::<Driver>(filter, &DIALECT, seqs);
    super::within_page_bytes(
        pool,
        query.build(),
        decode::ledger_record,
        decode::record_bytes,
    )
    .await
}

pub(super) async fn ungraded_recommendations(
    pool: &PgPool,
    since: Timestamp,
    per_agent: u32,
    limit: u32,
) -> Result<Vec<LedgerRecord>, StoreError> {
    let query = sqlx::query(
        concat!(
            "SELECT ",
            record_columns!(l),
            " FROM (
                 SELECT d.seq, ROW_NUMBER() OVER (PARTITION BY d.agent ORDER BY d.seq DESC) AS nth
                 FROM decisions d
                 WHERE d.outcome = 'recommend' AND d.at >= $1
                   AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.agent = d.agent AND e.kind = 'recommendation' AND e.incident_id = d.id)
             ) w JOIN ledger l ON l.seq = w.seq
             WHERE w.nth <= $2
             ORDER BY w.nth, w.seq DESC LIMIT $3"
        ),
    )
    .bind(timestamp_text(since))
    .bind(i64::from(per_agent))
    .bind(i64::from(limit));
    super::within_page_bytes(pool, query, decode::ledger_record, decode::record_bytes).await
}

pub(super) async fn evidence_since(
    pool: &PgPool,
    agent: &str,
    since: Timestamp,
) -> Result<Vec<EvidenceRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT agent, incident_id, at, sample FROM evidence WHERE agent = $1 AND at >= $2 ORDER BY at LIMIT 100000",
    )
    .bind(agent)
    .bind(timestamp_text(since))
    .fetch_all(pool)
    .await?;
    rows.iter().map(decode::evidence).collect()
}

pub(super) async fn notification_records(
    pool: &PgPool,
    after: u64,
    limit: u32,
) -> Result<Vec<LedgerRecord>, StoreError> {
    let query = sqlx::query(
        concat!(
            "SELECT ",
            record_columns!(),
            " FROM ledger
             WHERE seq > $1 AND (kind IN ('phase.demoted', 'kill_switch.tripped')
                                 OR seq IN (SELECT seq FROM decisions WHERE outcome = 'pending' AND seq > $1))
             ORDER BY seq LIMIT $2"
        ),
    )
    .bind(int(after))
    .bind(i64::from(limit));
    super::within_page_bytes(pool, query, decode::ledger_record, decode::record_bytes).await
}

pub(super) async fn lease_cursor(
    pool: &PgPool,
    webhook: &str,
    holder: &str,
    until: Timestamp,
    start: u64,
) -> Result<Option<u64>, StoreError> {
    let now = timestamp_text(Timestamp::now());
    sqlx::query("INSERT INTO notify_cursors (webhook, seq) VALUES ($1, $2) ON CONFLICT (webhook) DO NOTHING")
        .bind(webhook)
        .bind(int(start))
        .execute(pool)
        .await?;
    let leased = sqlx::query(
        "UPDATE notify_cursors SET leased_by = $1, lease_until = $2
         WHERE webhook = $3 AND (leased_by IS NULL OR leased_by = $1 OR lease_until < $4)",
    )
    .bind(holder)
    .bind(timestamp_text(until))
    .bind(webhook)
    .bind(now)
    .execute(pool)
    .await?;
    if leased.rows_affected() == 0 {
        return Ok(None);
    }
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM notify_cursors WHERE webhook = $1")
        .bind(webhook)
        .fetch_one(pool)
        .await?;
    Ok(Some(crate::codec::seq(seq)?))
}

pub(super) async fn advance_cursor(
    pool: &PgPool,
    webhook: &str,
    holder: &str,
    seq: u64,
    until: Timestamp,
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE notify_cursors SET seq = $1, lease_until = $4 WHERE webhook = $2 AND leased_by = $3 AND seq <= $1",
    )
    .bind(int(seq))
    .bind(webhook)
    .bind(holder)
    .bind(timestamp_text(until))
    .execute(pool)
    .await?;
    Ok(moved.rows_affected() == 1)
}

pub(super) async fn forget_cursors_except(
    pool: &PgPool,
    keep: &[String],
) -> Result<u64, StoreError> {
    let now = timestamp_text(Timestamp::now());
    let names: Vec<(String,)> = sqlx::query_as("SELECT webhook FROM notify_cursors")
        .fetch_all(pool)
        .await?;
    let mut forgotten = 0;
    for (name,) in names.iter().filter(|(name,)| !keep.contains(name)) {
        // A lease still running: an instance on an older or newer bundle
        // delivers it right now.
        let gone = sqlx::query(
            "DELETE FROM notify_cursors WHERE webhook = $1 AND (lease_until IS NULL OR lease_until < $2)",
        )
        .bind(name)
        .bind(&now)
        .execute(pool)
        .await?;
        forgotten += gone.rows_affected();
    }
    Ok(forgotten)
}
