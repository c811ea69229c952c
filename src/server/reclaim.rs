//! Gives the memory of closed connections back to the operating system. glibc's allocator keeps
//! what a flood of connections freed (a heap only shrinks from its top, and one live allocation
//! there pins everything below): measured with the release build, seven floods of 19,000 idle
//! sockets left the server at 366 MB, from 12 MB. `malloc_trim` returns every free page, so
//! once the number of open connections has fallen by [`RECLAIM_AFTER_CLOSED`] from its peak
//! and stopped falling, the server trims (off the runtime's worker threads). Other allocators
//! return memory themselves: there this does nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::limiter::ConnLimiter;

/// How often the open connection count is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Connections closed since the peak that make a trim worth its cost (an idle connection holds
/// ~10 KB while it is served, a listener more).
pub const RECLAIM_AFTER_CLOSED: usize = 1000;
/// Shortest time between two trims (a trim walks the whole heap under the allocator's locks).
const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// A count that keeps falling is trimmed after this long anyway (a slow stream of closes).
const MAX_WAIT: Duration = Duration::from_secs(15);

/// When to trim, from the open connection count seen every [`CHECK_EVERY`].
#[derive(Debug)]
struct Watch {
    peak: usize,
    /// The count at the last look.
    last: usize,
    last_trim: Instant,
    /// When the count first stood `RECLAIM_AFTER_CLOSED` below its peak.
    dropped_at: Option<Instant>,
}

impl Watch {
    fn new(open: usize, now: Instant) -> Watch {
        Watch {
            peak: open,
            last: open,
            last_trim: now,
            dropped_at: None,
        }
    }

    /// Whether to trim now. Not while a flood's connections are still closing: a trim then
    /// returns only what the closed ones freed around the live ones, and the rest of the
    /// flood, fewer than `RECLAIM_AFTER_CLOSED`, would keep its memory for good.
    fn look(&mut self, open: usize, now: Instant) -> bool {
        let falling = open < self.last;
        self.last = open;
        self.peak = self.peak.max(open);
        if self.peak - open < RECLAIM_AFTER_CLOSED {
            self.dropped_at = None;
            return false;
        }
        let since = *self.dropped_at.get_or_insert(now);
        let settled = !falling || now.duration_since(since) >= MAX_WAIT;
        if !settled || now.duration_since(self.last_trim) < MIN_INTERVAL {
            return false;
        }
        self.peak = open;
        self.last_trim = now;
        self.dropped_at = None;
        true
    }
}

/// Watches the open connections and trims the allocator after a drop, until shutdown.
pub async fn run(limiter: Arc<ConnLimiter>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = Watch::new(limiter.open(), Instant::now());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if watch.look(limiter.open(), Instant::now()) {
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// Returns the allocator's free memory to the operating system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only takes the allocator's own locks; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts seen a second apart, and whether each look trims.
    fn looks(counts: &[usize]) -> Vec<bool> {
        let start = Instant::now();
        let mut w = Watch::new(0, start);
        counts
            .iter()
            .enumerate()
            .map(|(i, &open)| w.look(open, start + CHECK_EVERY * (i as u32 + 6)))
            .collect()
    }

    #[test]
    fn trims_once_a_flood_has_closed_not_halfway() {
        // 5,000 connect, close over three seconds (the last 900 after the first trim could have
        // run), then nothing: one trim, when the count stops falling, at 0.
        let got = looks(&[5000, 5000, 2600, 900, 0, 0, 0]);
        assert_eq!(got, [false, false, false, false, false, true, false]);
    }

    #[test]
    fn a_small_drop_does_not_trim_and_a_slow_decline_is_trimmed_in_the_end() {
        assert!(!looks(&[900, 0, 0, 0]).contains(&true));
        // Falling by 100 a second from 3,000: trimmed within MAX_WAIT of the drop.
        let slow: Vec<usize> = (0..30).map(|i| 3000 - 100 * i).collect();
        let got = looks(&slow);
        let first = got.iter().position(|&t| t).expect("a trim");
        assert!(first <= 10 + MAX_WAIT.as_secs() as usize, "{got:?}");
    }
}
