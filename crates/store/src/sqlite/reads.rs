//! Everything the store reads: state at start-up, tokens, decisions, audit
//! pages, and the full-chain verification.

use clearance_engine::{
    facts::{Approval, ApprovalStatus, KillScope, KillSwitch, RollbackTest, SimulationReport},
    ledger::{ChainVerifier, Digest32, LedgerRecord},
};
use jiff::Timestamp;
use sqlx::{Row, SqlitePool, sqlite::SqliteRow};

use super::digest;
use crate::{
    AgentRow, ApprovalRow, AuditQuery, DecisionRow, EvidenceRow, KillSwitchRow, PromotionRow,
    RollbackTestRow, StoreError, StoredState, TokenRow, VerifyReport,
};

/// How many records verification reads per query: large enough that the
/// query round trip vanishes, small enough to bound memory.
const VERIFY_PAGE: i64 = 20_000;

/// A timestamp as stored: RFC 3339 UTC with exactly six fractional digits,
/// so that text order is time order.
pub fn text(at: Timestamp) -> String {
    format!("{at:.6}")
}

fn timestamp(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{text}`: {e}")))
}

fn seq(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("negative sequence number {value}")))
}

pub(super) async fn ledger_head(
    connection: &mut sqlx::SqliteConnection,
) -> Result<(u64, Digest32), StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        .fetch_optional(connection)
        .await?;
    match row {
        None => Ok((0, Digest32::GENESIS)),
        Some(row) => Ok((seq(row.try_get("seq")?)?, digest(row.try_get("hash")?)?)),
    }
}

pub(super) async fn load_state(pool: &SqlitePool, since: &str) -> Result<StoredState, StoreError> {
    let agents = sqlx::query("SELECT id, phase, locked, phase_since FROM agents")
        .fetch_all(pool)
        .await?;
    let promotions = sqlx::query("SELECT id, agent, from_phase, to_phase, opened_by, opened_at, signoffs FROM promotions WHERE status = 'open'")
        .fetch_all(pool)
        .await?;
    let approvals = sqlx::query("SELECT id, agent, action, request_hash, request, status, approvers, created_at, expires_at, used FROM approvals WHERE status IN ('pending', 'approved') AND used = 0")
        .fetch_all(pool)
        .await?;
    let switches = sqlx::query("SELECT id, scope, target, reason, tripped_by, tripped_at FROM kill_switches WHERE reset_at IS NULL").fetch_all(pool).await?;
    let simulations = sqlx::query("SELECT plan_id, branches, survived, max(produced_at) AS produced_at FROM simulations GROUP BY plan_id").fetch_all(pool).await?;
    let tests = sqlx::query("SELECT playbook, passed, max(tested_at) AS tested_at, duration_ms FROM rollback_tests GROUP BY playbook").fetch_all(pool).await?;
    let executions = sqlx::query(
        "SELECT agent, impact, at FROM decisions WHERE execution = 1 AND at >= ? ORDER BY at",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(StoredState {
        agents: agents.iter().map(agent_row).collect::<Result<_, _>>()?,
        approvals: approvals
            .iter()
            .map(approval_row)
            .collect::<Result<_, _>>()?,
        kill_switches: switches
            .iter()
            .map(kill_switch_row)
            .collect::<Result<_, _>>()?,
        simulations: simulations
            .iter()
            .map(simulation_row)
            .collect::<Result<_, _>>()?,
        rollback_tests: tests
            .iter()
            .map(rollback_test_row)
            .collect::<Result<_, _>>()?,
        executions: executions
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("agent")?,
                    row.try_get("impact")?,
                    row.try_get("at")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?,
        promotions: promotions
            .iter()
            .map(promotion_row)
            .collect::<Result<_, _>>()?,
    })
}

fn promotion_row(row: &SqliteRow) -> Result<PromotionRow, StoreError> {
    let phase = |name: &str| -> Result<u8, StoreError> {
        let value: i64 = row.try_get(name)?;
        u8::try_from(value).map_err(|_| StoreError::Corrupt(format!("{name} {value}")))
    };
    let signoffs: String = row.try_get("signoffs")?;
    Ok(PromotionRow {
        id: row.try_get("id")?,
        agent: row.try_get("agent")?,
        from_phase: phase("from_phase")?,
        to_phase: phase("to_phase")?,
        opened_by: row.try_get("opened_by")?,
        opened_at: row.try_get("opened_at")?,
        signoffs: serde_json::from_str(&signoffs)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

pub(super) async fn replay_evidence<F>(pool: &SqlitePool, mut visit: F) -> Result<u64, StoreError>
where
    F: FnMut(EvidenceRow) -> Result<(), StoreError> + Send,
{
    use futures::TryStreamExt as _;
    let mut rows = sqlx::query(
        "SELECT e.agent, e.kind, e.incident_id, e.at, e.sample FROM evidence e LEFT JOIN agents a ON a.id = e.agent
         WHERE e.at >= COALESCE(a.phase_since, '') ORDER BY e.at, e.id",
    )
    .fetch(pool);
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        visit(EvidenceRow {
            agent: row.try_get("agent")?,
            kind: row.try_get("kind")?,
            incident_id: row.try_get("incident_id")?,
            at: row.try_get("at")?,
            sample: row.try_get("sample")?,
        })?;
        count += 1;
    }
    Ok(count)
}

pub(super) async fn evidence_exists(
    pool: &SqlitePool,
    agent: &str,
    kind: &str,
    incident_id: &str,
) -> Result<bool, StoreError> {
    let row =
        sqlx::query("SELECT 1 FROM evidence WHERE agent = ? AND kind = ? AND incident_id = ?")
            .bind(agent)
            .bind(kind)
            .bind(incident_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

fn agent_row(row: &SqliteRow) -> Result<AgentRow, StoreError> {
    let phase: i64 = row.try_get("phase")?;
    Ok(AgentRow {
        id: row.try_get("id")?,
        phase: u8::try_from(phase).map_err(|_| StoreError::Corrupt(format!("phase {phase}")))?,
        locked: row.try_get("locked")?,
        phase_since: row.try_get("phase_since")?,
    })
}

fn approval_row(row: &SqliteRow) -> Result<ApprovalRow, StoreError> {
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "pending" => ApprovalStatus::Pending,
        "approved" => ApprovalStatus::Approved,
        "denied" => ApprovalStatus::Denied,
        "voided" => ApprovalStatus::Voided,
        other => return Err(StoreError::Corrupt(format!("approval status `{other}`"))),
    };
    let approvers: String = row.try_get("approvers")?;
    Ok(ApprovalRow {
        approval: Approval {
            id: row.try_get("id")?,
            request_hash: row.try_get("request_hash")?,
            status,
            approvers: serde_json::from_str(&approvers)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            expires_at: timestamp(row.try_get("expires_at")?)?,
            used: row.try_get("used")?,
        },
        agent: row.try_get("agent")?,
        action: row.try_get("action")?,
        request: row.try_get("request")?,
        created_at: row.try_get("created_at")?,
    })
}

fn kill_switch_row(row: &SqliteRow) -> Result<KillSwitchRow, StoreError> {
    let scope: String = row.try_get("scope")?;
    let scope = match scope.as_str() {
        "global" => KillScope::Global,
        "agent" => KillScope::Agent,
        "tool" => KillScope::Tool,
        "resource" => KillScope::Resource,
        other => return Err(StoreError::Corrupt(format!("kill switch scope `{other}`"))),
    };
    Ok(KillSwitchRow {
        switch: KillSwitch {
            id: Some(row.try_get("id")?),
            scope,
            target: row.try_get("target")?,
            reason: Some(row.try_get("reason")?),
        },
        tripped_by: row.try_get("tripped_by")?,
        tripped_at: row.try_get("tripped_at")?,
    })
}

fn simulation_row(row: &SqliteRow) -> Result<SimulationReport, StoreError> {
    let count = |name: &str| -> Result<u32, StoreError> {
        let value: i64 = row.try_get(name)?;
        u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{name} {value}")))
    };
    Ok(SimulationReport {
        plan_id: row.try_get("plan_id")?,
        branches: count("branches")?,
        survived: count("survived")?,
        produced_at: timestamp(row.try_get("produced_at")?)?,
    })
}

fn rollback_test_row(row: &SqliteRow) -> Result<RollbackTestRow, StoreError> {
    Ok(RollbackTestRow {
        test: RollbackTest {
            playbook: row.try_get("playbook")?,
            passed: row.try_get("passed")?,
            tested_at: timestamp(row.try_get("tested_at")?)?,
        },
        duration_ms: row.try_get("duration_ms")?,
    })
}

pub(super) async fn find_token(
    pool: &SqlitePool,
    hash: &str,
) -> Result<Option<TokenRow>, StoreError> {
    let row =
        sqlx::query("SELECT hash, kind, subject, role, created_at FROM tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(pool)
            .await?;
    row.map(|row| {
        Ok(TokenRow {
            hash: row.try_get("hash")?,
            kind: row.try_get("kind")?,
            subject: row.try_get("subject")?,
            role: row.try_get("role")?,
            created_at: row.try_get("created_at")?,
        })
    })
    .transpose()
}

pub(super) async fn find_decision(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<DecisionRow>, StoreError> {
    let row = sqlx::query("SELECT id, seq, agent, action, outcome, impact, execution, at, reported FROM decisions WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(DecisionRow {
            id: row.try_get("id")?,
            seq: seq(row.try_get("seq")?)?,
            agent: row.try_get("agent")?,
            action: row.try_get("action")?,
            outcome: row.try_get("outcome")?,
            impact: row.try_get("impact")?,
            execution: row.try_get("execution")?,
            at: row.try_get("at")?,
            reported: row.try_get("reported")?,
        })
    })
    .transpose()
}

fn ledger_record(row: &SqliteRow) -> Result<LedgerRecord, StoreError> {
    Ok(LedgerRecord {
        seq: seq(row.try_get("seq")?)?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        prev_hash: digest(row.try_get("prev_hash")?)?,
        hash: digest(row.try_get("hash")?)?,
    })
}

pub(super) async fn audit(
    pool: &SqlitePool,
    query: &AuditQuery,
) -> Result<Vec<LedgerRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, kind, payload, prev_hash, hash FROM ledger
         WHERE seq > ? AND (? IS NULL OR kind = ?) AND (? IS NULL OR json_extract(payload, '$.agent') = ?)
         ORDER BY seq LIMIT ?",
    )
    .bind(i64::try_from(query.after).unwrap_or(i64::MAX))
    .bind(&query.kind)
    .bind(&query.kind)
    .bind(&query.agent)
    .bind(&query.agent)
    .bind(i64::from(query.limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(ledger_record).collect()
}

pub(super) async fn verify(pool: &SqlitePool) -> Result<VerifyReport, StoreError> {
    let mut verifier = ChainVerifier::default();
    // Keyset pages: `seq` is the rowid, so each page is an index range scan.
    // Gaps and out-of-place numbers still reach the verifier, which expects
    // 1, 2, 3… and names the first record that is not.
    let mut after = 0i64;
    loop {
        let rows = sqlx::query("SELECT seq, at, kind, payload, prev_hash, hash FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(VERIFY_PAGE)
            .fetch_all(pool)
            .await?;
        for row in &rows {
            let record = match ledger_record(row) {
                Ok(record) => record,
                Err(error) => {
                    let first_break = clearance_engine::ledger::ChainBreak {
                        seq: verifier.verified() + 1,
                        problem: error.to_string(),
                    };
                    return Ok(VerifyReport {
                        verified: verifier.verified(),
                        head: verifier.head(),
                        first_break: Some(first_break),
                    });
                }
            };
            if let Err(first_break) = verifier.push(&record) {
                return Ok(VerifyReport {
                    verified: verifier.verified(),
                    head: verifier.head(),
                    first_break: Some(first_break),
                });
            }
        }
        match rows.last() {
            Some(last) if rows.len() == usize::try_from(VERIFY_PAGE).unwrap_or(usize::MAX) => {
                after = last.try_get("seq")?
            }
            _ => {
                return Ok(VerifyReport {
                    verified: verifier.verified(),
                    head: verifier.head(),
                    first_break: None,
                });
            }
        }
    }
}
