//! A line's pass over parked plain sockets without their locks: each slot of the fan-out set
//! has, beside it, the socket's descriptor and last seq ([`Hot`]), in one dense array, so a
//! pass over 15,000 listeners reads 16 bytes a listener in order and makes one `send(2)`
//! each, as a bare broadcaster does, instead of taking each socket's lock wherever it is in
//! memory (about 5% of the server's CPU in a hall, `BENCHMARKS.md`).
//!
//! **Invariants:** while a slot's `fd` is set, its socket is parked, plain, without sound and
//! at a frame boundary, its `fast` is set, the slot holds it (so the descriptor is its own),
//! and only the caption fan-out writes to it. `fd` and `last_sent` change only in the fan-out
//! task: in the pass writing that slot (under the set's read lock; shards write disjoint
//! slots) or between passes (`hand_back_all`), or under the set's write lock; so plain loads
//! and stores suffice. Every hand-back ends it first ([`unfast`]); the reader, which holds no
//! set lock, asks through the socket's `pending` ([`crate::channel::park`]).

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use bytes::Bytes;

use crate::channel::socket::{send, DirectSocket, WriteState};

/// A slot's socket as a line's pass writes it, without its lock (see the invariants above).
#[derive(Debug)]
pub(super) struct Hot {
    /// The socket's descriptor, or -1: the pass takes the locked way (the socket's lock).
    fd: AtomicI32,
    /// The seq of the last line on the wire while `fd` is set.
    last_sent: AtomicU64,
}

impl Default for Hot {
    fn default() -> Hot {
        Hot {
            fd: AtomicI32::new(-1),
            last_sent: AtomicU64::new(0),
        }
    }
}

/// What a line's unlocked write to a slot did.
pub(super) enum Fast {
    Written,
    /// It had this line already (written before it parked).
    Skipped,
    /// Not a fast slot, or not the next seq: the locked way decides.
    Slow,
    /// Only these bytes went out (the socket is full, or an error).
    Short(usize),
}

impl Hot {
    pub(super) fn is_fast(&self) -> bool {
        self.fd.load(Ordering::Relaxed) >= 0
    }
}

/// A line to a fast slot: one `send(2)` on its descriptor, touching nothing of its socket.
pub(super) fn write_fast(hot: &Hot, seq: u64, wire: &Bytes) -> Fast {
    let fd = hot.fd.load(Ordering::Relaxed);
    if fd < 0 {
        return Fast::Slow;
    }
    let last = hot.last_sent.load(Ordering::Relaxed);
    if seq <= last {
        return Fast::Skipped;
    }
    if seq != last + 1 {
        return Fast::Slow;
    }
    match send(fd, wire) {
        Ok(n) if n == wire.len() => {
            hot.last_sent.store(seq, Ordering::Relaxed);
            Fast::Written
        }
        Ok(n) => Fast::Short(n),
        Err(_) => Fast::Short(0),
    }
}

/// Ends a slot's unlocked writes (before the locked way writes a line to it, or hands it
/// back): the socket's own `last_sent` is brought up to date. The caller is the pass writing
/// this slot or holds the set's write lock.
pub(super) fn unfast(hot: &Hot, st: &mut WriteState) {
    if st.fast {
        st.last_sent = hot.last_sent.load(Ordering::Relaxed);
        hot.fd.store(-1, Ordering::Relaxed);
        st.fast = false;
    }
}

/// Makes a just parked listener's slot fast if its socket is plain and has no sound (the sound
/// fan-out writes it too, under its lock).
pub(super) fn make_fast(hot: &Hot, conn: &DirectSocket, st: &mut WriteState) {
    if st.tls.is_none() && !st.sound {
        hot.last_sent.store(st.last_sent, Ordering::Relaxed);
        hot.fd.store(conn.0.tcp.as_raw_fd(), Ordering::Relaxed);
        st.fast = true;
    }
}
