#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

//! The packed read against the row-by-row one, on a real SQLite file: the
//! same digests for every record it takes, and nothing taken that the row
//! reader would judge otherwise.

use std::ops::ControlFlow;

use clearance_engine::ledger::{ChainBreak, ChainVerifier, LedgerRecord, RecordDigests};
use sqlx::sqlite::SqlitePoolOptions;
use tempfile::TempDir;

use crate::{
    StoreError,
    backend::Backend,
    sqlite::{Sqlite, options},
    stored::{encode_digest, encode_payload},
    verify::VerifyPage,
};

/// A migrated SQLite file with nothing in it, and its backend.
struct File {
    _dir: TempDir,
    backend: Sqlite,
}

async fn empty_file() -> File {
    empty_file_in("UTF-8").await
}

/// [`empty_file`] with its text in `encoding`.
async fn empty_file_in(encoding: &str) -> File {
    let dir = tempfile::tempdir().unwrap();
    let options = options(&dir.path().join("ledger.db"))
        .unwrap()
        .pragma("encoding", format!("'{encoding}'"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
        .unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .unwrap();
    File {
        _dir: dir,
        backend: Sqlite { pool, options },
    }
}

/// Payloads a ledger can hold, the awkward ones included.
fn payload(n: u64) -> String {
    match n % 6 {
        0 => format!(r#"{{"agent":"bot-{n}","decision":{{"outcome":"allow","reasons":[]}}}}"#),
        1 => String::new(),
        2 => format!("ünïcödé ✓ {n}"),
        3 => format!("a\0b;{n} t3 b32"),
        4 => "x".repeat(70_000 + n as usize),
        _ => format!(r#"{{"n":{n}}}"#),
    }
}

/// `n` chained records, written as format 1 where `format_1` says so and
/// as format 2 elsewhere.
async fn fill(file: &File, n: u64, format_1: impl Fn(u64) -> bool) -> Vec<LedgerRecord> {
    fill_with(file, n, format_1, payload).await
}

/// [`fill`] with payloads of `payload`.
async fn fill_with(
    file: &File,
    n: u64,
    format_1: impl Fn(u64) -> bool,
    payload: fn(u64) -> String,
) -> Vec<LedgerRecord> {
    fill_kinds(file, n, format_1, payload, kind).await
}

/// Every fourth record an approval, the others decisions.
fn kind(seq: u64) -> String {
    if seq.is_multiple_of(4) {
        "approval.approved".into()
    } else {
        "decision".into()
    }
}

/// [`fill_with`] with kinds of `kind`.
async fn fill_kinds(
    file: &File,
    n: u64,
    format_1: impl Fn(u64) -> bool,
    payload: fn(u64) -> String,
    kind: fn(u64) -> String,
) -> Vec<LedgerRecord> {
    let mut records: Vec<LedgerRecord> = Vec::new();
    for seq in 1..=n {
        let prev = records.last().map_or(Default::default(), |r| r.hash);
        let at = format!("2026-12-05T10:00:{:02}.{seq:06}Z", seq % 60);
        let record = LedgerRecord::chained(seq, at, kind(seq), payload(seq), prev);
        let insert = sqlx::query(
            "INSERT INTO ledger (seq, at, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(i64::try_from(seq).unwrap())
        .bind(&record.at)
        .bind(&record.kind);
        let insert = if format_1(seq) {
            insert
                .bind(record.payload.clone())
                .bind(record.prev_hash.to_hex())
                .bind(record.hash.to_hex())
        } else {
            insert
                .bind(encode_payload(&record.payload).unwrap())
                .bind(encode_digest(&record.prev_hash))
                .bind(encode_digest(&record.hash))
        };
        insert.execute(&file.backend.pool).await.unwrap();
        records.push(record);
    }
    records
}

async fn raw(file: &File, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    sqlx::raw_sql(sql)
        .execute(&file.backend.pool)
        .await
        .unwrap();
}

/// What verifying the whole file says: how many records verified, and
/// the first break. The observer must have seen exactly the verified
/// records, once each, in order, however their pages were read.
async fn verified(file: &File) -> (u64, Option<ChainBreak>) {
    let mut seen = Vec::new();
    let report = crate::verify::verify(&file.backend, &mut |seq, _| {
        seen.push(seq);
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert_eq!(
        seen,
        (1..=report.verified).collect::<Vec<_>>(),
        "the observer sees every verified record, once, in order"
    );
    (report.verified, report.first_break)
}

/// The first break, after exactly `verified` records verified.
async fn broken_at(file: &File, verified: u64) -> ChainBreak {
    let (count, first_break) = self::verified(file).await;
    assert_eq!(count, verified, "{first_break:?}");
    first_break.unwrap()
}

fn digests_of(records: &[LedgerRecord]) -> Vec<RecordDigests> {
    records.iter().map(RecordDigests::of_record).collect()
}

/// `digests` up to and including the first record whose content does not
/// hash to its stored hash: where a packed page stops hashing, since the
/// chain breaks there at the latest.
fn until_modified(mut digests: Vec<RecordDigests>) -> Vec<RecordDigests> {
    if let Some(first) = digests.iter().position(|d| !d.matches_its_hash()) {
        digests.truncate(first + 1);
    }
    digests
}

/// Hashing a packed page stops after the first record whose content does
/// not hash to its stored hash — the chain breaks there at the latest — so
/// a page of frames each claiming 64 MiB costs one of them, not a page.
#[tokio::test]
async fn a_packed_page_stops_hashing_at_the_first_modified_record() {
    let file = empty_file().await;
    fill(&file, 50, |seq| seq % 2 == 0).await;
    raw(&file, "UPDATE ledger SET payload = '{}' WHERE seq >= 20").await;
    let digests = file
        .backend
        .verify_page(0, 100)
        .await
        .unwrap()
        .digests()
        .unwrap();
    let seqs: Vec<u64> = digests.iter().map(|d| d.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    assert!(!digests[19].matches_its_hash());
    assert!(digests[..19].iter().all(RecordDigests::matches_its_hash));
    let (count, first_break) = verified(&file).await;
    assert_eq!((count, first_break.map(|b| b.seq)), (19, Some(20)));
}

#[tokio::test]
async fn a_packed_page_hashes_as_its_rows_read_one_by_one() {
    let file = empty_file().await;
    fill(&file, 250, |seq| seq % 3 == 0 || (100..140).contains(&seq)).await;
    for (after, limit) in [
        (0, 100),
        (0, 250),
        (0, 1_000),
        (37, 50),
        (249, 10),
        (250, 10),
    ] {
        let rows = file.backend.page(after, limit).await.unwrap();
        let packed = file.backend.verify_page(after, limit).await.unwrap();
        assert_eq!(packed.count(), rows.len(), "after {after}, limit {limit}");
        assert_eq!(packed.last, rows.last().map(|r| r.seq));
        let digests = packed.digests();
        assert_eq!(
            digests,
            Some(digests_of(&rows)),
            "after {after}, limit {limit}"
        );
    }
    let whole = file.backend.verify_page(0, 1_000).await.unwrap();
    let mut chain = ChainVerifier::default();
    for record in whole.digests().unwrap() {
        chain.check(&record).unwrap();
    }
    assert_eq!(chain.verified(), 250);
}

/// What the quick read must do with a tampered record.
#[derive(Debug, PartialEq)]
enum Quick {
    /// Read it, to the same digests as the row reader.
    Takes,
    /// Leave the page to the row reader.
    GivesUp,
}

/// Verifies a record at a time through the row reader alone: what the
/// packed read must agree with.
async fn verified_row_by_row(backend: &Sqlite) -> (u64, Option<ChainBreak>) {
    let mut chain = ChainVerifier::default();
    loop {
        match backend.page(chain.verified(), 1).await {
            Ok(rows) => match rows.first() {
                None => return (chain.verified(), None),
                Some(record) => {
                    if let Err(broken) = chain.push(record) {
                        return (chain.verified(), Some(broken));
                    }
                }
            },
            Err(StoreError::Corrupt(problem)) => {
                let seq = chain.verified() + 1;
                return (chain.verified(), Some(ChainBreak { seq, problem }));
            }
            Err(other) => panic!("{other}"),
        }
    }
}

/// What the row reader says of `file`, once verifying it is found to say
/// exactly the same (`case` names the file in a failure).
async fn verified_as_the_row_reader(file: &File, case: &str) -> (u64, Option<ChainBreak>) {
    let row_reader = verified_row_by_row(&file.backend).await;
    assert_eq!(verified(file).await, row_reader, "{case}");
    row_reader
}

#[tokio::test]
async fn the_packed_read_leaves_what_it_cannot_take_to_the_row_reader() {
    use Quick::{GivesUp, Takes};
    let tampered = [
        ("at = X'32303236'", GivesUp),
        ("kind = CAST(X'ff' AS TEXT)", GivesUp),
        ("payload = CAST(X'7b22ff22' AS TEXT)", GivesUp),
        ("hash = X'0102'", GivesUp),
        ("hash = 'not hex'", GivesUp),
        ("prev_hash = 7", GivesUp),
        ("payload = X'28b52ffd00ff'", GivesUp),
        // Readable, but not the quick read's to take: a newline would
        // split the field, and its `unhex` takes no sign.
        ("kind = 'decision' || char(10) || 'x'", GivesUp),
        ("hash = '+' || substr(hex(hash), 2)", GivesUp),
        // Past what a time or a kind may hold (4096 bytes), which the row
        // reader refuses unread.
        ("at = at || hex(zeroblob(2048))", GivesUp),
        ("kind = kind || hex(zeroblob(2048))", GivesUp),
        // Readable, and modified: the chain check names them. (The
        // columns' TEXT affinity stores a number as its text.)
        ("payload = 42", Takes),
        ("payload = 4.5", Takes),
        ("payload = 'a' || char(0) || 'b'", Takes),
        ("kind = 'decision;1 t2 b3'", Takes),
        ("at = 'at' || char(0)", Takes),
        ("at = substr(at || hex(zeroblob(2048)), 1, 4096)", Takes),
        ("kind = substr(kind || hex(zeroblob(2048)), 1, 4096)", Takes),
        ("hash = upper(hex(hash))", Takes),
        ("seq = 50", Takes),
    ];
    for (change, quick) in tampered {
        let file = empty_file().await;
        fill(&file, 12, |seq| seq > 9).await;
        raw(&file, &format!("UPDATE ledger SET {change} WHERE seq = 5")).await;
        let packed = file.backend.verify_page(0, 100).await.unwrap();
        let digests = packed.digests();
        match (&quick, file.backend.page(0, 100).await) {
            (Takes, Ok(rows)) => {
                assert_eq!(digests, Some(until_modified(digests_of(&rows))), "{change}")
            }
            (Takes, Err(e)) => panic!("{change}: the row reader refuses it: {e}"),
            (GivesUp, _) => assert_eq!(digests, None, "{change}"),
        }
        verified_as_the_row_reader(&file, change).await;
    }
}

#[tokio::test]
async fn pages_read_ahead_are_checked_in_order_to_the_first_break() {
    let file = empty_file().await;
    fill(&file, 4_500, |seq| seq % 2 == 0).await;
    assert_eq!(verified(&file).await, (4_500, None));
    // On the third page: found there, with the pages around it read ahead.
    raw(
        &file,
        "UPDATE ledger SET kind = 'decision.edited' WHERE seq = 4321",
    )
    .await;
    let broken = broken_at(&file, 4_320).await;
    assert_eq!(broken.seq, 4_321);
    assert!(broken.problem.contains("modified"), "{}", broken.problem);
    // On the second page, a type the quick read leaves to the row reader:
    // the row reader's words name it, before the later modification.
    raw(
        &file,
        "UPDATE ledger SET at = CAST(at AS BLOB) WHERE seq = 2500",
    )
    .await;
    assert_eq!(
        file.backend
            .verify_page(2_000, 2_000)
            .await
            .unwrap()
            .digests(),
        None
    );
    let broken = broken_at(&file, 2_499).await;
    assert_eq!(broken.seq, 2_500);
    assert!(broken.problem.contains("\"at\""), "{}", broken.problem);
}

#[tokio::test]
async fn after_a_page_read_row_by_row_the_quick_read_goes_on() {
    let file = empty_file().await;
    // On verification's second page (2,000 records each), a record the
    // row reader takes and the quick read does not: a kind holding a
    // line break, which splits the page's newline-separated kinds into a
    // piece too many. The chain is whole: the record was written so.
    fill_kinds(
        &file,
        4_500,
        |seq| seq % 2 == 0,
        payload,
        |seq| {
            if seq == 2_345 {
                "decision\nwith a line break".into()
            } else {
                kind(seq)
            }
        },
    )
    .await;
    let second = file.backend.verify_page(2_000, 2_000).await.unwrap();
    assert_eq!(second.digests(), None);
    assert!(file.backend.page(2_000, 2_000).await.is_ok());
    // The second page is read row by row and verifies, the third quickly.
    assert_eq!(verified(&file).await, (4_500, None));
    raw(
        &file,
        "UPDATE ledger SET kind = 'decision.edited' WHERE seq = 4321",
    )
    .await;
    let broken = broken_at(&file, 4_320).await;
    assert_eq!(broken.seq, 4_321);
}

#[tokio::test]
async fn a_file_whose_text_is_utf16_is_left_to_the_row_reader() {
    // SQLite would hand the quick read UTF-16 bytes, and the row reader
    // UTF-8: the same file must read the same either way.
    let file = empty_file_in("UTF-16le").await;
    let encoding: String = sqlx::query_scalar("PRAGMA encoding")
        .fetch_one(&file.backend.pool)
        .await
        .unwrap();
    assert_eq!(encoding, "UTF-16le");
    assert!(!file.backend.verify_pages_sound().await.unwrap());
    // ASCII text payloads beside 32-byte hashes: every size and type the
    // quick read checks looks right, and UTF-16 of ASCII is valid UTF-8.
    let ascii = |n: u64| format!(r#"{{"n":{n},"agent":"bot"}}"#);
    let records = fill_with(&file, 12, |_| false, ascii).await;
    for record in &records {
        sqlx::query("UPDATE ledger SET payload = ? WHERE seq = ?")
            .bind(&record.payload)
            .bind(i64::try_from(record.seq).unwrap())
            .execute(&file.backend.pool)
            .await
            .unwrap();
    }
    let page = file.backend.verify_page(0, 100).await.unwrap();
    assert_eq!(page.count(), 12);
    assert_eq!(page.digests(), None);
    assert_eq!(verified(&file).await, (12, None));
    raw(
        &file,
        "UPDATE ledger SET kind = 'decision.edited' WHERE seq = 7",
    )
    .await;
    let (row_verified, _) = verified_as_the_row_reader(&file, "").await;
    assert_eq!(row_verified, 6);
}

#[tokio::test]
async fn an_observer_sees_each_records_hash_and_can_stop_verification() {
    let file = empty_file().await;
    let records = fill(&file, 4_500, |seq| seq % 3 == 0).await;
    let mut seen = Vec::new();
    let report = crate::verify::verify(&file.backend, &mut |seq, hash| {
        seen.push((seq, *hash));
        if seq == 3_000 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await
    .unwrap();
    assert_eq!((report.verified, report.first_break), (3_000, None));
    assert_eq!(report.head, records[2_999].hash);
    let stored: Vec<_> = records[..3_000]
        .iter()
        .map(|record| (record.seq, record.hash))
        .collect();
    assert_eq!(
        seen, stored,
        "each record's own hash, up to where it stopped"
    );
}

#[tokio::test]
async fn a_gap_reads_as_a_gap_wherever_it_falls_against_the_pages() {
    // A quick page is the records numbered in a range: one short of its
    // range must not read as the ledger's end while newer records follow
    // (a short page is the row reader's to judge).
    let small = |n: u64| format!(r#"{{"n":{n}}}"#);
    for (gone, verified_before, found) in [
        ("seq = 2000", 1_999, 2_001),
        ("seq = 2001", 2_000, 2_002),
        ("seq BETWEEN 2001 AND 4000", 2_000, 4_001),
        ("seq > 1500 AND seq < 4400", 1_500, 4_400),
        ("seq > 3000", 3_000, 0),
    ] {
        let file = empty_file().await;
        fill_with(&file, 4_500, |seq| seq % 5 == 0, small).await;
        raw(&file, &format!("DELETE FROM ledger WHERE {gone}")).await;
        let (verified, first_break) = verified_as_the_row_reader(&file, gone).await;
        assert_eq!(verified, verified_before, "{gone}");
        assert_eq!(first_break.map_or(0, |b| b.seq), found, "{gone}");
    }
}

/// Closes `file`'s connections and opens new ones, which read its schema
/// afresh.
async fn reopen(file: &mut File) {
    file.backend.pool.close().await;
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(file.backend.options.clone())
        .await
        .unwrap();
    file.backend.pool = pool;
}

/// Declares `column` of the ledger `from` one type `to` another, behind
/// SQLite's back (as a file edited around SQLite can be).
async fn redeclare(file: &mut File, column: &str, from: &str, to: &str) {
    raw(
        file,
        &format!(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = replace(sql, '{column:<10}{from}', '{column:<10}{to}')
              WHERE name = 'ledger';
             PRAGMA writable_schema = OFF;"
        ),
    )
    .await;
    reopen(file).await;
}

#[tokio::test]
async fn a_number_in_a_text_column_is_left_to_the_row_reader() {
    // A TEXT column turns a number into text on the way in, so only a file
    // edited around its schema holds one; compared with a string, SQLite
    // would turn it into text again, and the quick read take it for text.
    for (column, value) in [
        ("at", "20240101"),
        ("kind", "7"),
        ("payload", "42"),
        ("at", "1.5"),
    ] {
        let mut file = empty_file().await;
        let records = fill(&file, 12, |seq| seq > 9).await;
        // Record 12 chained anew with `value` in `column`: only its type
        // is wrong.
        let last = &records[11];
        let mut fields = [last.at.clone(), last.kind.clone(), last.payload.clone()];
        let index = ["at", "kind", "payload"]
            .iter()
            .position(|name| *name == column)
            .unwrap();
        fields[index] = value.to_owned();
        let [at, kind, payload] = fields;
        let record = LedgerRecord::chained(12, at, kind, payload, records[10].hash);
        redeclare(&mut file, column, "TEXT", "BLOB").await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ledger SET {column} = {value}, hash = ? WHERE seq = 12"
        )))
        .bind(encode_digest(&record.hash))
        .execute(&file.backend.pool)
        .await
        .unwrap();
        redeclare(&mut file, column, "BLOB", "TEXT").await;
        let stored: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT typeof({column}) FROM ledger WHERE seq = 12"
        )))
        .fetch_one(&file.backend.pool)
        .await
        .unwrap();
        assert!(["integer", "real"].contains(&stored.as_str()), "{stored}");

        let page = file.backend.verify_page(0, 100).await.unwrap();
        assert_eq!(page.digests(), None, "{column} = {value}");
        let case = format!("{column} = {value}");
        let (row_verified, row_break) = verified_as_the_row_reader(&file, &case).await;
        assert_eq!(row_verified, 11, "{case}: {row_break:?}");
    }
}

#[tokio::test]
async fn a_file_whose_keys_lie_is_verified_as_the_row_reader_reads_it() {
    // Record 1001's key rewritten in place to 5000, the file edited byte
    // by byte: a range scan stops at it, short of the ledger's end, and
    // must not take that for the end (record 1200, past it, is modified).
    let small = |n: u64| format!(r#"{{"n":{n}}}"#);
    let mut file = empty_file().await;
    fill_with(&file, 2_500, |_| false, small).await;
    raw(
        &file,
        "UPDATE ledger SET kind = 'decision.edited' WHERE seq = 1200",
    )
    .await;
    raw(&file, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    file.backend.pool.close().await;
    let path = file._dir.path().join("ledger.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let mut rewritten = 0;
    for (index, page) in bytes.chunks_mut(page_size).enumerate() {
        let header = if index == 0 { 100 } else { 0 };
        // Only the table's leaves (type 13) hold records with their keys.
        if page[header] != 0x0d {
            continue;
        }
        let cells = usize::from(u16::from_be_bytes([page[header + 3], page[header + 4]]));
        for cell in 0..cells {
            let pointer = header + 8 + 2 * cell;
            let mut at = usize::from(u16::from_be_bytes([page[pointer], page[pointer + 1]]));
            // Past the cell's payload size (a varint) to its key: 1001 is
            // the varint 87 69, and 5000 is a7 08.
            while page[at] & 0x80 != 0 {
                at += 1;
            }
            at += 1;
            if page[at..at + 2] == [0x87, 0x69] {
                page[at..at + 2].copy_from_slice(&[0xa7, 0x08]);
                rewritten += 1;
            }
        }
    }
    assert_eq!(rewritten, 1);
    std::fs::write(&path, bytes).unwrap();
    reopen(&mut file).await;
    // The scan of (0, 2000] stops at the lying key.
    let page = file.backend.verify_page(0, 2_000).await.unwrap();
    assert_eq!((page.count(), page.last), (1_000, Some(1_000)));
    let (row_verified, row_break) = verified_as_the_row_reader(&file, "").await;
    assert_eq!(row_verified, 1_000);
    assert_eq!(row_break.map(|b| b.seq), Some(5_000));
}

#[tokio::test]
async fn a_ledger_whose_seq_is_not_its_rowid_is_read_by_the_row_reader_alone() {
    // The ledger made anew with `seq` declared as below: only the first
    // makes `seq` the table's rowid, so that both readers find records by
    // the table's own key whatever indexes and statistics the file holds.
    let columns = "at TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, \
                   prev_hash TEXT NOT NULL, hash TEXT NOT NULL, agent TEXT";
    let rowid_table = format!("(seq INTEGER PRIMARY KEY, {columns})");
    assert!(
        empty_file()
            .await
            .backend
            .verify_pages_sound()
            .await
            .unwrap()
    );
    for (declared, index, rowid) in [
        (rowid_table.clone(), "", true),
        (format!("(seq integer primary key, {columns})"), "", true),
        (
            format!("(seq INTEGER PRIMARY KEY DESC, {columns})"),
            "",
            false,
        ),
        (format!("(seq INT PRIMARY KEY, {columns})"), "", false),
        (
            format!("(seq INTEGER NOT NULL, {columns}, PRIMARY KEY (seq)) WITHOUT ROWID"),
            "",
            false,
        ),
        (
            format!("(seq INTEGER NOT NULL UNIQUE, {columns})"),
            "",
            false,
        ),
        (
            format!("(id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, {columns})"),
            "",
            false,
        ),
        (
            format!("(seq INTEGER, {columns}, PRIMARY KEY (seq, at))"),
            "",
            false,
        ),
        // The migration's own index, then indexes that hold more than
        // `kind` and `seq` (one could be read in the table's place).
        (rowid_table.clone(), "(kind, seq)", true),
        (
            rowid_table.clone(),
            "(seq, at, kind, payload, prev_hash, hash)",
            false,
        ),
        (rowid_table.clone(), "(lower(kind))", false),
    ] {
        let file = empty_file().await;
        let index = match index {
            "" => String::new(),
            columns => format!("CREATE INDEX extra ON ledger {columns};"),
        };
        raw(
            &file,
            &format!("DROP TABLE ledger; CREATE TABLE ledger {declared}; {index}"),
        )
        .await;
        let declared = format!("{declared} {index}");
        assert_eq!(
            file.backend.verify_pages_sound().await.unwrap(),
            rowid,
            "{declared}"
        );
        fill(&file, 30, |seq| seq % 3 == 0).await;
        raw(&file, "UPDATE ledger SET kind = 'edited' WHERE seq = 17").await;
        let (row_verified, _) = verified_as_the_row_reader(&file, &declared).await;
        assert_eq!(row_verified, 16, "{declared}");
    }
}

/// 7 MiB of text for records 10 to 20, small payloads elsewhere.
fn large_from_10_to_20(n: u64) -> String {
    if (10..=20).contains(&n) {
        "x".repeat(7 << 20)
    } else {
        payload(n)
    }
}

#[tokio::test]
async fn a_page_past_its_bytes_is_read_row_by_row_and_verifies_whole() {
    let file = empty_file().await;
    // Eleven texts of 7 MiB: 77 MiB in verification's first page, past
    // the 64 MiB a page is concatenated up to.
    fill_with(
        &file,
        2_500,
        |seq| (10..=20).contains(&seq),
        large_from_10_to_20,
    )
    .await;
    let first = file.backend.verify_page(0, 2_000).await.unwrap();
    assert_eq!(first.count(), 0, "the page is not concatenated");
    let second = file.backend.verify_page(2_000, 2_000).await.unwrap();
    assert_eq!(second.count(), 500);
    // The row reader takes the first page up to its bound, the quick read
    // goes on from there: every record verifies.
    assert_eq!(verified(&file).await, (2_500, None));
}

#[tokio::test]
async fn a_page_whose_other_columns_are_large_is_left_to_the_row_reader() {
    for column in ["at", "kind", "hash"] {
        let file = empty_file().await;
        fill(&file, 30, |_| false).await;
        // 72 MiB of text in one field of record 5.
        raw(
            &file,
            &format!(
                "UPDATE ledger SET {column} = {column} || hex(zeroblob(37748736)) WHERE seq = 5"
            ),
        )
        .await;
        let page = file.backend.verify_page(0, 2_000).await.unwrap();
        assert_eq!(page.count(), 0, "{column}: the page is not concatenated");
        assert_eq!(broken_at(&file, 4).await.seq, 5, "{column}");
    }
}
