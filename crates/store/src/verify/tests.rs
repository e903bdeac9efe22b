#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

//! The gates of verification's pages on their way, whatever the pages
//! hold: the bytes held together stay within the run's budget, and no
//! more pages are hashed at once than there are cores.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use futures::StreamExt as _;

use super::*;

/// What the pages hold together and how many are hashed at once, now and
/// at most.
#[derive(Default)]
struct Gauge {
    live: AtomicUsize,
    most_live: AtomicUsize,
    hashing: AtomicUsize,
    most_hashing: AtomicUsize,
    /// Reads under way, and the most at once once four pages were read
    /// (by then pages wait to be hashed, holding their bytes).
    reading: AtomicUsize,
    read: AtomicUsize,
    most_reading_later: AtomicUsize,
}

fn rise(now: &AtomicUsize, most: &AtomicUsize, by: usize) {
    let now = now.fetch_add(by, SeqCst) + by;
    most.fetch_max(now, SeqCst);
}

/// A full page said to hold `bytes` from its read until it is dropped
/// (hashed or given up): only the gauge holds them.
struct Heavy {
    bytes: usize,
    gauge: Arc<Gauge>,
}

impl VerifyPage for Heavy {
    fn count(&self) -> usize {
        PAGE as usize
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn digests(self) -> Option<Vec<RecordDigests>> {
        rise(&self.gauge.hashing, &self.gauge.most_hashing, 1);
        std::thread::sleep(Duration::from_millis(30));
        self.gauge.hashing.fetch_sub(1, SeqCst);
        Some(Vec::new())
    }
}

impl Drop for Heavy {
    fn drop(&mut self) {
        self.gauge.live.fetch_sub(self.bytes, SeqCst);
    }
}

/// 40 pages of `bytes` each through the gates: the gauge afterwards.
async fn through_the_gates(bytes: usize) -> Arc<Gauge> {
    let gauge = Arc::new(Gauge::default());
    let shared = &gauge;
    let read = move |_after| {
        let gauge = Arc::clone(shared);
        async move {
            let later = gauge.read.load(SeqCst) >= 4;
            let now = gauge.reading.fetch_add(1, SeqCst) + 1;
            if later {
                gauge.most_reading_later.fetch_max(now, SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            gauge.reading.fetch_sub(1, SeqCst);
            gauge.read.fetch_add(1, SeqCst);
            rise(&gauge.live, &gauge.most_live, bytes);
            Ok(Heavy { bytes, gauge })
        }
    };
    let gates = Gates::new();
    let digested = pages(read, &gates, 0).take(40).count().await;
    assert_eq!(digested, 40);
    // A page being hashed when the stream stops is dropped once its
    // blocking thread is done with it.
    for _ in 0..100 {
        if gauge.live.load(SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gauge.live.load(SeqCst), 0, "every page was dropped");
    gauge
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_large_records_hold_the_run_budget_together() {
    // Each page at its bound: eight of them on their way were half a
    // gigabyte.
    let gauge = through_the_gates(PAGE_BYTES).await;
    let most = gauge.most_live.load(SeqCst);
    assert!(
        most <= MEMORY,
        "pages held {} MiB together, over the budget of {} MiB",
        most >> 20,
        MEMORY >> 20
    );
    assert!(
        most >= 2 * PAGE_BYTES,
        "pages still overlap: {} MiB at most",
        most >> 20
    );
    assert!(gauge.most_hashing.load(SeqCst) <= hashing_at_once());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_small_records_never_wait_for_the_budget() {
    // A page of 2,000 in-scope reads holds ~340 KiB: every page on its
    // way at once fits.
    let gauge = through_the_gates(340 << 10).await;
    let most = gauge.most_live.load(SeqCst);
    assert!(
        most >= IN_FLIGHT.saturating_sub(hashing_at_once()).max(2) * (340 << 10),
        "only {} KiB of pages were on their way at once",
        most >> 10
    );
    // Hashing (30 ms a page) is slower than reading (5 ms): pages wait for
    // it, each holding its few hundred KiB, and two are still read at once.
    assert_eq!(gauge.most_reading_later.load(SeqCst), READ_AT_ONCE);
    assert!(gauge.most_hashing.load(SeqCst) <= hashing_at_once());
}
