//! Joining and leaving a channel's fan-out: a caught-up listener parks (its session ends and
//! the fan-out writes to its socket), and leaves for good when its last session ends.

use std::sync::Arc;
// The runtime's clock, so tests can pause and advance it (pings, idle closes, feedback rate).
use tokio::time::Instant;

use super::{make_fast, read, run, unfast, write, Fanout, Feeds, Hooks};
use crate::channel::park::{self, Resume};
use crate::channel::socket::{lock, DirectSocket, Keep, KeepBox};
use crate::protocol::Frame;

impl Fanout {
    /// Parks `conn`'s listener if its session is caught up with the fan-out: its last sent seq
    /// is at least the fan-out's, `caught_up` (the session has sent the current partial and
    /// status) holds under the set lock, and nothing of its own is in flight on the socket
    /// either way. `shown` are the partial and status frames the client has. The session must
    /// then end: `keep` is handed back with the socket ([`Resume`]). Starts the fan-out task
    /// on first use. Returns `keep` if it did not park.
    pub fn join(
        self: &Arc<Self>,
        conn: &DirectSocket,
        last_sent: u64,
        shown: [Frame; 2],
        caught_up: impl FnOnce() -> bool,
        feeds: impl FnOnce() -> Feeds,
        keep: Keep,
    ) -> Result<(), Keep> {
        let mut set = write(&self.set);
        if !set.running && !set.closed {
            // Start the fan-out before deciding: a line committed after the session found its
            // queue empty may predate the fan-out's receiver, and must then stay the session's.
            let mut feeds = feeds();
            set.fanned = set.fanned.max(feeds.start_seq);
            set.running = true;
            let parking = feeds.parking.take();
            let (me, queue) = (self.clone(), self.queue.clone());
            match parking {
                Some(p) => {
                    let _ = self.hooks.set(Hooks {
                        resume: p.resume.clone(),
                        idle_after: p.ping_every * 2,
                    });
                    let tracker = p.tracker.clone();
                    tracker.spawn(park::run(me.clone(), queue));
                    tracker.spawn(run(me, feeds, Some(p)));
                }
                None => drop(tokio::spawn(run(me, feeds, None))),
            }
        }
        // Decided under the set lock, when no pass is writing: a partial or status that changed
        // after the session last sent one is either still to be written by a pass that will
        // include this listener, or already written to the others, and then the session, which
        // has not seen it, must send it itself first.
        if set.closed || self.hooks.get().is_none() || set.fanned > last_sent || !caught_up() {
            return Err(keep);
        }
        {
            let mut st = lock(&conn.0.st);
            if !st.at_rest() {
                return Err(keep);
            }
            debug_assert!(st.pending.is_none(), "parked with a hand-back pending");
            st.parked = Some(KeepBox(keep));
            st.last_sent = last_sent;
            let [partial, status] = shown;
            (st.sent_partial, st.sent_status) = (Some(partial), Some(status));
            st.last_heard = Some(Instant::now());
            if st.slot.is_none() {
                let i = match set.free.pop() {
                    Some(i) => {
                        set.slots[i] = Some(conn.clone());
                        i
                    }
                    None => {
                        set.slots.push(Some(conn.clone()));
                        set.hot.push(Default::default());
                        set.slots.len() - 1
                    }
                };
                st.slot = Some(i);
            }
            if let Some(hot) = st.slot.and_then(|i| set.hot.get(i)) {
                make_fast(hot, conn, &mut st);
            }
        }
        // Read by the channel's reader from now on (at once if something is already there).
        park::arm(&self.queue, conn);
        Ok(())
    }

    /// Removes a listener for good (its session ends).
    pub fn leave(&self, conn: &DirectSocket) {
        // The set's write lock only for a listener in it (`slot` only changes under that lock):
        // a session that never parked makes no pass wait.
        let in_set = lock(&conn.0.st).slot.is_some();
        let mut set = in_set.then(|| write(&self.set));
        let (slot, keep) = {
            let mut st = lock(&conn.0.st);
            if let Some(hot) = set.as_ref().zip(st.slot).and_then(|(s, i)| s.hot.get(i)) {
                unfast(hot, &mut st);
            }
            st.pending = None;
            (st.slot.take(), st.parked.take())
        };
        if let (Some(set), Some(i)) = (set.as_mut(), slot) {
            set.slots[i] = None;
            set.free.push(i);
        }
        drop(set);
        // Dropped without the locks: what the session left may take other locks.
        drop(keep);
    }

    /// Number of parked listeners (for tests and metrics).
    pub fn direct_count(&self) -> usize {
        let set = read(&self.set);
        set.slots
            .iter()
            .flatten()
            .filter(|c| lock(&c.0.st).direct())
            .count()
    }

    pub(in crate::channel) fn resume_hook(&self) -> Option<&Arc<dyn Resume>> {
        self.hooks.get().map(|h| &h.resume)
    }
}
