//! Verifying the whole ledger, the same for every backend: [`verify`] reads
//! it page by page and checks the chain, stopping at the first break, and
//! hands each verified record's number and hash to an [`Observer`] (signed
//! checkpoints are checked so).
//!
//! Pages, numbered, are read the backend's quickest way
//! ([`Backend::verify_page`]) and decoded and hashed on threads of their
//! own ([`VerifyPage::digests`]), each page one job, several on their way
//! at once; only the chain itself (numbers and links) is checked in order,
//! here. When the quick way gives up on a page, that page is read again
//! record by record, whose decoder names what is wrong; and where the
//! ledger ends is only the row reader's to say. Where the backend cannot
//! vouch that its quick way reads the records the row reader reads
//! ([`Backend::verify_pages_sound`]), every page is read the row reader's
//! way. A ledger read to its end verifies whole only if no record lies
//! outside the chain's numbers ([`Backend::outside_chain`]) and no two
//! share one ([`Backend::repeated_number`]): a reader that goes by number
//! reads one record of each number.

use std::{ops::ControlFlow, sync::Arc};

use clearance_engine::ledger::{ChainBreak, ChainVerifier, Digest32, LedgerRecord, RecordDigests};
use futures::{Stream, StreamExt, stream};
use tokio::sync::Semaphore;

use crate::{
    StoreError,
    backend::Backend,
    decode::{self, PAGE_BYTES},
    rows::VerifyReport,
};

/// How many records a page holds: large enough that the round trip
/// vanishes, small enough to bound memory (verifying 412k records read a
/// page at a time was as fast with 20,000 and held 64 MB, not 24 MB).
const PAGE: u32 = 2_000;

/// A page of records read for verifying, not yet decoded or hashed.
pub trait VerifyPage: Send + 'static {
    /// How many records it holds.
    fn count(&self) -> usize;

    /// About how many bytes it holds in memory, its payloads as read: what
    /// it keeps of the run's budget while it waits to be hashed.
    fn bytes(&self) -> usize;

    /// Every record's digests, in order; `None` when something in the page
    /// must be read again record by record to be judged.
    fn digests(self) -> Option<Vec<RecordDigests>>;
}

/// Records already decoded: hashing is the work.
impl VerifyPage for Vec<LedgerRecord> {
    fn count(&self) -> usize {
        Vec::len(self)
    }

    fn bytes(&self) -> usize {
        decode::page_bytes(self, decode::record_bytes)
    }

    fn digests(self) -> Option<Vec<RecordDigests>> {
        until_modified(self.iter().map(|r| Some(RecordDigests::of_record(r))))
    }
}

/// A page's digests, in order, up to and including the first record that
/// does not hash to its stored hash: the chain breaks there at the latest,
/// so nothing after it is worth decoding or hashing (a page of frames each
/// claiming the most a record may have, a decompression bomb, costs one of
/// them). `None` when any digest before it is `None`: the page must be
/// read record by record.
pub(crate) fn until_modified(
    digests: impl Iterator<Item = Option<RecordDigests>>,
) -> Option<Vec<RecordDigests>> {
    let mut digested = Vec::with_capacity(digests.size_hint().0);
    for record in digests {
        let record = record?;
        let modified = !record.matches_its_hash();
        digested.push(record);
        if modified {
            break;
        }
    }
    Some(digested)
}

/// Sees each record, in order, once the chain has verified it, by its
/// number and hash; `Break` stops verification after that record.
pub type Observer<'a> = dyn FnMut(u64, &Digest32) -> ControlFlow<()> + Send + 'a;

/// Re-reads the whole ledger and checks its chain, stopping at the first
/// break or where `observe` says. Gaps and out-of-place numbers reach the
/// verifier, which expects 1, 2, 3… and names the first record that is not.
pub(crate) async fn verify<B: Backend>(
    backend: &B,
    observe: &mut Observer<'_>,
) -> Result<VerifyReport, StoreError> {
    let mut verifier = ChainVerifier::default();
    let quick = backend.verify_pages_sound().await?;
    // One set for the whole run: a page still hashed after its stream was
    // dropped (at a page read row by row) holds its share into the next.
    let gates = Gates::new();
    loop {
        if quick && let Some(report) = quickly(backend, &gates, &mut verifier, observe).await? {
            return Ok(report);
        }
        // The quick read gave up on the page after the last verified
        // record, has read its last, or is not to be used: what follows is
        // read and checked a record at a time.
        match record_by_record(backend, verifier.verified()).await? {
            Fetched::Unreadable(problem) => {
                return Ok(broken(&verifier, verifier.verified() + 1, problem));
            }
            Fetched::Page { records, more } => {
                for record in &records {
                    if let Err(ChainBreak { seq, problem }) = verifier.push(record) {
                        return Ok(broken(&verifier, seq, problem));
                    }
                    if observe(record.seq, &record.hash).is_break() {
                        return Ok(whole(&verifier));
                    }
                }
                if !more {
                    return ended(backend, &verifier).await;
                }
            }
        }
    }
}

/// Verifies on from where `verifier` stands, pages read the backend's
/// quick way while earlier ones are hashed: the report when the chain
/// breaks or `observe` stops it, `None` when the quick read gives up on a
/// page or has read its last (every record before verified).
///
/// Where the ledger ends is only ever the row reader's to say, from the
/// last verified record on: a short quick page may be short for a gap, or
/// for a file whose keys lie (a corrupt b-tree ends a range scan early).
async fn quickly<B: Backend>(
    backend: &B,
    gates: &Gates,
    verifier: &mut ChainVerifier,
    observe: &mut Observer<'_>,
) -> Result<Option<VerifyReport>, StoreError> {
    let read = |after| backend.verify_page(after, PAGE);
    check(pages(read, gates, verifier.verified()), verifier, observe).await
}

/// What the pages on their way wait for.
struct Gates {
    /// A connection's turn to read ([`READ_AT_ONCE`]).
    reading: Semaphore,
    /// The run's memory, in KiB ([`MEMORY`]).
    memory: Arc<Semaphore>,
    /// A turn to decode and hash ([`hashing_at_once`]): a SQLite page
    /// hashed decompresses its payloads into a buffer of up to a record's
    /// most (64 MiB, from a few bytes on disk), so the pages hashed at once
    /// are bounded too.
    hashing: Arc<Semaphore>,
}

impl Gates {
    fn new() -> Self {
        Gates {
            reading: Semaphore::new(READ_AT_ONCE),
            memory: Arc::new(Semaphore::new(kib(MEMORY))),
            hashing: Arc::new(Semaphore::new(hashing_at_once())),
        }
    }
}

/// What the pages on their way may hold together, being read or read and
/// not yet hashed. Each page is bounded ([`PAGE_BYTES`] of payloads), but
/// eight of them on their way held up to half a gigabyte of a ledger of
/// large records: a bound per page, not per run. Two reads at once, and a
/// page's worth besides for pages read and waiting: a page of small records
/// holds a few hundred KiB, so while they wait, two more are still read at
/// once (with no room besides, one read waited for the other: verifying
/// took ~5 % longer). Besides it, only what hashing decompresses: a
/// record's most for each page hashed at once ([`hashing_at_once`]).
const MEMORY: usize = READ_AT_ONCE * READ_COST + PAGE_BYTES;

/// What a page is granted before it is read, the most a read can take: a
/// page ends once its texts pass [`PAGE_BYTES`], so the record that
/// passes it can take it to twice that (and a SQLite page concatenated
/// in the database is copied once into its row). Once read, a page keeps
/// only what it holds ([`VerifyPage::bytes`]), until it has been hashed.
const READ_COST: usize = 2 * PAGE_BYTES;

/// `bytes` in KiB, the budget's unit (its permits are counted in `u32`).
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// One page hashed a core, at most four: hashing is CPU, so more at once
/// than cores only interleave, and four bound what decompressing holds
/// (a record's most each) on a machine of many cores, where the pages on
/// their way ([`IN_FLIGHT`]) would not.
fn hashing_at_once() -> usize {
    std::thread::available_parallelism().map_or(2, |cores| cores.get().min(HASHING_MOST))
}

/// The most pages hashed at once, whatever the cores.
const HASHING_MOST: usize = 4;

/// How many pages are on their way at once, each read and then hashed (on
/// a blocking thread) as one job, handed on in order. Pages finished behind
/// a slower one wait for it, holding no core busy: verifying 406k records
/// of a SQLite file took 0.58 s with four on their way, 0.51 s with eight,
/// no less with sixteen, and 0.56 s with a reader feeding hashers through
/// a queue.
const IN_FLIGHT: usize = 8;

/// How many of them are being read at once: a verification asked of a
/// running gateway takes no more of its pool's connections than this.
const READ_AT_ONCE: usize = 2;

/// The digests of the pages from `after` on, up to and including the
/// first that is short or could not be read quickly.
fn pages<'a, P, Read>(
    read: impl Fn(u64) -> Read + Copy + 'a,
    gates: &'a Gates,
    after: u64,
) -> impl Stream<Item = Result<Option<Vec<RecordDigests>>, StoreError>> + 'a
where
    P: VerifyPage,
    Read: Future<Output = Result<P, StoreError>> + 'a,
{
    let starts = (0..u64::MAX).map_while(move |n| {
        n.checked_mul(u64::from(PAGE))
            .and_then(|offset| after.checked_add(offset))
    });
    stream::iter(starts)
        .map(move |after| async move {
            page(read(after), gates)
                .await
                .unwrap_or_else(|error| (Err(error), true))
        })
        .buffered(IN_FLIGHT)
        .scan(false, |ended, (digests, last)| {
            let next = (!*ended).then_some(digests);
            *ended = last;
            std::future::ready(next)
        })
}

/// A page, `read` and hashed within the gates: its digests (`None` when
/// the quick read could not take it), and whether it is the last one to
/// read quickly.
async fn page<P: VerifyPage>(
    read: impl Future<Output = Result<P, StoreError>>,
    gates: &Gates,
) -> Result<(Result<Option<Vec<RecordDigests>>, StoreError>, bool), StoreError> {
    let closed = |e: tokio::sync::AcquireError| StoreError::Unavailable(e.to_string());
    let mut memory = Arc::clone(&gates.memory)
        .acquire_many_owned(permits(READ_COST))
        .await
        .map_err(closed)?;
    let page = {
        let _reading = gates.reading.acquire().await.map_err(closed)?;
        read.await
    };
    let last = !matches!(&page, Ok(page) if page.count() == PAGE as usize);
    // Whatever failed the quick read (a page too long for one value, say)
    // is for the row reader to meet and name.
    let Ok(page) = page else {
        return Ok((Ok(None), last));
    };
    let held = kib(page.bytes()).min(memory.num_permits());
    drop(memory.split(memory.num_permits().saturating_sub(held)));
    let hashing = Arc::clone(&gates.hashing)
        .acquire_owned()
        .await
        .map_err(closed)?;
    // The permits go with the page: a job left running when the stream is
    // dropped keeps its share until it is done with it.
    let digests = tokio::task::spawn_blocking(move || {
        let digests = page.digests();
        drop((memory, hashing));
        digests
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("verifying a page stopped: {e}")));
    Ok((digests, last))
}

/// `bytes` of the memory budget, as permits (KiB).
fn permits(bytes: usize) -> u32 {
    u32::try_from(kib(bytes)).unwrap_or(u32::MAX)
}

/// Checks the chain through pages of digests, in order, until one is
/// missing (`None`), the chain breaks or `observe` stops it.
async fn check(
    pages: impl Stream<Item = Result<Option<Vec<RecordDigests>>, StoreError>>,
    verifier: &mut ChainVerifier,
    observe: &mut Observer<'_>,
) -> Result<Option<VerifyReport>, StoreError> {
    let mut pages = std::pin::pin!(pages);
    while let Some(page) = pages.next().await {
        let Some(digests) = page? else {
            return Ok(None);
        };
        for record in &digests {
            if let Err(ChainBreak { seq, problem }) = verifier.check(record) {
                return Ok(Some(broken(verifier, seq, problem)));
            }
            if observe(record.seq, &record.hash).is_break() {
                return Ok(Some(whole(verifier)));
            }
        }
    }
    Ok(None)
}

/// A page read a record at a time.
enum Fetched {
    /// Records in order; `more` when the ledger may go on after them.
    Page {
        records: Vec<LedgerRecord>,
        more: bool,
    },
    /// The next record does not decode: why.
    Unreadable(String),
}

async fn record_by_record<B: Backend>(backend: &B, after: u64) -> Result<Fetched, StoreError> {
    match backend.page(after, PAGE).await {
        // A page ends short for large records too (`Backend::page`): only
        // an empty one says the ledger ends.
        Ok(records) => {
            let more = !records.is_empty();
            Ok(Fetched::Page { records, more })
        }
        // A row that does not decode is a break, not an outage: the page is
        // read again a record at a time to find it.
        Err(StoreError::Corrupt(_)) => match readable_prefix(backend, after).await? {
            // The page failed, yet no record follows: rows went while it
            // was read, and no verdict on them can be given.
            Ok(records) if records.is_empty() => Err(StoreError::Unavailable(
                "the ledger changed while it was verified".into(),
            )),
            Ok(records) => Ok(Fetched::Page {
                records,
                more: true,
            }),
            Err(problem) => Ok(Fetched::Unreadable(problem)),
        },
        Err(other) => Err(other),
    }
}

/// The records after `after` that decode, one at a time, up to the first
/// that does not (or as many as a page holds, in records or in bytes):
/// `Ok` with the first of them when some do (the caller verifies them and
/// comes back for the rest), the unreadable record's problem when it is
/// the very next one.
async fn readable_prefix<B: Backend>(
    backend: &B,
    after: u64,
) -> Result<Result<Vec<LedgerRecord>, String>, StoreError> {
    let mut records = Vec::new();
    let (mut last, mut bytes) = (after, 0_usize);
    while records.len() < PAGE as usize - 1 && bytes < PAGE_BYTES {
        match backend.page(last, 1).await {
            Ok(next) => match next.into_iter().next() {
                Some(record) => {
                    last = record.seq;
                    bytes = bytes.saturating_add(decode::record_bytes(&record));
                    records.push(record);
                }
                None => break,
            },
            Err(StoreError::Corrupt(problem)) if records.is_empty() => return Ok(Err(problem)),
            Err(StoreError::Corrupt(_)) => break,
            Err(other) => return Err(other),
        }
    }
    Ok(Ok(records))
}

/// The report once the chain has been read to its end: whole, unless the
/// table also holds a record numbered where no chain can reach it, which
/// a listing would show beside the verified records.
async fn ended<B: Backend>(
    backend: &B,
    verifier: &ChainVerifier,
) -> Result<VerifyReport, StoreError> {
    if let Some(number) = backend.outside_chain().await? {
        return Ok(broken(
            verifier,
            0,
            format!("a record is numbered {number}, outside the chain, which is numbered from 1"),
        ));
    }
    Ok(match backend.repeated_number(verifier.verified()).await? {
        Some(number) => broken(
            verifier,
            number,
            format!(
                "two records are numbered {number}: the chain holds one, and the other is no record of it"
            ),
        ),
        None => whole(verifier),
    })
}

fn whole(verifier: &ChainVerifier) -> VerifyReport {
    VerifyReport {
        verified: verifier.verified(),
        head: verifier.head(),
        first_break: None,
    }
}

fn broken(verifier: &ChainVerifier, seq: u64, problem: String) -> VerifyReport {
    VerifyReport {
        verified: verifier.verified(),
        head: verifier.head(),
        first_break: Some(ChainBreak { seq, problem }),
    }
}

#[cfg(test)]
mod tests;
