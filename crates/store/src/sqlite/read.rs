//! SQLite reads that take more than one statement: the start-up snapshot
//! (one read transaction, so that every table and the ledger head agree)
//! and an approval with its votes.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::{Sqlite as Driver, SqlitePool, Transaction};

use clearance_engine::facts::ApprovalStatus;

use crate::{
    StoreError,
    codec::{approval_status, seq, timestamp_text},
    decode::{self, Columns as _},
    rows::{ApprovalRow, ApprovalState, ApprovalVoid, EvidenceRow, PromotionRow, StoredState},
};

pub(super) async fn load<T, Build, Visit>(
    pool: &SqlitePool,
    horizon: Timestamp,
    build: Build,
    mut visit: Visit,
) -> Result<T, StoreError>
where
    T: Send,
    Build: FnOnce(StoredState) -> T + Send,
    Visit: FnMut(&mut T, EvidenceRow) -> Result<(), StoreError> + Send,
{
    use futures::TryStreamExt as _;
    // A deferred transaction: its snapshot is taken at the first read and
    // holds for every read after it.
    let mut tx = pool.begin().await?;
    let (as_of,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM ledger")
        .fetch_one(&mut *tx)
        .await?;
    let agents = sqlx::query("SELECT id, phase, locked, phase_since FROM agents ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    let approvals = open_approvals(&mut tx).await?;
    let switches = sqlx::query("SELECT id, scope, target, reason, tripped_by, tripped_at FROM kill_switches WHERE reset_at IS NULL ORDER BY tripped_seq")
        .fetch_all(&mut *tx)
        .await?;
    let simulations = sqlx::query(
        "SELECT plan_id, branches, survived, produced_at, steps FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY plan_id ORDER BY produced_at DESC, id DESC) AS newest
           FROM simulations) WHERE newest = 1 ORDER BY plan_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let tests = sqlx::query(
        "SELECT playbook, passed, tested_at, duration_ms FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY playbook ORDER BY tested_at DESC, id DESC) AS newest
           FROM rollback_tests) WHERE newest = 1 ORDER BY playbook",
    )
    .fetch_all(&mut *tx)
    .await?;
    let executions = sqlx::query(
        "SELECT agent, impact, at FROM decisions WHERE execution = 1 AND at >= ? ORDER BY at",
    )
    .bind(timestamp_text(horizon))
    .fetch_all(&mut *tx)
    .await?;
    let promotions = open_promotions(&mut tx).await?;
    let stored = StoredState {
        as_of: seq(as_of)?,
        agents: agents.iter().map(decode::agent).collect::<Result<_, _>>()?,
        approvals,
        kill_switches: switches
            .iter()
            .map(decode::kill_switch)
            .collect::<Result<_, _>>()?,
        simulations: simulations
            .iter()
            .map(decode::simulation)
            .collect::<Result<_, _>>()?,
        rollback_tests: tests
            .iter()
            .map(decode::rollback_test)
            .collect::<Result<_, _>>()?,
        executions: executions
            .iter()
            .map(decode::execution)
            .collect::<Result<_, _>>()?,
        promotions,
    };
    let mut state = build(stored);
    {
        let mut rows = sqlx::query(
            "SELECT e.agent, e.incident_id, e.at, e.sample FROM evidence e LEFT JOIN agents a ON a.id = e.agent
             WHERE e.at >= COALESCE(a.phase_since, '') ORDER BY e.at, e.id",
        )
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            visit(&mut state, decode::evidence(&row)?)?;
        }
    }
    tx.commit().await?;
    Ok(state)
}

async fn open_approvals(
    tx: &mut Transaction<'static, Driver>,
) -> Result<Vec<ApprovalRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, agent, request_hash, request, status, created_at, expires_at, used, required, rule
         FROM approvals WHERE status IN ('pending', 'approved') AND used = 0 ORDER BY opened_seq",
    )
    .fetch_all(&mut **tx)
    .await?;
    let votes: Vec<(String, String)> = sqlx::query_as(
        "SELECT v.approval_id, v.operator FROM approval_votes v JOIN approvals a ON a.id = v.approval_id
         WHERE a.status IN ('pending', 'approved') AND a.used = 0 ORDER BY v.id",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut approvals: Vec<ApprovalRow> = rows
        .iter()
        .map(decode::approval)
        .collect::<Result<_, _>>()?;
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for (id, operator) in votes {
        by_id.entry(id).or_default().push(operator);
    }
    for row in &mut approvals {
        row.approval.approvers = by_id.remove(&row.approval.id).unwrap_or_default();
    }
    Ok(approvals)
}

async fn open_promotions(
    tx: &mut Transaction<'static, Driver>,
) -> Result<Vec<PromotionRow>, StoreError> {
    let rows = sqlx::query("SELECT id, agent, from_phase, to_phase, opened_by, opened_at FROM promotions WHERE status = 'open' ORDER BY opened_at, id")
        .fetch_all(&mut **tx)
        .await?;
    let signoffs: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.promotion_id, s.operator FROM promotion_signoffs s JOIN promotions p ON p.id = s.promotion_id
         WHERE p.status = 'open' ORDER BY s.id",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut promotions: Vec<PromotionRow> = rows
        .iter()
        .map(decode::promotion)
        .collect::<Result<_, _>>()?;
    for (id, operator) in signoffs {
        if let Some(p) = promotions.iter_mut().find(|p| p.id == id) {
            p.signoffs.push(operator);
        }
    }
    Ok(promotions)
}

pub(super) async fn find_approval(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<ApprovalState>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT id, agent, request_hash, request, status, created_at, expires_at, used, required, rule, voided_because FROM approvals WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let mut approval = decode::approval(&row)?;
    let votes: Vec<(String, String)> = sqlx::query_as(
        "SELECT operator, verdict FROM approval_votes WHERE approval_id = ? ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let votes = votes
        .into_iter()
        .map(|(operator, verdict)| Ok((operator, approval_status(&verdict)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    approval.approval.approvers = votes
        .iter()
        .filter(|(_, verdict)| *verdict == ApprovalStatus::Approved)
        .map(|(o, _)| o.clone())
        .collect();
    let voided_because = match row.optional_text("voided_because")? {
        Some(name) => Some(
            ApprovalVoid::parse(&name)
                .ok_or_else(|| StoreError::corrupt(format!("approvals.voided_because `{name}`")))?,
        ),
        None => None,
    };
    Ok(Some(ApprovalState {
        row: approval,
        votes,
        voided_because,
    }))
}
