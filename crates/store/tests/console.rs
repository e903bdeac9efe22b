//! The console's reads on both backends: a filtered page of the ledger,
//! newest first, equals a plain filter over every record — with time
//! windows (found by binary search on the sequence numbers), agents and
//! outcomes (through the decisions index) — and the overview's day counts
//! add up to the decisions written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::future::Future;

use clearance_engine::{Outcome, ledger::LedgerRecord};
use clearance_store::{LedgerFilter, Store};
use jiff::Timestamp;
use support::{Place, at, execution};

/// `execution(n)` is decided at `at(n)`; here each at `at(10 n)`.
fn spaced(n: usize) -> clearance_store::Entry {
    let mut entry = execution(n);
    let when = at(10 * n as i64);
    entry.at = when;
    if let Some(clearance_store::Effect::DecisionRecorded(index)) = entry.effects.first_mut() {
        index.at = when;
    }
    entry
}

fn expected(all: &[LedgerRecord], filter: &LedgerFilter) -> Vec<u64> {
    let mut seqs: Vec<u64> = all
        .iter()
        .rev()
        .filter(|r| filter.before.is_none_or(|b| r.seq < b))
        .filter(|r| filter.kind.as_deref().is_none_or(|k| r.kind == k))
        .filter(|r| {
            let time: Timestamp = r.at.parse().unwrap();
            filter.since.is_none_or(|s| time >= s) && filter.until.is_none_or(|u| time < u)
        })
        .filter(|r| {
            filter.agent.as_deref().is_none_or(|agent| {
                serde_json::from_str::<serde_json::Value>(&r.payload).unwrap()["agent"] == agent
            })
        })
        .map(|r| r.seq)
        .collect();
    seqs.truncate(filter.limit as usize);
    seqs
}

async fn filtered_pages_match_a_plain_filter<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = open().await;
    for n in 0..600 {
        store.append(spaced(n)).await.unwrap();
    }
    let all = store.records(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 600);
    let windows = [
        (None, None),
        (Some(at(1_000)), None),
        (None, Some(at(2_005))),
        (Some(at(3_000)), Some(at(3_400))),
        (Some(at(100_000)), None),
        (None, Some(at(-5))),
    ];
    for (since, until) in windows {
        for agent in [None, Some("bot-1")] {
            for outcome in [None, Some(Outcome::Allow), Some(Outcome::Deny)] {
                for before in [None, Some(450)] {
                    let filter = LedgerFilter {
                        before,
                        limit: 50,
                        kind: outcome.map(|_| "decision".to_owned()),
                        outcome,
                        agent: agent.map(str::to_owned),
                        since,
                        until,
                    };
                    let got: Vec<u64> = store
                        .ledger_page(&filter)
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| r.seq)
                        .collect();
                    let want = if outcome == Some(Outcome::Deny) {
                        Vec::new()
                    } else {
                        expected(&all, &filter)
                    };
                    assert_eq!(got, want, "{filter:?}");
                }
            }
        }
    }
    // Every decision is counted on its UTC day.
    let overview = store.overview(at(-86_400)).await.unwrap();
    let counted: u64 = overview.decisions.iter().map(|d| d.decisions).sum();
    assert_eq!(counted, 600);
    assert!(
        overview
            .decisions
            .iter()
            .all(|d| d.outcome == Outcome::Allow && !d.blocked)
    );
}
on_both!(filtered_pages_match_a_plain_filter);

/// The cursors of webhooks that left the bundle are dropped once no
/// instance holds their lease, so a webhook of that name added later starts
/// where it is told to (the head) instead of resuming; a kept webhook's
/// cursor, and one whose lease still runs, stay.
async fn cursors_of_removed_webhooks_are_forgotten<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = open().await;
    let now = jiff::Timestamp::now();
    let past = now
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap();
    let later = now
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap();
    for (webhook, until) in [("kept", past), ("removed", past), ("leased", later)] {
        assert_eq!(
            store.lease_cursor(webhook, "a", until, 5).await.unwrap(),
            Some(5)
        );
        assert!(store.advance_cursor(webhook, "a", 9, until).await.unwrap());
    }
    let forgotten = store
        .forget_cursors_except(&["kept".to_owned()])
        .await
        .unwrap();
    assert_eq!(forgotten, 1, "only the removed one whose lease ran out");
    // Added again later: it starts where it is told, not at 9.
    assert_eq!(
        store.lease_cursor("removed", "b", later, 40).await.unwrap(),
        Some(40)
    );
    assert_eq!(
        store.lease_cursor("kept", "b", later, 40).await.unwrap(),
        Some(9)
    );
    assert_eq!(
        store.lease_cursor("leased", "a", later, 40).await.unwrap(),
        Some(9)
    );
}
on_both!(cursors_of_removed_webhooks_are_forgotten);

/// A PostgreSQL ledger written before records kept their agent beside them
/// (migration 0009) gets it from the migration: the top-level `agent` of
/// every payload that names one as a string — one holding an escaped NUL
/// elsewhere, which `jsonb` refuses, included, beside the text `\u0000`
/// — and none where the payload names none, not as a string, or with a
/// NUL in it. Filtering by agent then finds exactly those records, by the
/// column; records appended afterwards have theirs, an agent with a NUL
/// fails no batch, and a record an earlier version appends without its
/// agent (a rolling upgrade) gets it.
#[tokio::test]
async fn an_older_postgres_ledger_gets_its_agents_from_the_migration() {
    use sqlx::Connection as _;
    let Some(db) = clearance_testkit::TestDb::create().await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::migrate!("./migrations/postgres")
        .run_to(8, &mut conn)
        .await
        .unwrap();
    let payloads = [
        r#"{"agent":"bot-1","n":1}"#,
        r#"{"agent":"bot-1","note":"a \u0000 in it"}"#,
        r#"{"agent":7}"#,
        r#"["agent"]"#,
        r#"{"identity":{"agent":"bot-1"}}"#,
        r#"{"agent":"bot-2","note":"\\u0000 is no NUL"}"#,
        r#"{"agent":"bot-2","a":"\u0000","b":"\\u0000"}"#,
        r#"{"agent":"bot-\u0000"}"#,
        "not json",
    ];
    let zeros = "0".repeat(64);
    for (seq, payload) in (1_i64..).zip(payloads) {
        sqlx::query(
            "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash) VALUES ($1, $2, 'note', $3, $4, $4)",
        )
        .bind(seq)
        .bind(clearance_store::timestamp_text(at(seq)))
        .bind(payload)
        .bind(&zeros)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let store = clearance_store::PostgresStore::connect(&db.url)
        .await
        .unwrap();
    let agents: Vec<Option<String>> = sqlx::query_scalar("SELECT agent FROM ledger ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let bot = |name: &str| Some(name.to_owned());
    assert_eq!(
        agents,
        [
            bot("bot-1"),
            bot("bot-1"),
            None,
            None,
            None,
            bot("bot-2"),
            bot("bot-2"),
            None,
            None
        ]
    );
    let filtered = |agent: &str| {
        let filter = LedgerFilter {
            limit: 50,
            agent: Some(agent.to_owned()),
            ..LedgerFilter::default()
        };
        let store = &store;
        async move {
            store
                .ledger_page(&filter)
                .await
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<u64>>()
        }
    };
    assert_eq!(filtered("bot-1").await, [2, 1]);
    assert_eq!(filtered("bot-2").await, [7, 6]);
    assert_eq!(filtered("7").await, Vec::<u64>::new());
    store.append(execution(3)).await.unwrap();
    assert_eq!(filtered("bot-0").await, [10], "bot-0's execution");
    // An agent holding a NUL is stored without one, not a failed batch.
    let mut nul = execution(4);
    nul.payload = r#"{"agent":"bot-\u0000","n":4}"#.into();
    store.append(nul).await.unwrap();
    // A record appended without its agent, as an instance of an earlier
    // version appends during a rolling upgrade, gets it all the same.
    sqlx::query(
        "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash) VALUES (12, $1, 'note', $2, $3, $3)",
    )
    .bind(clearance_store::timestamp_text(at(12)))
    .bind(r#"{"agent":"bot-1","n":12}"#)
    .bind(&zeros)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(filtered("bot-1").await, [12, 2, 1]);
    let agents: Vec<Option<String>> =
        sqlx::query_scalar("SELECT agent FROM ledger WHERE seq >= 10 ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(agents, [bot("bot-0"), None, bot("bot-1")]);
}
