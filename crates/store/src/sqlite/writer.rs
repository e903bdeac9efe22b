//! The ledger writer: the only code that writes to the database. It takes
//! every entry waiting (up to `MAX_BATCH`), chains their records, and
//! writes records and effects in one transaction — one fsync for the lot.
//! A failed batch is rolled back whole and every waiter told so.
//!
//! The head of the chain is read inside each batch's transaction, which
//! takes the write lock first (`BEGIN IMMEDIATE`): another process
//! appending to the same file (`clearance token issue` beside a running
//! server) is then chained after, never forked from.

use clearance_engine::ledger::{Digest32, LedgerRecord};
use sqlx::{
    Connection, QueryBuilder, Sqlite, SqliteConnection, Transaction, sqlite::SqliteConnectOptions,
};
use tokio::sync::{mpsc, oneshot};

use super::MAX_BATCH;
use crate::{DecisionRow, Effect, Entry, Receipt, StoreError};

pub(super) struct Job {
    pub entry: Entry,
    pub reply: oneshot::Sender<Result<Receipt, StoreError>>,
}

pub(super) async fn run(
    options: SqliteConnectOptions,
    connection: SqliteConnection,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut connection = Some(connection);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = match connection.as_mut() {
            Some(open) => write(open, &batch).await,
            None => reconnect(&options, &mut connection, &batch).await,
        };
        if let Err(error) = &result {
            tracing::error!(%error, "ledger batch rolled back");
            // A failed transaction can leave the connection mid-transaction;
            // start the next batch on a fresh one rather than trust it.
            connection = None;
        }
        for (index, job) in batch.drain(..).enumerate() {
            let answer = match &result {
                Ok(records) => records
                    .get(index)
                    .map(|r| Receipt {
                        seq: r.seq,
                        hash: r.hash,
                    })
                    .ok_or(StoreError::WriterGone),
                Err(error) => Err(error.clone()),
            };
            // The waiter may have gone (client hung up); the record stands.
            let _ = job.reply.send(answer);
        }
    }
}

async fn reconnect(
    options: &SqliteConnectOptions,
    slot: &mut Option<SqliteConnection>,
    batch: &[Job],
) -> Result<Vec<LedgerRecord>, StoreError> {
    let fresh = slot.insert(SqliteConnection::connect_with(options).await?);
    write(fresh, batch).await
}

fn chain(batch: &[Job], mut seq: u64, mut head: Digest32) -> Vec<LedgerRecord> {
    batch
        .iter()
        .map(|job| {
            seq += 1;
            let entry = &job.entry;
            let record = LedgerRecord::chained(
                seq,
                entry.at.clone(),
                entry.kind.to_owned(),
                entry.payload.clone(),
                head,
            );
            head = record.hash;
            record
        })
        .collect()
}

async fn write(
    connection: &mut SqliteConnection,
    batch: &[Job],
) -> Result<Vec<LedgerRecord>, StoreError> {
    let mut tx = connection.begin_with("BEGIN IMMEDIATE").await?;
    let (seq, head) = super::reads::ledger_head(&mut tx).await?;
    let records = chain(batch, seq, head);
    let records = records.as_slice();
    let mut ledger = QueryBuilder::<Sqlite>::new(
        "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash) ",
    );
    ledger.push_values(records, |mut row, record| {
        row.push_bind(as_i64(record.seq))
            .push_bind(record.at.clone())
            .push_bind(record.kind.clone())
            .push_bind(record.payload.clone())
            .push_bind(record.prev_hash.to_hex())
            .push_bind(record.hash.to_hex());
    });
    ledger.build().execute(&mut *tx).await?;

    let mut decisions = Vec::new();
    for (job, record) in batch.iter().zip(records) {
        for effect in &job.entry.effects {
            match effect {
                Effect::Decision(row) => decisions.push((row, record.seq)),
                other => apply(&mut tx, other).await?,
            }
        }
    }
    insert_decisions(&mut tx, &decisions).await?;
    tx.commit().await?;
    Ok(records.to_vec())
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

async fn insert_decisions(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[(&DecisionRow, u64)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut query = QueryBuilder::<Sqlite>::new(
        "INSERT INTO decisions (id, seq, agent, action, outcome, impact, execution, at) ",
    );
    query.push_values(rows, |mut row, (decision, seq)| {
        row.push_bind(decision.id.clone())
            .push_bind(as_i64(*seq))
            .push_bind(decision.agent.clone())
            .push_bind(decision.action.clone())
            .push_bind(decision.outcome.clone())
            .push_bind(decision.impact.clone())
            .push_bind(decision.execution)
            .push_bind(decision.at.clone());
    });
    query.build().execute(&mut **tx).await?;
    Ok(())
}

async fn apply(tx: &mut Transaction<'_, Sqlite>, effect: &Effect) -> Result<(), StoreError> {
    let tx = &mut **tx;
    match effect {
        Effect::Decision(_) => {}
        Effect::ApprovalOpened(row) => {
            let approvers = serde_json::to_string(&row.approval.approvers)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query("INSERT INTO approvals (id, agent, action, request_hash, request, status, approvers, created_at, expires_at, used) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, 0)")
                .bind(&row.approval.id)
                .bind(&row.agent)
                .bind(&row.action)
                .bind(&row.approval.request_hash)
                .bind(&row.request)
                .bind(approvers)
                .bind(&row.created_at)
                .bind(crate::sqlite::reads::text(row.approval.expires_at))
                .execute(tx)
                .await?;
        }
        Effect::ApprovalDecided {
            id,
            status,
            approver,
        } => {
            sqlx::query("UPDATE approvals SET status = ?, approvers = json_insert(approvers, '$[#]', ?) WHERE id = ? AND status = 'pending'")
                .bind(*status)
                .bind(approver)
                .bind(id)
                .execute(tx)
                .await?;
        }
        Effect::ApprovalUsed(id) => {
            sqlx::query("UPDATE approvals SET used = 1 WHERE id = ?")
                .bind(id)
                .execute(tx)
                .await?;
        }
        Effect::ApprovalsVoided(ids) => {
            for id in ids {
                sqlx::query("UPDATE approvals SET status = 'voided' WHERE id = ? AND status IN ('pending', 'approved') AND used = 0")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Effect::KillSwitchTripped(row) => {
            sqlx::query("INSERT INTO kill_switches (id, scope, target, reason, tripped_by, tripped_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(row.switch.id.as_deref().unwrap_or_default())
                .bind(row.switch.scope.name())
                .bind(&row.switch.target)
                .bind(row.switch.reason.as_deref().unwrap_or_default())
                .bind(&row.tripped_by)
                .bind(&row.tripped_at)
                .execute(tx)
                .await?;
        }
        Effect::KillSwitchReset { id, by, at } => {
            sqlx::query("UPDATE kill_switches SET reset_by = ?, reset_at = ? WHERE id = ? AND reset_at IS NULL")
                .bind(by)
                .bind(at)
                .bind(id)
                .execute(tx)
                .await?;
        }
        Effect::Simulation(report) => {
            sqlx::query("INSERT INTO simulations (plan_id, branches, survived, produced_at) VALUES (?, ?, ?, ?)")
                .bind(&report.plan_id)
                .bind(i64::from(report.branches))
                .bind(i64::from(report.survived))
                .bind(crate::sqlite::reads::text(report.produced_at))
                .execute(tx)
                .await?;
        }
        Effect::RollbackTest(row) => {
            sqlx::query("INSERT INTO rollback_tests (playbook, passed, tested_at, duration_ms) VALUES (?, ?, ?, ?)")
                .bind(&row.test.playbook)
                .bind(row.test.passed)
                .bind(crate::sqlite::reads::text(row.test.tested_at))
                .bind(row.duration_ms)
                .execute(tx)
                .await?;
        }
        Effect::OutcomeReported {
            decision_id,
            outcome,
        } => {
            sqlx::query("UPDATE decisions SET reported = ? WHERE id = ?")
                .bind(outcome)
                .bind(decision_id)
                .execute(tx)
                .await?;
        }
        Effect::Agent(row) => {
            sqlx::query("INSERT INTO agents (id, phase, locked, phase_since) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, locked = excluded.locked, phase_since = excluded.phase_since")
                .bind(&row.id)
                .bind(i64::from(row.phase))
                .bind(row.locked)
                .bind(&row.phase_since)
                .execute(tx)
                .await?;
        }
        Effect::Evidence(row) => {
            // OR IGNORE: the service refuses duplicates before they get here;
            // should one slip through, it must not fail the whole batch.
            sqlx::query("INSERT OR IGNORE INTO evidence (agent, kind, incident_id, at, sample) VALUES (?, ?, ?, ?, ?)")
                .bind(&row.agent)
                .bind(&row.kind)
                .bind(&row.incident_id)
                .bind(&row.at)
                .bind(&row.sample)
                .execute(tx)
                .await?;
        }
        Effect::PromotionOpened(row) => {
            let signoffs = serde_json::to_string(&row.signoffs)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query("INSERT INTO promotions (id, agent, from_phase, to_phase, opened_by, opened_at, status, signoffs) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)")
                .bind(&row.id)
                .bind(&row.agent)
                .bind(i64::from(row.from_phase))
                .bind(i64::from(row.to_phase))
                .bind(&row.opened_by)
                .bind(&row.opened_at)
                .bind(signoffs)
                .execute(tx)
                .await?;
        }
        Effect::PromotionSigned { id, operator } => {
            sqlx::query("UPDATE promotions SET signoffs = json_insert(signoffs, '$[#]', ?) WHERE id = ? AND status = 'open'")
                .bind(operator)
                .bind(id)
                .execute(tx)
                .await?;
        }
        Effect::PromotionClosed { id, status } => {
            sqlx::query("UPDATE promotions SET status = ? WHERE id = ?")
                .bind(*status)
                .bind(id)
                .execute(tx)
                .await?;
        }
        Effect::TokenIssued(row) => {
            sqlx::query(
                "INSERT INTO tokens (hash, kind, subject, role, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&row.hash)
            .bind(&row.kind)
            .bind(&row.subject)
            .bind(&row.role)
            .bind(&row.created_at)
            .execute(tx)
            .await?;
        }
    }
    Ok(())
}
