//! A rolling count of committed lines over the last minute, for the organiser dashboard.
//!
//! Sixty one-second buckets, each one `AtomicU64` packing the bucket's Unix second (high bits)
//! and its count (low [`COUNT_BITS`] bits), so recording is one compare-and-swap on the store
//! writer's commit path and reading never takes a lock. Nothing here is on the per-listener path.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets in the ring: one per second of the window.
const BUCKETS: u64 = 60;
/// Bits of a bucket used for its count; the rest hold the bucket's Unix second.
const COUNT_BITS: u32 = 24;
/// Largest count a bucket holds (saturates; 16 million lines a second is not a caption rate).
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Lines committed per second over the last [`BUCKETS`] seconds.
#[derive(Debug)]
pub struct LineRate {
    buckets: [AtomicU64; BUCKETS as usize],
}

impl Default for LineRate {
    fn default() -> Self {
        LineRate {
            buckets: [const { AtomicU64::new(0) }; BUCKETS as usize],
        }
    }
}

impl LineRate {
    /// Counts one line committed at `ts_ms` (Unix milliseconds).
    pub fn record(&self, ts_ms: i64) {
        let sec = (ts_ms.max(0) / 1000) as u64;
        let bucket = &self.buckets[(sec % BUCKETS) as usize];
        let _ = bucket.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            let (s, n) = (v >> COUNT_BITS, v & COUNT_MASK);
            Some(match s.cmp(&sec) {
                std::cmp::Ordering::Equal => (sec << COUNT_BITS) | (n + 1).min(COUNT_MASK),
                std::cmp::Ordering::Less => (sec << COUNT_BITS) | 1,
                // A late timestamp for a bucket already reused by a newer second: count it
                // in the newer second rather than dropping it.
                std::cmp::Ordering::Greater => (s << COUNT_BITS) | (n + 1).min(COUNT_MASK),
            })
        });
    }

    /// Lines committed in the minute up to `now_ms`.
    pub fn per_minute(&self, now_ms: i64) -> u64 {
        let now = (now_ms.max(0) / 1000) as u64;
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .filter(|v| {
                let s = v >> COUNT_BITS;
                s <= now && now - s < BUCKETS
            })
            .map(|v| v & COUNT_MASK)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_minute_only() {
        let r = LineRate::default();
        let t0 = 1_700_000_000_000;
        for i in 0..30 {
            r.record(t0 + i * 1000);
            r.record(t0 + i * 1000 + 500);
        }
        assert_eq!(r.per_minute(t0 + 29_999), 60);
        // 45 s later the first 15 seconds (30 lines) have left the window.
        assert_eq!(r.per_minute(t0 + 74_999), 30);
        assert_eq!(r.per_minute(t0 + 200_000), 0);
        // A bucket reused a minute later starts from zero: second 0's two lines are gone,
        // seconds 1..=29 still count.
        r.record(t0 + 60_000);
        assert_eq!(r.per_minute(t0 + 60_000), 58 + 1);
    }
}
