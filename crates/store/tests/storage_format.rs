//! Ledger storage format 2 on a real SQLite file (docs/ledger.md,
//! "Storage"): records are written compressed with raw-byte hashes and read
//! back exactly; a file whose older records are format 1 (text) verifies
//! whole, reads both, filters both by agent, and names a modified record of
//! either format; a stored payload that is not a frame is a break, not a
//! crash.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::sync::Arc;

use clearance_engine::ledger::LedgerRecord;
use clearance_store::{AuditQuery, SqliteStore, Store};
use sqlx::{Connection, Row, SqliteConnection};
use support::{Place, execution, fill};

async fn filled(place: &Place, n: usize) -> Arc<SqliteStore> {
    let store = Arc::new(place.open_sqlite().await);
    for i in 0..n {
        store.append(execution(i)).await.unwrap();
    }
    store
}

async fn connect(place: &Place) -> SqliteConnection {
    let url = format!("sqlite:{}", place.sqlite_path().display());
    SqliteConnection::connect(&url).await.unwrap()
}

/// `(typeof(payload), typeof(hash), length(payload))` of every row.
async fn storage(place: &Place) -> Vec<(String, String, i64)> {
    let mut conn = connect(place).await;
    sqlx::query("SELECT typeof(payload), typeof(hash), length(payload) FROM ledger ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// Rewrites records `1..=last` as an older clearance wrote them: text
/// payloads, hex hashes, no agent column.
async fn as_format_1(place: &Place, records: &[LedgerRecord], last: u64) {
    let mut conn = connect(place).await;
    for record in records.iter().filter(|r| r.seq <= last) {
        sqlx::query(
            "UPDATE ledger SET payload = ?, prev_hash = ?, hash = ?, agent = NULL WHERE seq = ?",
        )
        .bind(&record.payload)
        .bind(record.prev_hash.to_hex())
        .bind(record.hash.to_hex())
        .bind(i64::try_from(record.seq).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stored_compressed_and_read_back_exactly() {
    let place = Place::sqlite();
    let store = filled(&place, 40).await;
    let records = store.records(0, 100).await.unwrap();
    assert_eq!(records.len(), 40);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.payload, execution(i).payload);
        // The hash is of the text: the record is what it always was.
        let again = LedgerRecord::chained(
            record.seq,
            record.at.clone(),
            record.kind.clone(),
            record.payload.clone(),
            record.prev_hash,
        );
        assert_eq!(again.hash, record.hash);
    }
    for (payload, hash, _) in storage(&place).await {
        assert_eq!((payload.as_str(), hash.as_str()), ("blob", "blob"));
    }
    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (40, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_format_1_records_before_format_2_ones_verifies_and_reads_both() {
    let place = Place::sqlite();
    let store = filled(&place, 30).await;
    let before = store.records(0, 100).await.unwrap();
    as_format_1(&place, &before, 12).await;
    let kinds: Vec<String> = storage(&place).await.into_iter().map(|s| s.0).collect();
    assert_eq!(kinds[..12], vec!["text".to_owned(); 12]);
    assert_eq!(kinds[12..], vec!["blob".to_owned(); 18]);

    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (30, None));
    assert_eq!(store.records(0, 100).await.unwrap(), before);

    // `bot-1`'s records of both formats: the agent column for format 2,
    // the text for format 1.
    let bot_1 = store
        .audit(&AuditQuery {
            after: 0,
            limit: 100,
            kind: None,
            agent: Some("bot-1".into()),
        })
        .await
        .unwrap();
    let seqs: Vec<u64> = bot_1.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=30).filter(|s| (s - 1) % 3 == 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modified_record_of_either_format_is_named() {
    for (format_1_up_to, modified) in [(12, 5), (12, 20)] {
        let place = Place::sqlite();
        let store = filled(&place, 30).await;
        let records = store.records(0, 100).await.unwrap();
        as_format_1(&place, &records, format_1_up_to).await;
        // Rewritten in the other format's way: compressed text is replaced
        // by plain text of another content, and the other way round.
        let mut conn = connect(&place).await;
        sqlx::query("UPDATE ledger SET payload = ? WHERE seq = ?")
            .bind(r#"{"agent":"bot-0","n":999}"#)
            .bind(modified)
            .execute(&mut conn)
            .await
            .unwrap();
        let broken = store.verify().await.unwrap().first_break.unwrap();
        assert_eq!(broken.seq, modified as u64);
        assert!(broken.problem.contains("modified"), "{}", broken.problem);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_payload_that_is_not_a_frame_is_a_break_not_a_crash() {
    let place = Place::sqlite();
    let store = filled(&place, 10).await;
    place
        .raw("UPDATE ledger SET payload = X'28b52ffd00ff' WHERE seq = 6")
        .await;
    let report = store.verify().await.unwrap();
    let broken = report.first_break.unwrap();
    assert_eq!((report.verified, broken.seq), (5, 6));
    place
        .raw("UPDATE ledger SET payload = X'00', hash = X'0102' WHERE seq = 6")
        .await;
    assert_eq!(store.verify().await.unwrap().first_break.unwrap().seq, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_payload_pages_into_the_ledger_is_named() {
    let place = Place::sqlite();
    let store = Arc::new(place.open_sqlite().await);
    fill(&store, 0, 4_500).await;
    // On the second page of verification (2,000 records each): the first
    // page verifies, the second is read again a record at a time.
    place
        .raw("UPDATE ledger SET payload = X'28b52ffd00ff' WHERE seq = 2500")
        .await;
    let report = store.verify().await.unwrap();
    let broken = report.first_break.unwrap();
    assert_eq!((report.verified, broken.seq), (2_499, 2_500));
}
