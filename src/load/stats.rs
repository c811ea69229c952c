//! Measurement helpers for the load generator: a lock-free latency histogram and readings of
//! a process's memory and CPU from `/proc`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two: about 3% precision on every quantile.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for values up to 2^40 µs (12 days).
const BUCKETS: usize = ((40 - SUB_BITS + 1) * SUB as u32 + SUB as u32) as usize;

/// A log-linear histogram of microsecond values, shared by every connection (relaxed atomics:
/// recording costs one uncontended-ish `fetch_add`).
#[derive(Debug)]
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    let i = (SUB + (exp - SUB_BITS) as u64 * SUB + sub) as usize;
    i.min(BUCKETS - 1)
}

/// The smallest value that falls in bucket `i`.
fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = (i - SUB) / SUB + SUB_BITS as u64;
    let sub = (i - SUB) % SUB;
    (SUB + sub) << (exp - SUB_BITS as u64)
}

impl Histogram {
    /// Records one value (µs).
    pub fn record(&self, v: u64) {
        self.counts[bucket(v)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
    }

    /// Adds every value of `other`.
    pub fn merge(&self, other: &Histogram) {
        for (a, b) in self.counts.iter().zip(other.counts.iter()) {
            a.fetch_add(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.sum
            .fetch_add(other.sum.load(Ordering::Relaxed), Ordering::Relaxed);
        self.max
            .fetch_max(other.max.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// A summary: count, mean and the usual quantiles, in milliseconds.
    pub fn summary(&self) -> Quantiles {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let n: u64 = counts.iter().sum();
        let q = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    // Middle of the bucket.
                    let lo = lower_bound(i);
                    let hi = lower_bound(i + 1).max(lo + 1);
                    return (lo + hi - 1) as f64 / 2.0 / 1000.0;
                }
            }
            0.0
        };
        Quantiles {
            count: n,
            mean_ms: if n == 0 {
                0.0
            } else {
                self.sum.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0
            },
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: self.max.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// Quantiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Resident memory of a process in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resident memory of several processes, added up; `None` without pids or if one is gone.
pub fn rss_sum(pids: &[u32]) -> Option<u64> {
    (!pids.is_empty())
        .then(|| pids.iter().map(|&p| rss_bytes(p)).sum())
        .flatten()
}

/// CPU time of several processes, added up; `None` without pids or if one is gone.
pub fn cpu_sum(pids: &[u32]) -> Option<u64> {
    (!pids.is_empty())
        .then(|| pids.iter().map(|&p| cpu_ns(p)).sum())
        .flatten()
}

/// Linux reports process CPU time in clock ticks of 1/100 s (`USER_HZ`, fixed by the ABI).
const USER_HZ: u64 = 100;

/// CPU time (user + system, every thread, alive or gone) of a process in nanoseconds.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name and state.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * (1_000_000_000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in [0u64, 1, 31, 32, 33, 63, 64, 100, 1000, 12_345, 1 << 30] {
            let b = bucket(v);
            assert!(b >= last);
            last = b;
            let lo = lower_bound(b);
            assert!(lo <= v && v < lower_bound(b + 1), "{v}: {lo}");
            assert!((v - lo) as f64 <= v as f64 / 30.0 + 1.0);
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for v in 1..=1000 {
            h.record(v * 1000);
        }
        let q = h.summary();
        assert_eq!(q.count, 1000);
        assert!((q.p50_ms - 500.0).abs() < 20.0, "{q:?}");
        assert!((q.p99_ms - 990.0).abs() < 40.0, "{q:?}");
        assert_eq!(q.max_ms, 1000.0);
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(cpu_ns(me).is_some());
    }
}
