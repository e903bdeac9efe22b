//! [`DailyCounts`]: hits and totals per UTC day, so a rate over the last N
//! days is a sum over at most N buckets, not a rescan of samples.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::duration::BundleDuration;

const DAY: i64 = 86_400;

/// Per-day `(total, hits)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DailyCounts {
    days: BTreeMap<i64, (u64, u64)>,
}

fn day(at: Timestamp) -> i64 {
    at.as_second().div_euclid(DAY)
}

impl DailyCounts {
    /// Counts one sample on its day.
    pub fn add(&mut self, at: Timestamp, hit: bool) {
        let bucket = self.days.entry(day(at)).or_default();
        bucket.0 += 1;
        bucket.1 += u64::from(hit);
    }

    /// `(total, hits)` over the `window` of whole days ending today.
    pub fn over(&self, now: Timestamp, window: BundleDuration) -> (u64, u64) {
        let today = day(now);
        let first = today - (window.seconds() / DAY).max(1) + 1;
        self.days
            .range(first..=today)
            .fold((0, 0), |(total, hits), (_, (t, h))| (total + t, hits + h))
    }

    /// Forgets days older than `window`: they can never count again.
    pub fn prune(&mut self, now: Timestamp, window: BundleDuration) {
        let first = day(now) - (window.seconds() / DAY).max(1) + 1;
        self.days = self.days.split_off(&first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + days * DAY).unwrap()
    }

    #[test]
    fn only_the_window_counts() {
        let mut counts = DailyCounts::default();
        counts.add(at(0), true);
        counts.add(at(10), false);
        counts.add(at(29), true);
        let thirty: BundleDuration = "30d".parse().unwrap();
        assert_eq!(counts.over(at(29), thirty), (3, 2));
        assert_eq!(counts.over(at(30), thirty), (2, 1), "day 0 slid out");
        counts.prune(at(40), thirty);
        assert_eq!(counts.over(at(40), thirty), (1, 1));
    }
}
