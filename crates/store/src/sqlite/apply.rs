//! Effects as SQLite statements. A conditional effect whose condition no
//! longer holds refuses its entry with `Conflict`; the writer rolls the
//! batch back and retries it without that entry.

use clearance_engine::facts::ApprovalStatus;
use sqlx::{Sqlite as Driver, SqliteConnection, sqlite::SqliteQueryResult};

use crate::{
    Effect, StoreError,
    backend::Rejected,
    codec::{approval_status_name, int, json, timestamp_text},
    console::{day_of, days_of},
    rows::{ApprovalVoid, DecisionIndex},
};

pub(super) async fn apply(
    conn: &mut SqliteConnection,
    entries: &[(u64, &[Effect])],
) -> Result<(), Rejected> {
    // Decisions first, in one statement: nothing they index depends on
    // another effect, and an outcome imported beside its decision needs it.
    let decisions: Vec<(u64, &DecisionIndex)> = entries
        .iter()
        .flat_map(|(seq, effects)| {
            effects.iter().filter_map(move |e| match e {
                Effect::DecisionRecorded(d) => Some((*seq, d)),
                _ => None,
            })
        })
        .collect();
    insert_decisions(conn, &decisions)
        .await
        .map_err(|error| Rejected {
            index: usize::MAX,
            error,
        })?;
    for (index, (seq, effects)) in entries.iter().enumerate() {
        for effect in *effects {
            apply_one(conn, *seq, effect)
                .await
                .map_err(|error| Rejected { index, error })?;
        }
    }
    Ok(())
}

async fn insert_decisions(
    conn: &mut SqliteConnection,
    rows: &[(u64, &DecisionIndex)],
) -> Result<(), StoreError> {
    // 9 values per row, under SQLite's 32,766 bound parameters.
    for chunk in rows.chunks(3_000) {
        let mut query = sqlx::QueryBuilder::<Driver>::new(
            "INSERT INTO decisions (id, seq, agent, action, outcome, impact, execution, blocked, at) ",
        );
        query.push_values(chunk, |mut row, (seq, d)| {
            row.push_bind(d.id.clone())
                .push_bind(int(*seq))
                .push_bind(d.agent.clone())
                .push_bind(d.action.clone())
                .push_bind(d.outcome.name())
                .push_bind(d.impact.name())
                .push_bind(d.execution)
                .push_bind(d.blocked)
                .push_bind(timestamp_text(d.at));
        });
        query.build().execute(&mut *conn).await?;
    }
    let days = days_of(rows);
    for chunk in days.chunks(4_000) {
        let mut query = sqlx::QueryBuilder::<Driver>::new(
            "INSERT INTO decision_days (day, outcome, blocked, decisions) ",
        );
        query.push_values(chunk, |mut row, (day, outcome, blocked, n)| {
            row.push_bind(day.clone())
                .push_bind(*outcome)
                .push_bind(*blocked)
                .push_bind(*n);
        });
        query.push(" ON CONFLICT (day, outcome, blocked) DO UPDATE SET decisions = decision_days.decisions + excluded.decisions");
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Exactly one row changed, or the condition did not hold.
fn once(result: SqliteQueryResult, refusal: impl FnOnce() -> String) -> Result<(), StoreError> {
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(refusal()))
    }
}

async fn apply_one(
    conn: &mut SqliteConnection,
    seq: u64,
    effect: &Effect,
) -> Result<(), StoreError> {
    match effect {
        Effect::DecisionRecorded(_) | Effect::BundleActivated { .. } => {}
        Effect::PlatformEventRecorded { key, decision_id } => {
            // Either uniqueness refuses: the event already counted, or the
            // decision was already matched by another event.
            let result = sqlx::query(
                "INSERT INTO platform_events (event_key, decision_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(decision_id.as_deref())
            .bind(int(seq))
            .execute(conn)
            .await?;
            once(result, || match decision_id {
                Some(id) => format!(
                    "platform event `{key}` is already recorded, or decision `{id}` already matched"
                ),
                None => format!("platform event `{key}` is already recorded"),
            })?;
        }
        Effect::ApprovalOpened(row) => {
            sqlx::query("INSERT INTO approvals (id, agent, action, request_hash, request, status, created_at, expires_at, used, opened_seq, required, rule) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?, ?, ?)")
                .bind(&row.approval.id)
                .bind(&row.agent)
                .bind(&row.request.action)
                .bind(&row.approval.request_hash)
                .bind(json(&row.request)?)
                .bind(timestamp_text(row.created_at))
                .bind(timestamp_text(row.approval.expires_at))
                .bind(int(seq))
                .bind(i64::from(row.approval.required))
                .bind(&row.rule)
                .execute(conn)
                .await?;
        }
        Effect::ApprovalSettled { id, status, by, at } => {
            // One verdict per operator, only while pending.
            let result = sqlx::query("INSERT INTO approval_votes (approval_id, operator, verdict, at) SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM approvals WHERE id = ?1 AND status = 'pending') ON CONFLICT (approval_id, operator) DO NOTHING")
                .bind(id)
                .bind(by)
                .bind(approval_status_name(*status))
                .bind(timestamp_text(*at))
                .execute(&mut *conn)
                .await?;
            once(result, || {
                format!("approval `{id}` is no longer pending, or `{by}` already voted on it")
            })?;
            let statement = match status {
                ApprovalStatus::Approved => {
                    "UPDATE approvals SET status = 'approved' WHERE id = ?1 AND status = 'pending' AND required <= (SELECT COUNT(*) FROM approval_votes WHERE approval_id = ?1 AND verdict = 'approved')"
                }
                _ => "UPDATE approvals SET status = 'denied' WHERE id = ? AND status = 'pending'",
            };
            sqlx::query(statement).bind(id).execute(conn).await?;
        }
        Effect::ApprovalUsed { id } => {
            let result = sqlx::query(
                "UPDATE approvals SET used = 1 WHERE id = ? AND status = ? AND used = 0",
            )
            .bind(id)
            .bind(approval_status_name(ApprovalStatus::Approved))
            .execute(conn)
            .await?;
            once(result, || {
                format!("approval `{id}` is not approved and unused")
            })?;
        }
        Effect::ApprovalsVoided { ids, because } => {
            for id in ids {
                let result = sqlx::query("UPDATE approvals SET status = 'voided', voided_because = ? WHERE id = ? AND status IN ('pending', 'approved') AND used = 0")
                    .bind(because.name())
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                if *because != ApprovalVoid::KillSwitch {
                    once(result, || format!("approval `{id}` is no longer open"))?;
                }
            }
        }
        Effect::KillSwitchTripped(row) => {
            sqlx::query("INSERT INTO kill_switches (id, scope, target, reason, tripped_by, tripped_at, tripped_seq) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(row.switch.id.as_deref().unwrap_or_default())
                .bind(row.switch.scope.name())
                .bind(&row.switch.target)
                .bind(row.switch.reason.as_deref().unwrap_or_default())
                .bind(&row.tripped_by)
                .bind(timestamp_text(row.tripped_at))
                .bind(int(seq))
                .execute(conn)
                .await?;
        }
        Effect::KillSwitchReset { id, by, at } => {
            let result = sqlx::query(
                "UPDATE kill_switches SET reset_by = ?, reset_at = ?, reset_seq = ? WHERE id = ? AND reset_at IS NULL",
            )
            .bind(by)
            .bind(timestamp_text(*at))
            .bind(int(seq))
            .bind(id)
            .execute(conn)
            .await?;
            once(result, || format!("kill switch `{id}` is not tripped"))?;
        }
        Effect::SimulationRecorded(report) => {
            sqlx::query("INSERT INTO simulations (plan_id, branches, survived, produced_at, steps) VALUES (?, ?, ?, ?, ?)")
                .bind(&report.plan_id)
                .bind(i64::from(report.branches))
                .bind(i64::from(report.survived))
                .bind(timestamp_text(report.produced_at))
                .bind(crate::codec::steps_text(&report.steps)?)
                .execute(conn)
                .await?;
        }
        Effect::RollbackTested(row) => {
            sqlx::query("INSERT INTO rollback_tests (playbook, passed, tested_at, duration_ms) VALUES (?, ?, ?, ?)")
                .bind(&row.test.playbook)
                .bind(row.test.passed)
                .bind(timestamp_text(row.test.tested_at))
                .bind(row.duration_ms.map(int))
                .execute(conn)
                .await?;
        }
        Effect::OutcomeReported {
            decision_id,
            outcome,
            failure,
        } => {
            let result =
                sqlx::query("UPDATE decisions SET reported = ? WHERE id = ? AND reported IS NULL")
                    .bind(outcome.name())
                    .bind(decision_id)
                    .execute(&mut *conn)
                    .await?;
            once(result, || {
                format!("decision `{decision_id}` already has an outcome")
            })?;
            if let Some(failure) = failure {
                sqlx::query("INSERT INTO recovery_days (day, failures, recovered, recovery_seconds) VALUES (?, 1, ?, ?) ON CONFLICT (day) DO UPDATE SET failures = recovery_days.failures + 1, recovered = recovery_days.recovered + excluded.recovered, recovery_seconds = recovery_days.recovery_seconds + excluded.recovery_seconds")
                    .bind(day_of(failure.reported_at))
                    .bind(i64::from(failure.recovery_seconds.is_some()))
                    .bind(failure.recovery_seconds.unwrap_or(0.0))
                    .execute(conn)
                    .await?;
            }
        }
        Effect::SessionOpened(row) => {
            sqlx::query("INSERT INTO sessions (id, hash, operator, role, created_at, expires_at, last_seen, token_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&row.id)
                .bind(&row.hash)
                .bind(&row.operator)
                .bind(row.role.name())
                .bind(timestamp_text(row.created_at))
                .bind(timestamp_text(row.expires_at))
                .bind(timestamp_text(row.last_seen))
                .bind(&row.token_sha256)
                .execute(conn)
                .await?;
        }
        Effect::SessionClosed { id, at } => {
            let result =
                sqlx::query("UPDATE sessions SET closed_at = ? WHERE id = ? AND closed_at IS NULL")
                    .bind(timestamp_text(*at))
                    .bind(id)
                    .execute(conn)
                    .await?;
            once(result, || format!("session `{id}` is already closed"))?;
        }
        Effect::AgentRegistered(row) => {
            let result = sqlx::query("INSERT INTO agents (id, phase, locked, phase_since) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING")
                .bind(&row.id)
                .bind(i64::from(row.phase.number()))
                .bind(row.locked)
                .bind(timestamp_text(row.phase_since))
                .execute(conn)
                .await?;
            once(result, || {
                format!("agent `{}` is already registered", row.id)
            })?;
        }
        Effect::AgentChanged { row, expected } => match expected {
            Some(version) => {
                let result = sqlx::query("UPDATE agents SET phase = ?, locked = ?, phase_since = ? WHERE id = ? AND phase = ? AND phase_since = ?")
                    .bind(i64::from(row.phase.number()))
                    .bind(row.locked)
                    .bind(timestamp_text(row.phase_since))
                    .bind(&row.id)
                    .bind(i64::from(version.phase.number()))
                    .bind(timestamp_text(version.phase_since))
                    .execute(conn)
                    .await?;
                once(result, || {
                    format!("agent `{}` changed before this change was recorded", row.id)
                })?;
            }
            None => {
                sqlx::query("INSERT INTO agents (id, phase, locked, phase_since) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, locked = excluded.locked, phase_since = excluded.phase_since")
                    .bind(&row.id)
                    .bind(i64::from(row.phase.number()))
                    .bind(row.locked)
                    .bind(timestamp_text(row.phase_since))
                    .execute(conn)
                    .await?;
            }
        },
        Effect::TokenRevoked { hash, at } => {
            let result = sqlx::query("DELETE FROM tokens WHERE hash = ?")
                .bind(hash)
                .execute(&mut *conn)
                .await?;
            once(result, || format!("no token `{hash}` to revoke"))?;
            sqlx::query(
                "UPDATE sessions SET closed_at = ? WHERE token_sha256 = ? AND closed_at IS NULL",
            )
            .bind(timestamp_text(*at))
            .bind(hash)
            .execute(conn)
            .await?;
        }
        Effect::TokenIssued(row) => {
            sqlx::query(
                "INSERT INTO tokens (hash, kind, subject, role, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&row.hash)
            .bind(row.identity.kind())
            .bind(row.identity.subject())
            .bind(row.identity.role().map(|r| r.name()))
            .bind(timestamp_text(row.created_at))
            .execute(conn)
            .await?;
        }
        Effect::EvidenceRecorded(row) => {
            let result = sqlx::query("INSERT INTO evidence (agent, kind, incident_id, at, sample, seq) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&row.agent)
                .bind(row.sample.kind())
                .bind(&row.incident_id)
                .bind(timestamp_text(row.at))
                .bind(json(&row.sample)?)
                .bind(int(seq))
                .execute(conn)
                .await;
            if let Err(sqlx::Error::Database(e)) = &result
                && e.is_unique_violation()
            {
                return Err(StoreError::Conflict(format!(
                    "a {} sample for agent `{}` and incident `{}` is already recorded; it counts once",
                    row.sample.kind(),
                    row.agent,
                    row.incident_id
                )));
            }
            result?;
        }
        Effect::PromotionOpened(row) => {
            sqlx::query("INSERT INTO promotions (id, agent, from_phase, to_phase, opened_by, opened_at, status) VALUES (?, ?, ?, ?, ?, ?, 'open')")
                .bind(&row.id)
                .bind(&row.agent)
                .bind(i64::from(row.from.number()))
                .bind(i64::from(row.to.number()))
                .bind(&row.opened_by)
                .bind(timestamp_text(row.opened_at))
                .execute(conn)
                .await?;
        }
        Effect::PromotionSigned { id, operator, at } => {
            let result = sqlx::query("INSERT INTO promotion_signoffs (promotion_id, operator, at) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM promotions WHERE id = ? AND status = 'open') ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(operator)
                .bind(timestamp_text(*at))
                .bind(id)
                .execute(conn)
                .await?;
            once(result, || {
                format!(
                    "`{operator}` cannot sign promotion `{id}`: already signed, or no longer open"
                )
            })?;
        }
        Effect::PromotionClosed { id, status } => {
            sqlx::query("UPDATE promotions SET status = ? WHERE id = ? AND status = 'open'")
                .bind(status.name())
                .bind(id)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}
