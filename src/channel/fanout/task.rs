//! The fan-out task of a channel: what wakes it (a committed line, a new partial or status, a
//! ping slice, shutdown, the channel closing to its listeners) and in which order it writes:
//! lines first, then the partial and the status, whose passes stop for a line that arrives.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::{same, write, Fanout, Feeds, What, PING_SLICES};
use crate::channel::park::{Handback, Parking};
use crate::protocol::Frame;

/// The fan-out task of one channel: ends when the channel is dropped or at shutdown. Lines go
/// out before a partial or status that changed at the same time (the partial a line completes
/// is cleared only after the line is in the ring).
pub(super) async fn run(fanout: Arc<Fanout>, mut feeds: Feeds, parking: Option<Parking>) {
    // Partial updates seen so far: those replaced before this task woke were never written
    // to any direct listener (counted as coalesced).
    let mut partials_seen = feeds.partial_updates.load(Ordering::Acquire);
    let (shutdown, ping_every) = match &parking {
        Some(p) => (p.shutdown.clone(), p.ping_every),
        None => (Default::default(), std::time::Duration::from_secs(3600)),
    };
    let every = ping_every / PING_SLICES as u32;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut slice = 0;
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let stop = feeds.stop.take();
    let stopped = async {
        match stop {
            Some(stop) => stop.await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stopped);
    // A partial or status pass that stopped for a line, to finish after it; and the partial
    // frame such a pass was writing, with how many sockets it reached (for the coalesced count
    // if it is replaced before it finishes).
    let mut unfinished = [false, false];
    let mut stopped_partial: Option<(Frame, u64)> = None;
    'run: loop {
        // `changed()` marks the value seen: remember which slot woke us. Shutdown and the
        // channel closing are heard even while passes keep stopping for lines.
        let (first, woke) = tokio::select! {
            biased;
            _ = &mut cancelled => {
                fanout.hand_back_all(Handback::Shutdown, true);
                break 'run;
            }
            _ = &mut stopped => {
                // Their sessions see the channel closed at once and close them with the reason.
                fanout.hand_back_all(Handback::Full, true);
                break 'run;
            }
            r = feeds.events.recv() => (Some(r), [false, false]),
            r = feeds.partial.changed() => match r {
                Ok(()) => (None, [true, false]),
                Err(_) => break 'run,
            },
            r = feeds.status.changed() => match r {
                Ok(()) => (None, [false, true]),
                Err(_) => break 'run,
            },
            _ = ping.tick() => {
                fanout.write_all(What::Ping(slice), &Frame::from_static("")).await;
                slice = (slice + 1) % PING_SLICES;
                continue 'run;
            }
            () = std::future::ready(()), if unfinished.contains(&true) => (None, [false, false]),
        };
        let changed = [woke[0] || unfinished[0], woke[1] || unfinished[1]];
        let mut next = first;
        loop {
            let r = match next.take() {
                Some(r) => r,
                None => {
                    // Read before looking: every line committed up to it was in the ring
                    // (sent before it was counted), so an empty ring has had them all.
                    let committed = fanout.committed.load(Ordering::Acquire);
                    match feeds.events.try_recv() {
                        Ok(c) => Ok(c),
                        Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(TryRecvError::Closed) => Err(RecvError::Closed),
                        Err(TryRecvError::Empty) => {
                            fanout.received.store(committed, Ordering::Release);
                            break;
                        }
                    }
                }
            };
            match r {
                Ok(c) => {
                    let (n, _) = fanout.write_all(What::Event(c.seq), &c.frame).await;
                    feeds.frames_out.fetch_add(n, Ordering::Relaxed);
                    if let Some(m) = feeds.metrics.as_ref().filter(|_| n > 0) {
                        let ms = (crate::clock::now_ms() - c.ts).max(0) as u64;
                        m.publish_to_send
                            .observe(std::time::Duration::from_millis(ms));
                    }
                }
                // Fell behind the ring: every listener catches up through its session.
                Err(RecvError::Lagged(_)) => fanout.hand_back_all(Handback::Full, false),
                Err(RecvError::Closed) => break 'run,
            }
        }
        unfinished = [false, false];
        for (i, (what, slot)) in [
            (What::Partial, &mut feeds.partial),
            (What::Status, &mut feeds.status),
        ]
        .into_iter()
        .enumerate()
        {
            if changed[i] || slot.has_changed().unwrap_or(false) {
                // The newest frame: a pass that stopped for a line goes on with it (sockets
                // that have this very frame are skipped), or with its replacement for all.
                let frame = slot.borrow_and_update().clone();
                let skipped = if matches!(what, What::Partial) {
                    let now = feeds.partial_updates.load(Ordering::Acquire);
                    let skipped = now.saturating_sub(partials_seen + 1);
                    partials_seen = now.max(partials_seen);
                    skipped
                } else {
                    0
                };
                let (n, complete) = fanout.write_all(what, &frame).await;
                feeds.frames_out.fetch_add(n, Ordering::Relaxed);
                let mut missed = skipped * n;
                if matches!(what, What::Partial) {
                    // A partial pass that stopped goes on with the same frame, or its
                    // replacement went to those it had not reached: they never got it.
                    let reached = match stopped_partial.take() {
                        Some((old, k)) if same(Some(&old), &frame) => k + n,
                        Some((_, k)) => {
                            missed += n.saturating_sub(k);
                            n
                        }
                        None => n,
                    };
                    if !complete {
                        stopped_partial = Some((frame.clone(), reached));
                    }
                }
                if missed > 0 {
                    feeds
                        .partials_coalesced
                        .fetch_add(missed, Ordering::Relaxed);
                }
                if !complete {
                    // A line is waiting: it goes first; this pass (and the status, if the
                    // partial stopped) is finished after it.
                    unfinished[i] = true;
                    // (A status that woke the task and was not written yet is kept too; one
                    // that changed since is seen as changed.)
                    if i == 0 {
                        unfinished[1] = changed[1];
                    }
                    break;
                }
            }
        }
    }
    // The channel is gone: hand every listener back to a session.
    if !shutdown.is_cancelled() {
        fanout.hand_back_all(Handback::Full, false);
    }
    write(&fanout.set).running = false;
    fanout.queue.close();
}
