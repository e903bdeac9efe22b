//! Verifying and paging a ledger whose stored payloads were replaced by
//! decompression bombs — a few hundred bytes on disk, each 8 MiB read
//! back: SQLite's zstd frames, PostgreSQL's TOAST — hold a page's worth of
//! bytes (64 MiB) at a time, not a page's worth of records — verification,
//! export's pages, the audit API's and the console's, and an instance
//! catching up on what other writers appended. Alone in its test
//! binary: it reads the process's peak resident memory, which other tests
//! would share.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use clearance_store::{Applier, AuditQuery, Committed, LedgerFilter, Store};
use support::{Place, fill};

/// The process's peak resident memory since it was last reset, in bytes.
fn peak_resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// Resets the peak to what is resident now.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// The peak resident memory from a point on: reset there, read later.
struct Peak(u64);

impl Peak {
    fn start() -> Self {
        reset_peak();
        Peak(peak_resident())
    }

    /// How much the peak has grown since [`Peak::start`].
    fn grown(&self) -> u64 {
        peak_resident().saturating_sub(self.0)
    }
}

const BOMB: usize = 8 << 20;

/// Even decisions recommendations no sample grades yet (the console reads
/// those), odd ones pending (what webhooks are told of).
const UNGRADED: &str =
    "UPDATE decisions SET outcome = CASE WHEN seq % 2 = 0 THEN 'recommend' ELSE 'pending' END";

/// One test, both backends in turn: the peak is the process's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_are_read_a_bounded_page_at_a_time() {
    // First, while the allocator holds little freed memory a peak could
    // hide in: each text of record 12 made 256 MiB (hex() of 128 MiB).
    for (column, problem) in PAST_THE_BOUND {
        let place = Place::sqlite();
        a_text_past_its_bound(
            "sqlite",
            &place,
            &Arc::new(place.open_sqlite().await),
            &format!("UPDATE ledger SET {column} = hex(zeroblob(134217728)) WHERE seq = 12"),
            problem,
        )
        .await;
    }
    let place = Place::sqlite();
    let store = Arc::new(place.open_sqlite().await);
    fill(&store, 0, 300).await;
    let frame = zstd::bulk::compress(&vec![b' '; BOMB], 3).unwrap();
    assert!(frame.len() < 4096, "{} bytes on disk", frame.len());
    let mut hex = String::new();
    for byte in &frame {
        write!(hex, "{byte:02x}").unwrap();
    }
    place
        .raw(&format!(
            "UPDATE ledger SET payload = x'{hex}' WHERE seq BETWEEN 10 AND 290"
        ))
        .await;
    // A newline in a field: the quick read gives the first page up, and
    // the row reader reads it.
    place
        .raw("UPDATE ledger SET at = at || char(10) WHERE seq = 5")
        .await;
    place.raw(UNGRADED).await;
    within_bounds("sqlite", &*store).await;
    catching_up_within_bounds("sqlite", &place.open_sqlite().await).await;
    following_under_the_lock_within_bounds("sqlite", || place.open_sqlite());
    large_texts_within_bounds().await;

    // PostgreSQL's TOAST keeps 8 MiB of one byte in a few hundred KiB: the
    // same bomb, read by its quick (row) read.
    let Some(place) = Place::postgres().await else {
        return;
    };
    let store = Arc::new(place.open_postgres().await);
    fill(&store, 0, 300).await;
    place
        .raw(&format!(
            "UPDATE ledger SET payload = repeat(' ', {BOMB}) WHERE seq BETWEEN 10 AND 290"
        ))
        .await;
    place
        .raw("UPDATE ledger SET at = at || chr(10) WHERE seq = 5")
        .await;
    place.raw(UNGRADED).await;
    within_bounds("postgres", &*store).await;
    catching_up_within_bounds("postgres", &place.open_postgres().await).await;
    following_under_the_lock_within_bounds("postgres", || place.open_postgres());
    // Each text of record 12 made 256 MiB, kept by TOAST in a few MiB.
    for (column, problem) in PAST_THE_BOUND {
        let Some(place) = Place::postgres().await else {
            return;
        };
        let enlarge = format!("UPDATE ledger SET {column} = repeat('0', 256 << 20) WHERE seq = 12");
        // No index entry holds 256 MiB: a hostile database drops `kind`'s.
        let enlarge = match column {
            "kind" => format!("DROP INDEX ledger_kind; {enlarge}"),
            _ => enlarge,
        };
        a_text_past_its_bound(
            "postgres",
            &place,
            &Arc::new(place.open_postgres().await),
            &enlarge,
            problem,
        )
        .await;
    }
}

/// Each text of a record a hostile file may make large, and what verifying
/// says of it past its bound.
const PAST_THE_BOUND: [(&str, &str); 5] = [
    ("at", "`at` is missing or holds more than the 4096 bytes"),
    (
        "kind",
        "`kind` is missing or holds more than the 4096 bytes",
    ),
    ("payload", "more than the 67108864 bytes"),
    (
        "prev_hash",
        "`prev_hash` is missing or holds more than the 64 bytes",
    ),
    ("hash", "`hash` is missing or holds more than the 64 bytes"),
];

/// Verifies `store`, which must break at record `seq` with every record
/// before it verified: the break's problem.
async fn verify_breaks_at(backend: &str, store: &impl Store, seq: u64) -> String {
    let report = store.verify().await.unwrap();
    let broken = report.first_break.expect("the chain breaks");
    assert_eq!(
        (report.verified, broken.seq),
        (seq - 1, seq),
        "{backend}: {}",
        broken.problem
    );
    broken.problem
}

/// One text of record 12 made 256 MiB (`enlarge`), past what it may hold:
/// a break at that record naming it (`problem`), found from its size
/// without fetching it, and a page of records that reaches it fails.
async fn a_text_past_its_bound(
    backend: &str,
    place: &Place,
    store: &Arc<impl Store>,
    enlarge: &str,
    problem: &str,
) {
    fill(store, 0, 20).await;
    place.raw(enlarge).await;
    let peak = Peak::start();
    let found = verify_breaks_at(backend, &**store, 12).await;
    assert!(found.contains(problem), "{backend}: {found}");
    assert!(
        matches!(
            store.records(0, 100).await,
            Err(clearance_store::StoreError::Corrupt(_))
        ),
        "{backend}"
    );
    let grown = peak.grown();
    assert!(
        grown < 128 << 20,
        "{backend}: a 256 MiB text grew the peak by {} MiB",
        grown >> 20
    );
}

/// A SQLite file whose records 10 to 70 hold 8 MiB of text each, as
/// payloads of the first storage format may: 488 MiB on disk, in what the
/// quick read would take as one page. Verifying reads it a bounded page at
/// a time (record by record past 64 MiB), not concatenated whole.
async fn large_texts_within_bounds() {
    let place = Place::sqlite();
    let store = Arc::new(place.open_sqlite().await);
    fill(&store, 0, 300).await;
    // hex() of 4 MiB of zeros: 8 MiB of text.
    place
        .raw("UPDATE ledger SET payload = hex(zeroblob(4194304)) WHERE seq BETWEEN 10 AND 70")
        .await;
    let peak = Peak::start();
    verify_breaks_at("sqlite", &*store, 10).await;
    let grown = peak.grown();
    assert!(
        grown < 256 << 20,
        "verifying 488 MiB of large texts grew the peak by {} MiB",
        grown >> 20
    );
}

/// Verifies `store` (record 5 modified, 10 to 290 bombs) and pages
/// through it, each within 512 MiB more than before.
async fn within_bounds(backend: &str, store: &impl Store) {
    let peak = Peak::start();
    verify_breaks_at(backend, store, 5).await;
    let grown = peak.grown();
    assert!(
        grown < 512 << 20,
        "{backend}: verifying grew the peak by {} MiB; 281 bombs are {} MiB",
        grown >> 20,
        (281 * BOMB) >> 20
    );

    // A page ends once its payloads pass 64 MiB: the 9 records before the
    // bombs and 8 bombs. Never empty while a record follows.
    let peak = Peak::start();
    let first = store.records(0, 1_000).await.unwrap();
    assert_eq!(first.len(), 17, "{backend}");
    assert_eq!(first.last().unwrap().seq, 17, "{backend}");
    let next = store.records(17, 1_000).await.unwrap();
    assert_eq!((next.len(), next[0].seq), (8, 18), "{backend}");
    let grown = peak.grown();
    assert!(
        grown < 512 << 20,
        "{backend}: paging grew the peak by {} MiB",
        grown >> 20
    );
    let tail = store.records(290, 1_000).await.unwrap();
    assert_eq!(tail.len(), 10, "{backend}: small records fill a page again");
    assert!(!clearance_store::cut_for_size(&tail), "{backend}");
    other_pages_within_bounds(backend, store).await;
}

/// Every other read of whole records holds a page to the same bound: the
/// audit API's (oldest first), the console's (newest first), its ungraded
/// recommendations, what webhooks are told of and what reconciliation
/// reads of an agent's executions.
async fn other_pages_within_bounds(backend: &str, store: &impl Store) {
    let peak = Peak::start();
    let audit = store
        .audit(&AuditQuery {
            after: 0,
            limit: 1_000,
            kind: Some("decision".into()),
            agent: None,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 17, "{backend}: the audit API's page");
    assert_eq!(audit.last().unwrap().seq, 17, "{backend}");
    let after = store
        .audit(&AuditQuery {
            after: 17,
            limit: 1_000,
            kind: None,
            agent: None,
        })
        .await
        .unwrap();
    assert_eq!((after.len(), after[0].seq), (8, 18), "{backend}");
    // Newest first: the 10 small records after the bombs, then 8 bombs.
    let newest = store
        .ledger_page(&LedgerFilter {
            limit: 1_000,
            ..LedgerFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(newest.len(), 18, "{backend}: the console's page");
    assert!(
        clearance_store::cut_for_size(&newest),
        "{backend}: the console offers older records after a page cut for size"
    );
    assert_eq!(
        (newest[0].seq, newest.last().unwrap().seq),
        (300, 283),
        "{backend}"
    );
    let ungraded = store
        .ungraded_recommendations(jiff::Timestamp::UNIX_EPOCH, 1_000, 500)
        .await
        .unwrap();
    assert!(
        (8..30).contains(&ungraded.len()),
        "{backend}: {} ungraded recommendations read of 300",
        ungraded.len()
    );
    // Pending decisions: the 5 small ones before the bombs, then 8 bombs.
    let pending = store.notification_records(0, 200).await.unwrap();
    assert_eq!(
        (pending.len(), pending.last().unwrap().seq),
        (13, 25),
        "{backend}: what webhooks are told of"
    );
    // bot-0's hundred executions, read for reconciliation: most are bombs.
    let candidates = store
        .execution_candidates("bot-0", support::at(0), support::at(300), 10_000)
        .await
        .unwrap();
    assert!(
        (8..30).contains(&candidates.len()),
        "{backend}: {} of bot-0's 100 executions read",
        candidates.len()
    );
    let grown = peak.grown();
    assert!(
        grown < 512 << 20,
        "{backend}: the audit API's and the console's pages grew the peak by {} MiB",
        grown >> 20
    );
}

/// Counts the records another writer's are applied as, and keeps none.
#[derive(Default)]
struct Counter(AtomicU64);

impl Applier for Counter {
    fn apply(&self, committed: &[Committed<'_>]) {
        let foreign = committed
            .iter()
            .filter(|c| matches!(c, Committed::Foreign(_)))
            .count();
        self.0.fetch_add(foreign as u64, Ordering::SeqCst);
    }
}

/// An instance that follows from record 150 (as one cut off from the
/// database for long) reads and applies what it missed — 141 bombs, 1.1 GiB
/// read back — a page at a time, not all of it at once.
async fn catching_up_within_bounds(backend: &str, follower: &impl Store) {
    let peak = Peak::start();
    let counter = Arc::new(Counter::default());
    follower.attach(counter.clone(), 150).await.unwrap();
    assert_eq!(follower.sync().await.unwrap(), 300, "{backend}");
    assert_eq!(counter.0.load(Ordering::SeqCst), 150, "{backend}");
    let grown = peak.grown();
    assert!(
        grown < 512 << 20,
        "{backend}: catching up on 141 bombs grew the peak by {} MiB",
        grown >> 20
    );
}

/// An instance that has applied up to record 150 appends before it has
/// caught up: what others appended since — 141 bombs — is read under the
/// write lock before its own record is chained, a page at a time as
/// catching up reads it, not all at once.
///
/// On a runtime of one thread of its own, so that the writer cannot run
/// between the two jobs sent below and takes them as one batch: the
/// catch-up an attach asks for is left to the append, under the lock.
fn following_under_the_lock_within_bounds<S, F>(backend: &str, open: impl FnOnce() -> F + Send)
where
    S: Store + 'static,
    F: std::future::Future<Output = S>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(follow_under_the_lock(backend, open));
            })
            .join()
            .unwrap();
    });
}

async fn follow_under_the_lock<S: Store + 'static, F: std::future::Future<Output = S>>(
    backend: &str,
    open: impl FnOnce() -> F,
) {
    let follower = open().await;
    let peak = Peak::start();
    let counter = Arc::new(Counter::default());
    let mut attach = std::pin::pin!(follower.attach(counter.clone(), 150));
    assert!(futures::poll!(&mut attach).is_pending());
    let append = follower.append(support::entry("test", Vec::new()));
    let (attached, appended) = tokio::join!(attach, append);
    attached.unwrap();
    assert_eq!(appended.unwrap().seq, 301, "{backend}");
    assert_eq!(counter.0.load(Ordering::SeqCst), 150, "{backend}");
    let grown = peak.grown();
    assert!(
        grown < 512 << 20,
        "{backend}: following 141 bombs under the lock grew the peak by {} MiB",
        grown >> 20
    );
}
