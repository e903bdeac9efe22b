//! The ledger on a real SQLite file and a real PostgreSQL database:
//! group-committed appends keep one unbroken chain across restarts and
//! across writers, and `verify` names the first record after any
//! modification, deletion, reordering or insertion made directly in the
//! database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::{future::Future, sync::Arc};

use clearance_store::{AuditQuery, Store, StoreError};
use support::{Place, execution, fill};

async fn concurrent_appends_form_one_chain_that_survives_a_restart<S, F, Fut>(
    _place: &Place,
    open: F,
) where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 300).await;
    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (300, None));
    drop(store);
    let reopened = Arc::new(open().await);
    fill(&reopened, 300, 10).await;
    let report = reopened.verify().await.unwrap();
    assert_eq!(
        (report.verified, report.first_break),
        (310, None),
        "the chain continues after a restart"
    );
}
on_both!(concurrent_appends_form_one_chain_that_survives_a_restart);

async fn two_writers_on_one_database_extend_one_chain<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let a = Arc::new(open().await);
    let b = Arc::new(open().await);
    let (x, y) = tokio::join!(fill(&a, 0, 200), fill(&b, 200, 200));
    let ((), ()) = (x, y);
    let report = a.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (400, None));
}
on_both!(two_writers_on_one_database_extend_one_chain);

async fn audit_pages_filter_by_kind_and_agent<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 30).await;
    let page = |after, agent: Option<&str>| AuditQuery {
        after,
        limit: 4,
        kind: Some("decision".into()),
        agent: agent.map(Into::into),
    };
    let first = store.audit(&page(0, Some("bot-1"))).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|r| r.payload.contains("\"bot-1\"")));
    let next = store
        .audit(&page(first[3].seq, Some("bot-1")))
        .await
        .unwrap();
    assert!(next[0].seq > first[3].seq);
    let none = store
        .audit(&AuditQuery {
            after: 0,
            limit: 10,
            kind: Some("approval.approved".into()),
            agent: None,
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}
on_both!(audit_pages_filter_by_kind_and_agent);

/// Fills 10 records, tampers with `sql`, and returns the first break.
async fn first_break_after<S, F, Fut>(place: &Place, open: F, sql: &str) -> (u64, String)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 10).await;
    place.raw(sql).await;
    let broken = store.verify().await.unwrap().first_break.unwrap();
    (broken.seq, broken.problem)
}

async fn a_modified_record_is_named<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let (seq, problem) = first_break_after(
        place,
        open,
        "UPDATE ledger SET payload = '{\"agent\":\"bot-0\",\"n\":999}' WHERE seq = 5",
    )
    .await;
    assert_eq!(seq, 5);
    assert!(problem.contains("modified"), "{problem}");
}
on_both!(a_modified_record_is_named);

async fn a_deleted_record_is_named<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let (seq, problem) = first_break_after(place, open, "DELETE FROM ledger WHERE seq = 7").await;
    assert_eq!(seq, 8);
    assert!(problem.contains("missing"), "{problem}");
}
on_both!(a_deleted_record_is_named);

async fn reordered_records_are_named<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    // Swap the contents of records 3 and 4, keeping their numbers.
    let sql = "UPDATE ledger SET seq = 1000 WHERE seq = 3;
               UPDATE ledger SET seq = 3 WHERE seq = 4;
               UPDATE ledger SET seq = 4 WHERE seq = 1000;";
    let (seq, _) = first_break_after(place, open, sql).await;
    assert_eq!(seq, 3);
}
on_both!(reordered_records_are_named);

async fn an_inserted_record_is_named<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let sql = "UPDATE ledger SET seq = seq + 1000 WHERE seq > 4;
               UPDATE ledger SET seq = seq - 999 WHERE seq > 1000;
               INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash)
                 SELECT 5, at, kind, '{\"forged\":true}', hash, hash FROM ledger WHERE seq = 4;";
    let (seq, _) = first_break_after(place, open, sql).await;
    assert_eq!(seq, 5);
}
on_both!(an_inserted_record_is_named);

/// More records than three pages of verification (2,000 each), read while
/// the page before is hashed: the whole chain verifies, and a break on a
/// later page or at a page's first record is named, the earliest first.
async fn verify_reads_page_after_page_and_names_the_earliest_break<S, F, Fut>(
    place: &Place,
    open: F,
) where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 4_500).await;
    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (4_500, None));
    let head = store.records(4_499, 1).await.unwrap().remove(0).hash;
    assert_eq!(report.head, head);

    place
        .raw("UPDATE ledger SET payload = '{\"agent\":\"bot-0\",\"n\":999}' WHERE seq = 4321")
        .await;
    let report = store.verify().await.unwrap();
    assert_eq!(report.verified, 4_320);
    assert_eq!(report.first_break.unwrap().seq, 4_321);

    place.raw("DELETE FROM ledger WHERE seq = 2001").await;
    let report = store.verify().await.unwrap();
    let broken = report.first_break.unwrap();
    assert_eq!((report.verified, broken.seq), (2_000, 2_002));
    assert!(broken.problem.contains("missing"), "{}", broken.problem);
}
on_both!(verify_reads_page_after_page_and_names_the_earliest_break);

/// Verification reads pages by number, several at once: records deleted
/// at a page's end, across whole pages, from the first or from the tail
/// read as the gap they leave, the earliest named first.
async fn a_gap_is_named_wherever_it_falls_against_the_pages<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 6_500).await;
    // Each gap before the ones already made, so that it is the first.
    for (deleted, verified, first_break) in [
        // The tail: a chain alone cannot tell (signed checkpoints can).
        ((6_001, 6_500), 6_000, None),
        // The last record of the second page.
        ((4_000, 4_000), 3_999, Some(4_001)),
        // The rest of that page: (2000, 4000] gone whole.
        ((2_001, 3_999), 2_000, Some(4_001)),
        // Into the page before: the gap now spans more than a page.
        ((1_500, 2_000), 1_499, Some(4_001)),
        // The very first record.
        ((1, 1), 0, Some(2)),
    ] {
        let (from, to) = deleted;
        place
            .raw(&format!(
                "DELETE FROM ledger WHERE seq >= {from} AND seq <= {to}"
            ))
            .await;
        let report = store.verify().await.unwrap();
        let found = report.first_break.as_ref().map(|b| b.seq);
        assert_eq!(
            (report.verified, found),
            (verified, first_break),
            "{from}..={to}"
        );
        if let Some(broken) = report.first_break {
            assert!(broken.problem.contains("missing"), "{}", broken.problem);
        }
    }
}
on_both!(a_gap_is_named_wherever_it_falls_against_the_pages);

/// A record numbered 0 or below is read by no reader that goes by number,
/// yet a listing of the table shows it: the chain does not verify whole
/// while one is there, however sound the records from 1 on are.
async fn a_record_numbered_outside_the_chain_is_named<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 2_500).await;
    let copy = |seq: i64| {
        format!(
            "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash)
             SELECT {seq}, at, kind, payload, prev_hash, hash FROM ledger WHERE seq = 7"
        )
    };
    // Each lower than the one before, so that it is the one named.
    for seq in [0, -3, -2_000_000_000_000] {
        place.raw(&copy(seq)).await;
        let report = store.verify().await.unwrap();
        assert_eq!(
            report.verified, 2_500,
            "{seq}: every numbered record verifies"
        );
        let broken = report
            .first_break
            .expect("a record outside the chain is a break");
        assert_eq!(broken.seq, 0);
        assert!(
            broken.problem.contains(&format!("numbered {seq},")),
            "{}",
            broken.problem
        );
    }
    place.raw("DELETE FROM ledger WHERE seq <= 0").await;
    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (2_500, None));
}
on_both!(a_record_numbered_outside_the_chain_is_named);

/// The ledger's table rebuilt without its primary key, as someone
/// rewriting the database could.
const SQLITE_WITHOUT_KEY: &str = "
    CREATE TABLE keyless (seq INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
                          payload NOT NULL, prev_hash NOT NULL, hash NOT NULL, agent TEXT);
    INSERT INTO keyless SELECT seq, at, kind, payload, prev_hash, hash, agent FROM ledger ORDER BY seq;
    DROP TABLE ledger;
    ALTER TABLE keyless RENAME TO ledger;";

/// A second record under a number the chain holds: a copy that decodes
/// where a page ends (the row reader reads on after the number it read
/// last), and one that does not in a page's middle (read again record by
/// record, it is stepped over too). Each is a break naming its number,
/// and with it gone the chain verifies whole again.
async fn a_number_two_records_share_is_named<S: Store>(place: &Place, store: &S) {
    let copies = [
        (
            2_000,
            "SELECT seq, at, 'forged', '{\"agent\":\"evil\"}', prev_hash, hash FROM ledger WHERE seq = 2000",
        ),
        (
            10,
            "SELECT seq, at, 'forged', '{\"agent\":\"evil\"}', prev_hash, 'zz' FROM ledger WHERE seq = 10",
        ),
    ];
    for (number, copy) in copies {
        place
            .raw(&format!(
                "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash) {copy}"
            ))
            .await;
        let report = store.verify().await.unwrap();
        let broken = report
            .first_break
            .expect("a second record under a number is a break");
        assert_eq!(broken.seq, number, "{}", broken.problem);
        assert!(
            broken.problem.contains(&number.to_string()),
            "{}",
            broken.problem
        );
        place.raw("DELETE FROM ledger WHERE kind = 'forged'").await;
    }
    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (2_005, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_two_records_share_is_named_sqlite() {
    let place = Place::sqlite();
    fill(&Arc::new(place.open_sqlite().await), 0, 2_005).await;
    place.raw(SQLITE_WITHOUT_KEY).await;
    let store = clearance_store::SqliteStore::open_read_only(&place.sqlite_path())
        .await
        .unwrap();
    a_number_two_records_share_is_named(&place, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_two_records_share_is_named_postgres() {
    let Some(place) = Place::postgres().await else {
        return;
    };
    let store = place.open_postgres().await;
    fill(&Arc::new(place.open_postgres().await), 0, 2_005).await;
    place
        .raw("ALTER TABLE ledger DROP CONSTRAINT ledger_pkey")
        .await;
    a_number_two_records_share_is_named(&place, &store).await;
}

async fn a_rehashed_record_breaks_its_successor<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 10).await;
    // Forge record 2 with a correct hash of its new content: only record 3,
    // which names the old hash, can give it away.
    let original = store.records(1, 1).await.unwrap().remove(0);
    let forged = clearance_engine::ledger::LedgerRecord::chained(
        original.seq,
        original.at.clone(),
        original.kind.clone(),
        "{\"forged\":true}".into(),
        original.prev_hash,
    );
    place
        .raw(&format!(
            "UPDATE ledger SET payload = '{}', hash = '{}' WHERE seq = 2",
            forged.payload,
            forged.hash.to_hex()
        ))
        .await;
    let broken = store.verify().await.unwrap().first_break.unwrap();
    assert_eq!(broken.seq, 3);
}
on_both!(a_rehashed_record_breaks_its_successor);

async fn imported_records_must_continue_the_chain<S, F, Fut>(_place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let source = Arc::new(open().await);
    fill(&source, 0, 20).await;
    let records = source.records(0, 100).await.unwrap();
    // A second ledger in the same database would share its table; copy into
    // a fresh place of the same backend instead.
    let target_place = match _place {
        Place::Sqlite(_) => Place::sqlite(),
        Place::Postgres(_) => Place::postgres().await.unwrap(),
    };
    let target_path = target_place;
    let copy = |records: Vec<_>| async {
        match &target_path {
            Place::Sqlite(_) => {
                let store = target_path.open_sqlite().await;
                let effects = vec![Vec::new(); 20];
                store.import(records, effects).await
            }
            Place::Postgres(_) => {
                let store = target_path.open_postgres().await;
                let effects = vec![Vec::new(); 20];
                store.import(records, effects).await
            }
        }
    };
    let skipped = records[1..].to_vec();
    assert!(
        matches!(copy(skipped).await, Err(StoreError::Conflict(_))),
        "a copy that does not start at the target's head is refused"
    );
    assert_eq!(copy(records[..10].to_vec()).await.unwrap(), 10);
    assert_eq!(copy(records[10..].to_vec()).await.unwrap(), 20);
}
on_both!(imported_records_must_continue_the_chain);

/// The database lost its last records (a failover to a replica that
/// lagged, a restore from a backup): the store this instance holds has
/// applied past the ledger's end, so it writes nothing — a record written
/// now would take a number it believes it has seen, a kill switch among
/// them never applied — until it is restarted on the ledger as it is.
async fn a_ledger_that_ends_before_what_was_applied_takes_no_writes<S, F, Fut>(
    place: &Place,
    open: F,
) where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 10).await;
    place.raw("DELETE FROM ledger WHERE seq > 7").await;
    for _ in 0..2 {
        let refused = store.append(execution(10)).await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Unavailable(why) if why.contains("lost records")),
            "{refused:?}"
        );
    }
    // Restarted on the ledger as it is, it writes again from there.
    drop(store);
    let store = open().await;
    let receipt = store.append(execution(10)).await.unwrap();
    assert_eq!(receipt.seq, 8);
}
on_both!(a_ledger_that_ends_before_what_was_applied_takes_no_writes);

/// A payload past what any reader takes (64 MiB: more is a break when
/// read back) is refused at append, and nothing of it is written; the
/// entries around it in the same batch are.
async fn a_payload_past_the_record_bound_is_refused_and_not_written<S, F, Fut>(
    _place: &Place,
    open: F,
) where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 3).await;
    let mut huge = execution(3);
    huge.payload = format!(r#"{{"agent":"bot-0","pad":"{}"}}"#, " ".repeat(64 << 20));
    let (before, refused, after) = tokio::join!(
        store.append(execution(4)),
        store.append(huge),
        store.append(execution(5))
    );
    let refused = refused.expect_err("a payload past 64 MiB is refused");
    assert!(
        matches!(&refused, StoreError::Conflict(why) if why.contains("more than the 67108864")),
        "{refused}"
    );
    before.unwrap();
    after.unwrap();
    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (5, None));
    let records = store.records(0, 10).await.unwrap();
    assert!(records.iter().all(|r| r.payload.len() < 100));
}
on_both!(a_payload_past_the_record_bound_is_refused_and_not_written);

/// The head's hash is read bounded, as every stored hash is: a ledger whose
/// last record holds a longer one takes no writes, and says why.
async fn a_head_hash_past_its_bound_takes_no_writes<S, F, Fut>(place: &Place, open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = Arc::new(open().await);
    fill(&store, 0, 3).await;
    place
        .raw("UPDATE ledger SET hash = hash || hash || hash WHERE seq = 3")
        .await;
    let refused = store.append(execution(3)).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Corrupt(why)
            if why.contains("`hash` is missing or holds more than the 64 bytes")),
        "{refused:?}"
    );
}
on_both!(a_head_hash_past_its_bound_takes_no_writes);

/// Two writers on a PostgreSQL server whose default isolation is
/// REPEATABLE READ: each batch still reads the head after the lock's wait
/// (its transaction is READ COMMITTED whatever the default), so neither
/// reuses a number the other took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_extend_one_chain_whatever_the_servers_default_isolation() {
    let Some(place) = Place::postgres().await else {
        return;
    };
    place
        .raw(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', current_database(), 'repeatable read'); END $$",
        )
        .await;
    let a = Arc::new(place.open_postgres().await);
    let b = Arc::new(place.open_postgres().await);
    let (x, y) = tokio::join!(fill(&a, 0, 200), fill(&b, 200, 200));
    let ((), ()) = (x, y);
    let report = a.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (400, None));
}

/// A record inserted twice (possible only with the primary key dropped)
/// is a break wherever it falls: verification reads every row numbered in
/// a page, where reading on after the last record read would step over a
/// copy of the record a page ended on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_inserted_twice_is_named_even_where_a_page_ends() {
    let Some(place) = Place::postgres().await else {
        return;
    };
    let store = Arc::new(place.open_postgres().await);
    fill(&store, 0, 4_500).await;
    place
        .raw("ALTER TABLE ledger DROP CONSTRAINT ledger_pkey")
        .await;
    // The newest record, then the last of the first page: each before the
    // one already made, so that it is the first.
    for seq in [4_500, 2_000] {
        place
            .raw(&format!(
                "INSERT INTO ledger SELECT * FROM ledger WHERE seq = {seq}"
            ))
            .await;
        let report = store.verify().await.unwrap();
        let broken = report.first_break.unwrap();
        assert_eq!((report.verified, broken.seq), (seq, seq));
        assert!(
            broken.problem.contains(&(seq + 1).to_string()),
            "{}",
            broken.problem
        );
    }
}
