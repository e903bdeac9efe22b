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
    /// The payload's top-level `agent`, as text: the `agent` column both
    /// backends fill at append (indexed with `seq`), read from the payload
    /// where SQLite rows older than the column lack it.
    pub agent_of_payload: &'static str,
    /// A record's columns as the backend reads them (PostgreSQL bounds a
    /// payload's size there), from `ledger` …
    pub record_columns: &'static str,
    /// … and from `ledger l`, joined.
    pub joined_record_columns: &'static str,
}

/// The query for `filter`, newest first.
pub(crate) fn ledger_page<D>(
    filter: &LedgerFilter,
    dialect: &Dialect,
    seqs: Option<(u64, u64)>,
) -> QueryBuilder<D>
where
    D: Db,
    for<'q> String: sqlx::Encode<'q, D> + sqlx::Type<D>,
    for<'q> i64: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    let by_decision = filter.outcome.is_some()
        || (filter.agent.is_some() && filter.kind.as_deref() == Some("decision"));
    let mut query = QueryBuilder::<D>::new("");
    if by_decision {
        query
            .push("SELECT ")
            .push(dialect.joined_record_columns)
            .push(" FROM decisions d JOIN ledger l ON l.seq = d.seq WHERE 1 = 1");
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
        push_seqs(&mut query, "d.seq", seqs);
        query.push(" ORDER BY d.seq DESC LIMIT ");
    } else {
        query
            .push("SELECT ")
            .push(dialect.record_columns)
            .push(" FROM ledger WHERE 1 = 1");
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
        push_seqs(&mut query, "seq", seqs);
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

/// `seq` within `[from, to)`: the records a time window can hold.
fn push_seqs<D>(query: &mut QueryBuilder<D>, column: &str, seqs: Option<(u64, u64)>)
where
    D: Db,
    for<'q> i64: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    if let Some((from, to)) = seqs {
        query
            .push(format!(" AND {column} >= "))
            .push_bind(int(from))
            .push(format!(" AND {column} < "))
            .push_bind(int(to));
    }
}

/// How far a record's time may lag behind an earlier record's: instances
/// stamp records with their own clocks before the ledger orders them.
const CLOCK_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_mins(2);

/// The records a time filter can match, as a range of sequence numbers,
/// found by binary search on the primary key (`at_of(seq)` reads one
/// record's time): a window over a million records reads ~40 rows instead
/// of scanning them. Records' times grow with their sequence numbers, up to
/// [`CLOCK_SLACK`], which the range widens by; the filter itself still
/// compares every candidate's time exactly.
pub(crate) async fn seq_window<F, Fut>(
    filter: &LedgerFilter,
    head: u64,
    mut at_of: F,
) -> Result<Option<(u64, u64)>, crate::StoreError>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, crate::StoreError>>,
{
    if filter.since.is_none() && filter.until.is_none() {
        return Ok(None);
    }
    // The first seq whose time is at or after `bound`.
    let mut first_at = async |bound: jiff::Timestamp| -> Result<u64, crate::StoreError> {
        let bound = timestamp_text(bound);
        let (mut lo, mut hi) = (1, head + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match at_of(mid).await? {
                Some(at) if at < bound => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
    };
    let from = match filter.since {
        Some(since) => first_at(since.checked_sub(CLOCK_SLACK).unwrap_or(since)).await?,
        None => 0,
    };
    let to = match filter.until {
        Some(until) => first_at(until.checked_add(CLOCK_SLACK).unwrap_or(until)).await?,
        None => head + 1,
    };
    Ok(Some((from, to.max(from))))
}

/// `YYYY-MM-DD` of `at`, in UTC: the days the overview counts by.
pub fn day_of(at: jiff::Timestamp) -> String {
    let text = timestamp_text(at);
    text.get(..10).unwrap_or(&text).to_owned()
}

/// A batch's decisions counted by UTC day, outcome and blocked: one upsert
/// row each, so a batch adds to `decision_days` in one statement. Grouped
/// by day number first: one day's text per group, not per decision.
pub(crate) fn days_of(rows: &[(u64, &DecisionIndex)]) -> Vec<(String, &'static str, bool, i64)> {
    let mut days: std::collections::BTreeMap<(i64, &'static str, bool), i64> =
        std::collections::BTreeMap::new();
    for (_, decision) in rows {
        let day = decision.at.as_second().div_euclid(SECONDS_PER_DAY);
        *days
            .entry((day, decision.outcome.name(), decision.blocked))
            .or_default() += 1;
    }
    days.into_iter()
        .map(|((day, outcome, blocked), n)| (day_text(day), outcome, blocked, n))
        .collect()
}

const SECONDS_PER_DAY: i64 = 86_400;

/// `YYYY-MM-DD` of the UTC day numbered `day` since the epoch.
fn day_text(day: i64) -> String {
    jiff::Timestamp::from_second(day.saturating_mul(SECONDS_PER_DAY))
        .map_or_else(|_| String::new(), day_of)
}

/// The last `days` UTC days up to `now`'s (at least one), oldest first, and
/// the instant the first of them begins: the window the overview and an
/// agent's history count by.
pub fn utc_days(now: jiff::Timestamp, days: u32) -> (Vec<String>, jiff::Timestamp) {
    let today = now.as_second().div_euclid(SECONDS_PER_DAY);
    let first = today - i64::from(days.max(1)) + 1;
    let window = (first..=today).map(day_text).collect();
    let start = jiff::Timestamp::from_second(first.saturating_mul(SECONDS_PER_DAY)).unwrap_or(now);
    (window, start)
}
