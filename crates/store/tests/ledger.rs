//! The ledger on a real SQLite file: group-committed appends keep one
//! unbroken chain across restarts, and `verify` names the first record
//! after any modification, deletion, reordering or insertion made directly
//! in the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{path::Path, sync::Arc};

use clearance_store::{AuditQuery, DecisionRow, Effect, Entry, SqliteStore, Store, timestamp_text};
use sqlx::{Connection, SqliteConnection};

fn entry(n: usize) -> Entry {
    Entry {
        at: timestamp_text(jiff::Timestamp::from_second(1_800_000_000 + n as i64).unwrap()),
        kind: "decision",
        payload: format!(r#"{{"agent":"bot-{}","n":{n}}}"#, n % 3),
        effects: vec![Effect::Decision(DecisionRow {
            id: format!("dec-{n}"),
            seq: 0,
            agent: format!("bot-{}", n % 3),
            action: "kubectl:scale".into(),
            outcome: "allow".into(),
            impact: "high".into(),
            execution: true,
            at: timestamp_text(jiff::Timestamp::from_second(1_800_000_000 + n as i64).unwrap()),
            reported: None,
        })],
    }
}

async fn filled(path: &Path, n: usize) -> SqliteStore {
    let store = SqliteStore::open(path).await.unwrap();
    let shared = Arc::new(store.clone());
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = shared.clone();
            tokio::spawn(async move { s.append(entry(i)).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=n as u64).collect::<Vec<_>>(),
        "every append got its own place in the chain"
    );
    store
}

async fn raw(path: &Path, sql: &str) {
    let mut connection = SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_form_one_chain_that_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clearance.db");
    let store = filled(&path, 1_000).await;
    let report = store.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (1_000, None));
    assert!(
        store
            .find_decision("dec-999")
            .await
            .unwrap()
            .is_some_and(|d| d.seq >= 1 && d.execution)
    );
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.append(entry(1_000)).await.unwrap().seq, 1_001);
    assert_eq!(reopened.verify().await.unwrap().verified, 1_001);
}

#[tokio::test]
async fn audit_pages_filter_by_kind_and_agent() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(&dir.path().join("c.db"), 30).await;
    let page = store
        .audit(&AuditQuery {
            after: 5,
            limit: 4,
            kind: Some("decision".into()),
            agent: Some("bot-1".into()),
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 4);
    assert!(
        page.iter()
            .all(|r| r.seq > 5 && r.payload.contains("\"bot-1\""))
    );
    assert!(page.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        store
            .audit(&AuditQuery {
                after: 0,
                limit: 10,
                kind: Some("approval.approved".into()),
                agent: None
            })
            .await
            .unwrap()
            .is_empty()
    );
}

async fn first_break_after(sql: &str) -> (u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clearance.db");
    drop(filled(&path, 50).await);
    raw(&path, sql).await;
    let store = SqliteStore::open_read_only(&path).await.unwrap();
    let report = store.verify().await.unwrap();
    let found = report.first_break.expect("tampering must be found");
    (found.seq, found.problem)
}

#[tokio::test]
async fn a_modified_record_is_named() {
    let (seq, problem) = first_break_after(
        r#"UPDATE ledger SET payload = '{"agent":"bot-0","n":"forged"}' WHERE seq = 17"#,
    )
    .await;
    assert_eq!(seq, 17);
    assert!(problem.contains("modified"), "{problem}");
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let (seq, problem) = first_break_after("DELETE FROM ledger WHERE seq = 23").await;
    assert_eq!(seq, 24, "{problem}");
    assert!(problem.contains("expected record 23"), "{problem}");
}

#[tokio::test]
async fn reordered_records_are_named() {
    let (seq, _) = first_break_after("UPDATE ledger SET seq = -1 WHERE seq = 30; UPDATE ledger SET seq = 30 WHERE seq = 31; UPDATE ledger SET seq = 31 WHERE seq = -1;").await;
    assert_eq!(seq, 30);
}

#[tokio::test]
async fn an_inserted_record_is_named() {
    let sql = "UPDATE ledger SET seq = seq + 1000 WHERE seq > 40; UPDATE ledger SET seq = seq - 999 WHERE seq > 1000;
               INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash)
               SELECT 41, at, kind, '{\"forged\":true}', hash, hash FROM ledger WHERE seq = 40;";
    let (seq, _) = first_break_after(sql).await;
    assert_eq!(seq, 41);
}

#[tokio::test]
async fn a_rehashed_record_breaks_its_successor() {
    // Rewriting a record and its own hash is not enough: the next record
    // still names the old hash.
    let (seq, problem) = first_break_after("UPDATE ledger SET payload = '{}', hash = '0000000000000000000000000000000000000000000000000000000000000000' WHERE seq = 10").await;
    assert_eq!(seq, 10, "{problem}");
}

#[test]
fn stored_timestamps_sort_as_text() {
    let early = timestamp_text("2026-11-21T12:00:00Z".parse().unwrap());
    let later = timestamp_text("2026-11-21T12:00:00.5Z".parse().unwrap());
    assert_eq!(early, "2026-11-21T12:00:00.000000Z");
    assert!(early < later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_file_extend_one_chain() {
    // `clearance token issue --db` beside a running server: the second
    // writer must chain after the first, never fork from a stale head.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clearance.db");
    let server = SqliteStore::open(&path).await.unwrap();
    let cli = SqliteStore::open(&path).await.unwrap();
    for n in 0..20 {
        let writer = if n % 3 == 0 { &cli } else { &server };
        writer.append(entry(n)).await.unwrap();
    }
    let report = server.verify().await.unwrap();
    assert_eq!((report.verified, report.first_break), (20, None));
}
