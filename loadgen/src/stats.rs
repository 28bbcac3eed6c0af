//! Shared measurement state that thousands of viewer tasks write into cheaply: sharded
//! histograms, the per-packet arrival table that gives the skew across viewers, and percentile
//! summaries for the report.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Histogram values are microseconds, up to ten minutes, three significant digits.
const HIGHEST_US: u64 = 600_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// A histogram of microseconds split into shards, so concurrent writers rarely share a lock.
pub struct ShardedHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl std::fmt::Debug for ShardedHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedHistogram")
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl ShardedHistogram {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(new_histogram()))
                .collect(),
        }
    }

    /// Records values (microseconds) into the shard picked by `key`.
    pub fn record_all(&self, key: usize, values_us: &[u64]) {
        if values_us.is_empty() {
            return;
        }
        let mut shard = self.shards[key % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for &v in values_us {
            shard.saturating_record(v.max(1));
        }
    }

    pub fn record(&self, key: usize, value_us: u64) {
        self.record_all(key, &[value_us]);
    }

    /// Every shard merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut out = new_histogram();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds on both sides: adding cannot fail.
            let _ = out.add(&*shard);
        }
        out
    }
}

/// Percentiles of a histogram of microseconds, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    /// `None` for an empty histogram: "no data" is not "zero milliseconds".
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        })
    }
}

struct Slot {
    first: AtomicU64,
    last: AtomicU64,
    count: AtomicU32,
}

/// For each packet index of one track, the earliest and latest arrival across viewers: the
/// spread between the first and the last viewer to get the same packet.
pub struct SkewTable {
    slots: Vec<Slot>,
    /// Arrivals whose index is beyond the table.
    overflow: AtomicU64,
}

impl std::fmt::Debug for SkewTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkewTable")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl SkewTable {
    /// Room for packet indexes `0..capacity`.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: (0..capacity)
                .map(|_| Slot {
                    first: AtomicU64::new(u64::MAX),
                    last: AtomicU64::new(0),
                    count: AtomicU32::new(0),
                })
                .collect(),
            overflow: AtomicU64::new(0),
        }
    }

    /// Notes that a viewer got packet `index` at `arrival_ns`.
    pub fn record(&self, index: u32, arrival_ns: u64) {
        match self.slots.get(index as usize) {
            Some(slot) => {
                slot.first.fetch_min(arrival_ns, Ordering::Relaxed);
                slot.last.fetch_max(arrival_ns, Ordering::Relaxed);
                slot.count.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Histogram (microseconds) of last-minus-first arrival over the packets at least
    /// `min_viewers` viewers received.
    pub fn spread(&self, min_viewers: u32) -> Histogram<u64> {
        let mut h = new_histogram();
        for slot in &self.slots {
            if slot.count.load(Ordering::Relaxed) >= min_viewers.max(2) {
                let first = slot.first.load(Ordering::Relaxed);
                let last = slot.last.load(Ordering::Relaxed);
                h.saturating_record(last.saturating_sub(first) / 1000);
            }
        }
        h
    }

    pub fn overflow(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_histogram_merges() {
        let h = ShardedHistogram::new(4);
        for i in 0..1000u64 {
            h.record(i as usize, i + 1);
        }
        h.record_all(7, &[0, u64::MAX]); // clamped, not an error
        let merged = h.merged();
        assert_eq!(merged.len(), 1002);
        let p = Percentiles::of(&merged).unwrap();
        assert!((p.p50_ms - 0.5).abs() < 0.01, "{p:?}");
        assert!(p.max_ms >= 600_000.0 * 0.99);
        assert_eq!(Percentiles::of(&new_histogram()), None);
    }

    #[test]
    fn skew_is_last_minus_first_over_shared_packets() {
        let t = SkewTable::new(4);
        t.record(0, 1_000_000);
        t.record(0, 3_000_000);
        t.record(0, 2_000_000);
        t.record(1, 5_000_000); // one viewer only: no spread
        t.record(9, 1); // beyond the table
        let h = t.spread(2);
        assert_eq!(h.len(), 1);
        assert_eq!(h.value_at_quantile(1.0), h.highest_equivalent(2000));
        assert_eq!(t.overflow(), 1);
        assert_eq!(t.spread(4).len(), 0);
    }
}
