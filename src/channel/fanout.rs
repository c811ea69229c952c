//! Direct fan-out: each channel's one fan-out task writes every line, partial and status frame
//! straight to the sockets of the listeners that are caught up, one non-blocking write per
//! socket, without waking their session tasks.
//!
//! A listener's socket is a [`DirectSocket`] (over TLS with its rustls connection: the frame is
//! encoded once and encrypted per connection): the session (tungstenite) and the fan-out share
//! it, and every write goes through its small lock, so frames never interleave, but for lines
//! to a parked plain socket: the only writer then is the fan-out, which sends them on its
//! descriptor from a dense array beside the slots, without the lock ([`hot`]). A listener is
//! *direct* (parked, [`super::park`]) once its session has nothing of its own in flight and
//! ended; the fan-out then writes seq after seq (only ever `last_sent + 1`), and pings it
//! every ping interval. When a socket cannot take a whole frame, the fan-out keeps the unwritten rest of
//! that one shared frame (a `Bytes` slice, no copy) and hands the listener back to a new
//! session, which drains the rest and carries on from the channel's broadcast ring and
//! history, with the usual slow-consumer policy (catch up from memory or close 4001), until it
//! is caught up and parks again.
//!
//! **Invariants:** no per-recipient allocation (one encoded frame per event, shared); the set
//! lock and a socket's lock are only held for non-blocking writes, never across an `.await`;
//! nothing is queued per listener beyond the rest of one frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use super::park::{hand_back, Handback, Parking, ReadyQueue, Resume};
use super::socket::{lock, DirectSocket, WriteState};
use crate::protocol::Frame;
use crate::record::Committed;

mod hot;
mod join;
mod task;

use hot::{make_fast, unfast, write_fast, Fast, Hot};

use task::run;

/// Sockets written per lock hold: joins and leaves wait at most this many writes, and the
/// fan-out yields to other tasks between chunks.
const CHUNK: usize = 256;
/// How many slots ahead of its write a pass asks for a socket's state
/// ([`DirectSocket::prefetch`]).
const PREFETCH: usize = 2;
/// Most listeners one task writes a frame to: a pass over more is split into shards, one per
/// runtime worker thread at most, so a line reaches 15,000 phones in about half the time on
/// two cores (the kernel's loopback/TCP write path, ~9 µs a socket here, is the cost).
const SHARD_MIN: usize = 2048;

// Nothing panics while holding these locks; the state stays consistent if it did.
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// What one fan-out pass writes.
#[derive(Clone, Copy)]
enum What {
    /// A line, edit or handover with its seq.
    Event(u64),
    /// The line in progress.
    Partial,
    /// The status frame.
    Status,
    /// A ping to the listeners of one slice of the slots (and the check for those that stopped
    /// answering them).
    Ping(usize),
}

/// Parked listeners are pinged in this many slices, one every ping interval / `PING_SLICES`:
/// the pings (and the pongs that come back) of a large hall are spread over the interval, not
/// a burst that delays a line.
const PING_SLICES: usize = 16;

/// A server ping with no payload, the same bytes for every socket.
const PING_WIRE: &[u8] = &[0x89, 0x00];

/// The listeners of one channel that the fan-out writes to directly.
#[derive(Default)]
pub struct Fanout {
    /// Passes read it (shards of one pass write disjoint ranges at once); joins and leaves
    /// write it.
    set: RwLock<Set>,
    /// Installed when the fan-out starts: how listeners are handed back, when they are idle.
    hooks: OnceLock<Hooks>,
    /// Parked sockets with something to read, for the channel's reader.
    queue: Arc<ReadyQueue>,
    /// The channel's last committed seq, and the last the fan-out task had received when it
    /// last found its ring empty: while the first is ahead, a line is waiting and a partial
    /// or status pass stops for it (lines first).
    committed: AtomicU64,
    received: AtomicU64,
}

struct Hooks {
    resume: Arc<dyn Resume>,
    /// A parked listener that sent nothing for this long is handed back as idle.
    idle_after: std::time::Duration,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").field("set", &self.set).finish()
    }
}

#[derive(Debug, Default)]
struct Set {
    slots: Vec<Option<DirectSocket>>,
    /// Beside each slot, what a line's pass needs of a parked plain socket, in one dense
    /// array: a pass over 15,000 listeners reads 16 bytes a listener, in order, instead of
    /// each socket's lock and state wherever they are in memory.
    hot: Vec<Hot>,
    free: Vec<usize>,
    /// The fan-out task is running.
    running: bool,
    /// The last seq the fan-out has started writing.
    fanned: u64,
    /// The server is shutting down: nobody parks any more.
    closed: bool,
}

/// What the fan-out task reads: the channel's ring and its partial and status slots.
pub struct Feeds {
    /// The channel's last seq when `events` was subscribed: the fan-out never sees it or
    /// anything before it.
    pub start_seq: u64,
    pub events: broadcast::Receiver<Committed>,
    pub partial: watch::Receiver<Frame>,
    pub status: watch::Receiver<Frame>,
    /// The channel's count of frames sent to listeners.
    pub frames_out: Arc<AtomicU64>,
    /// The channel's count of partial updates, and of partials its listeners never got.
    pub partial_updates: Arc<AtomicU64>,
    pub partials_coalesced: Arc<AtomicU64>,
    /// Where to report publish-to-send latency (once per event, after every direct socket
    /// was written).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// How parked listeners are pinged and handed back; without it nobody parks.
    pub parking: Option<Parking>,
    /// Resolves when an organiser closes the channel to its listeners (deleted, replaced, the
    /// event archived): parked listeners are handed back so their sessions close them with
    /// the reason, and nobody parks any more.
    pub stop: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

/// A server-to-client text frame, encoded once for every socket.
pub fn encode(frame: &Frame) -> Bytes {
    let payload = frame.as_bytes();
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x81); // FIN + text
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

impl Fanout {
    /// Writes `frame` to every direct listener, in shards over the runtime's worker threads
    /// when there are many. Returns how many sockets took it, and whether the pass went over
    /// all of them: a partial or status pass stops early when a line is waiting. Each socket
    /// is in one shard and the pass ends when every shard has, so every socket still gets
    /// frames in order.
    async fn write_all(self: &Arc<Self>, what: What, frame: &Frame) -> (u64, bool) {
        let wire = match what {
            What::Ping(_) => Bytes::from_static(PING_WIRE),
            _ => encode(frame),
        };
        let len = {
            let mut set = write(&self.set);
            if let What::Event(seq) = what {
                set.fanned = seq;
            }
            set.slots.len()
        };
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        // A status is no hurry: its pass takes one worker, the others stay free for lines (the
        // publisher's session and the store's writer thread compete for the same cores).
        let workers = if matches!(what, What::Status) {
            1
        } else {
            workers
        };
        let shards = len.div_ceil(SHARD_MIN).clamp(1, workers.max(1));
        let per = len.div_ceil(shards);
        let others: Vec<_> = (1..shards)
            .map(|k| {
                let (me, frame, wire) = (self.clone(), frame.clone(), wire.clone());
                tokio::spawn(async move {
                    me.write_range(what, &frame, &wire, k * per, (k + 1) * per)
                        .await
                })
            })
            .collect();
        let (mut written, mut complete) = self.write_range(what, frame, &wire, 0, per).await;
        for shard in others {
            // A shard that panicked is not written again and again.
            let (n, all) = shard.await.unwrap_or((0, true));
            written += n;
            complete &= all;
        }
        (written, complete)
    }

    /// Writes `frame` to the direct listeners in slots `from..to`, a chunk per lock hold.
    /// Returns how many took it and whether it went over them all (a partial or status pass
    /// stops before a chunk when a line is waiting).
    async fn write_range(
        &self,
        what: What,
        frame: &Frame,
        wire: &Bytes,
        from: usize,
        to: usize,
    ) -> (u64, bool) {
        let mut written = 0;
        let mut i = from;
        let yields = matches!(what, What::Partial | What::Status);
        loop {
            if yields && self.line_waiting() {
                return (written, false);
            }
            {
                let set = read(&self.set);
                let to = to.min(set.slots.len());
                let end = (i + CHUNK).min(to);
                for (k, conn) in set.slots[i.min(end)..end].iter().enumerate() {
                    let j = i + k;
                    if let Some(Some(ahead)) = set.slots.get(j + PREFETCH) {
                        // A line to a fast slot does not touch its socket.
                        if !(matches!(what, What::Event(_)) && set.hot[j + PREFETCH].is_fast()) {
                            ahead.prefetch();
                        }
                    }
                    let Some(conn) = conn else { continue };
                    if let What::Event(seq) = what {
                        match write_fast(&set.hot[j], seq, wire) {
                            Fast::Written => {
                                written += 1;
                                continue;
                            }
                            Fast::Skipped => continue,
                            Fast::Short(n) => {
                                self.short(&set.hot[j], conn, seq, wire, n);
                                continue;
                            }
                            Fast::Slow => {}
                        }
                    }
                    if matches!(what, What::Ping(slice) if j % PING_SLICES != slice) {
                        continue;
                    }
                    if self.write_one(&set.hot[j], conn, what, frame, wire) {
                        written += 1;
                    }
                }
                i = end;
                if i >= to {
                    return (written, true);
                }
            }
            tokio::task::yield_now().await;
        }
    }

    /// The channel committed `seq` (after sending it to the ring).
    pub(super) fn line_committed(&self, seq: u64) {
        self.committed.fetch_max(seq, Ordering::Release);
    }

    /// A line was committed that the fan-out task has not received yet.
    fn line_waiting(&self) -> bool {
        self.committed.load(Ordering::Acquire) > self.received.load(Ordering::Acquire)
    }

    /// Hands every parked listener back to a session: the fan-out fell behind its ring
    /// (`Full`: they catch up), or the server shuts down or the channel closed to listeners
    /// (`close`: and nobody parks any more).
    fn hand_back_all(&self, why: Handback, close: bool) {
        let set = if close {
            let mut set = write(&self.set);
            set.closed = true;
            drop(set);
            read(&self.set)
        } else {
            read(&self.set)
        };
        for (conn, hot) in set.slots.iter().zip(&set.hot) {
            let Some(conn) = conn else { continue };
            let mut st = lock(&conn.0.st);
            unfast(hot, &mut st);
            hand_back(self, conn, &mut st, why, Vec::new());
        }
    }

    /// Hands back parked listeners whose reader left what it took in `pending` (see
    /// [`super::park`]): under the set's write lock no pass is writing to them.
    pub(super) fn hand_back_pending(&self, conns: &[DirectSocket]) {
        let set = write(&self.set);
        for conn in conns {
            let mut st = lock(&conn.0.st);
            if let Some(hot) = st.slot.and_then(|i| set.hot.get(i)) {
                unfast(hot, &mut st);
            }
            // Not handed back by the fan-out in the meantime (that took `pending` with it).
            if st.pending.is_some() {
                hand_back(self, conn, &mut st, Handback::Full, Vec::new());
            }
        }
    }

    /// One non-blocking write of a whole frame under the socket's lock, or hand the listener
    /// back to a session. A fast slot's line comes here when it is not the next seq: the slot
    /// stops being fast first.
    fn write_one(
        &self,
        hot: &Hot,
        conn: &DirectSocket,
        what: What,
        frame: &Frame,
        wire: &Bytes,
    ) -> bool {
        let mut st = lock(&conn.0.st);
        if !st.direct() {
            return false;
        }
        if matches!(what, What::Event(_)) {
            // A fast slot's line comes here only when it does not follow its last seq.
            unfast(hot, &mut st);
        }
        match what {
            What::Event(seq) if seq <= st.last_sent => return false, // sent before parking
            // The very update its session sent before parking (the fan-out had not seen it),
            // or that this pass wrote before it stopped for a line. (A heartbeat is a new
            // frame with the same text.)
            What::Partial if same(st.sent_partial.as_ref(), frame) => return false,
            What::Status if same(st.sent_status.as_ref(), frame) => return false,
            What::Event(seq) if seq != st.last_sent + 1 => return self.kick(hot, conn, &mut st),
            What::Ping(_) => {
                let idle_after = self
                    .hooks
                    .get()
                    .map_or(std::time::Duration::MAX, |h| h.idle_after);
                let silent = st
                    .last_heard
                    .map_or(std::time::Duration::ZERO, |t| t.elapsed());
                if silent > idle_after {
                    unfast(hot, &mut st);
                    hand_back(self, conn, &mut st, Handback::Idle, Vec::new());
                    return false;
                }
                // Heard from within half a ping interval: no need to ask (a phone that just
                // parked is first pinged an interval later, as by its own session).
                if silent < idle_after / 4 {
                    return false;
                }
            }
            _ => {}
        }
        if st.session_mid || !st.rest.is_empty() {
            return self.kick(hot, conn, &mut st);
        }
        match conn.write_parked(&mut st, wire) {
            Ok((n, all)) if n > 0 => {
                match what {
                    What::Event(seq) => st.last_sent = seq,
                    What::Partial => st.sent_partial = Some(frame.clone()),
                    What::Status => st.sent_status = Some(frame.clone()),
                    What::Ping(_) => {}
                }
                if n == wire.len() && all {
                    true
                } else {
                    // Keep the rest of this one frame (and, over TLS, records not written
                    // yet); a session writes it before anything else.
                    st.rest = wire.slice(n..);
                    self.kick(hot, conn, &mut st)
                }
            }
            // Full socket (a slow reader) or an error: a session takes over and finds out which.
            _ => self.kick(hot, conn, &mut st),
        }
    }

    fn kick(&self, hot: &Hot, conn: &DirectSocket, st: &mut WriteState) -> bool {
        unfast(hot, st);
        hand_back(self, conn, st, Handback::Full, Vec::new());
        false
    }

    /// A fast slot's line went out in part (`n` bytes) or not at all: the socket keeps the
    /// rest, and a session takes over.
    fn short(&self, hot: &Hot, conn: &DirectSocket, seq: u64, wire: &Bytes, n: usize) {
        let mut st = lock(&conn.0.st);
        unfast(hot, &mut st);
        if n > 0 {
            st.last_sent = seq;
            st.rest = wire.slice(n..);
        }
        self.kick(hot, conn, &mut st);
    }
}

/// Whether `sent` is this very frame (the same shared buffer, not merely the same text: a
/// publisher may send the same partial twice, and both are updates).
fn same(sent: Option<&Frame>, frame: &Frame) -> bool {
    sent.is_some_and(|f| f.as_str().as_ptr() == frame.as_str().as_ptr() && f.len() == frame.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_frame_headers() {
        let short = encode(&Frame::from("hi"));
        assert_eq!(&short[..], b"\x81\x02hi");
        let mid = encode(&Frame::from("x".repeat(300)));
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        let long = encode(&Frame::from("y".repeat(70_000)));
        assert_eq!(&long[..2], &[0x81, 127]);
        assert_eq!(long.len(), 70_010);
    }
}
