//! The console's reads that are the same SQL on every backend but for a
//! few spellings ([`Dialect`]): a filtered page of the ledger, built with
//! only the conditions asked for (so the database can use the index the
//! filter has), and the UTC day of a timestamp.
//!
//! An agent's or an outcome's decisions come from the `decisions` index
//! (`decisions_agent_seq`, `decisions_outcome_seq`); any other filter reads
//! the ledger newest first, by kind through `ledger_kind`.

use sqlx::{Database as Db, QueryBuilder};

use crate::{
    codec::int,
    rows::{DecisionIndex, LedgerFilter},
    timestamp_text,
};

/// What differs between backends in these queries.
pub(crate) struct Dialect {
    /// The payload's top-level `agent`, as text.
    pub agent_of_payload: &'static str,
}

/// The query for `filter`, newest first.
pub(crate) fn ledger_page<D>(filter: &LedgerFilter, dialect: &Dialect) -> QueryBuilder<D>
where
    D: Db,
    for<'q> String: sqlx::Encode<'q, D> + sqlx::Type<D>,
    for<'q> i64: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    let by_decision = filter.outcome.is_some()
        || (filter.agent.is_some() && filter.kind.as_deref() == Some("decision"));
    let mut query = QueryBuilder::<D>::new("");
    if by_decision {
        query.push(
            "SELECT l.seq, l.at, l.kind, l.payload, l.prev_hash, l.hash FROM decisions d JOIN ledger l ON l.seq = d.seq WHERE 1 = 1",
        );
        if let Some(outcome) = filter.outcome {
            query
                .push(" AND d.outcome = ")
                .push_bind(outcome.name().to_owned());
        }
        if let Some(agent) = &filter.agent {
            query.push(" AND d.agent = ").push_bind(agent.clone());
        }
        if let Some(before) = filter.before {
            query.push(" AND d.seq < ").push_bind(int(before));
        }
        push_times(&mut query, "d.at", filter);
        query.push(" ORDER BY d.seq DESC LIMIT ");
    } else {
        query.push("SELECT seq, at, kind, payload, prev_hash, hash FROM ledger WHERE 1 = 1");
        if let Some(kind) = &filter.kind {
            query.push(" AND kind = ").push_bind(kind.clone());
        }
        if let Some(agent) = &filter.agent {
            query
                .push(" AND ")
                .push(dialect.agent_of_payload)
                .push(" = ")
                .push_bind(agent.clone());
        }
        if let Some(before) = filter.before {
            query.push(" AND seq < ").push_bind(int(before));
        }
        push_times(&mut query, "at", filter);
        query.push(" ORDER BY seq DESC LIMIT ");
    }
    query.push_bind(i64::from(filter.limit));
    query
}

fn push_times<D>(query: &mut QueryBuilder<D>, column: &str, filter: &LedgerFilter)
where
    D: Db,
    for<'q> String: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    if let Some(since) = filter.since {
        query
            .push(format!(" AND {column} >= "))
            .push_bind(timestamp_text(since));
    }
    if let Some(until) = filter.until {
        query
            .push(format!(" AND {column} < "))
            .push_bind(timestamp_text(until));
    }
}

/// `YYYY-MM-DD` of `at`, in UTC: the days the overview counts by.
pub fn day_of(at: jiff::Timestamp) -> String {
    let text = timestamp_text(at);
    text.get(..10).unwrap_or(&text).to_owned()
}

/// A batch's decisions counted by UTC day, outcome and blocked: one upsert
/// row each, so a batch adds to `decision_days` in one statement.
pub(crate) fn days_of(rows: &[(u64, &DecisionIndex)]) -> Vec<(String, &'static str, bool, i64)> {
    let mut days: std::collections::BTreeMap<(String, &'static str, bool), i64> =
        std::collections::BTreeMap::new();
    for (_, decision) in rows {
        *days
            .entry((
                day_of(decision.at),
                decision.outcome.name(),
                decision.blocked,
            ))
            .or_default() += 1;
    }
    days.into_iter()
        .map(|((day, outcome, blocked), n)| (day, outcome, blocked, n))
        .collect()
}
