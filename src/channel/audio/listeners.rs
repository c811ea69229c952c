//! The listeners of a channel's sound that have a direct socket (plain TCP or TLS): their
//! sockets, written directly with one non-blocking write per packet, in shards over the
//! runtime's worker threads when there are many (like the caption fan-out,
//! `channel/fanout.rs`), whether a session runs for the listener or it is parked
//! (`channel/park.rs`).
//!
//! A listener's socket is a [`DirectSocket`] shared with its session and the caption fan-out:
//! a packet is written only where the wire is at a frame boundary (the session is not in the
//! middle of a frame of its own, and any rest of an earlier frame could be written first), and
//! over TLS it is sealed for this connection as it is written. A socket that cannot take the
//! packet skips it: nothing is queued for it, old sound is worthless. A packet the kernel took
//! only in part leaves its rest in the socket's state, written before anything else by whoever
//! writes next (this pass's next packet, the session, or the caption fan-out, which then hands
//! a parked listener back to a session).

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::{Buf, Bytes};

use super::super::socket::{lock, WriteState};
use super::super::DirectSocket;

/// Sockets written per lock hold: joins and leaves wait at most this many writes.
const CHUNK: usize = 256;
/// Most listeners one task writes a packet to; more are split into shards, one per runtime
/// worker thread at most (the same bound as the caption fan-out).
const SHARD_MIN: usize = 2048;
/// Unsent bytes a listener's socket may hold before it counts as full (`TCP_NOTSENT_LOWAT`):
/// about a second of 24 kbit/s voice. Without it the kernel's send buffer (64 KiB) would keep
/// up to 15 s of old sound for a phone that stopped reading, and send it when it resumes.
const NOTSENT_LOWAT: libc::c_int = 4096;

// Nothing panics while holding these locks; the state stays consistent if it did.
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// A direct listener's place in its channel's set.
#[derive(Debug)]
pub struct AudioSlot(u32);

#[derive(Debug, Default)]
struct Set {
    slots: Vec<Option<DirectSocket>>,
    free: Vec<usize>,
}

/// The sockets a channel's packets are written to directly.
#[derive(Debug, Default)]
pub(super) struct DirectListeners {
    set: Arc<RwLock<Set>>,
}

impl DirectListeners {
    pub(super) fn join(&self, conn: &DirectSocket) -> AudioSlot {
        if let Err(e) = bound_unsent(&conn.0.tcp) {
            tracing::debug!(error = %e, "cannot bound the unsent bytes of a sound listener");
        }
        {
            // Its lines then always take the socket's lock ([`crate::channel::fanout`]).
            let mut st = lock(&conn.0.st);
            debug_assert!(
                !st.fast,
                "sound joined while the caption fan-out writes unlocked"
            );
            st.sound = true;
        }
        let mut set = write(&self.set);
        let i = match set.free.pop() {
            Some(i) => {
                set.slots[i] = Some(conn.clone());
                i
            }
            None => {
                set.slots.push(Some(conn.clone()));
                set.slots.len() - 1
            }
        };
        AudioSlot(u32::try_from(i).expect("fewer than 2^32 sound listeners"))
    }

    pub(super) fn leave(&self, slot: AudioSlot) {
        let mut set = write(&self.set);
        if let Some(s) = set.slots.get_mut(slot.0 as usize) {
            if let Some(conn) = s.take() {
                lock(&conn.0.st).sound = false;
            }
            set.free.push(slot.0 as usize);
        }
    }

    pub(super) fn count(&self) -> usize {
        read(&self.set).slots.iter().flatten().count()
    }

    /// Writes `wire` to every direct listener; `(written, skipped)`.
    pub(super) async fn write_all(&self, wire: &Bytes) -> (u64, u64) {
        let len = read(&self.set).slots.len();
        if len == 0 {
            return (0, 0);
        }
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        let shards = len.div_ceil(SHARD_MIN).clamp(1, workers.max(1));
        let per = len.div_ceil(shards);
        let others: Vec<_> = (1..shards)
            .map(|k| {
                let (set, wire) = (self.set.clone(), wire.clone());
                tokio::spawn(async move { write_range(&set, &wire, k * per, (k + 1) * per).await })
            })
            .collect();
        let (mut written, mut skipped) = write_range(&self.set, wire, 0, per).await;
        for shard in others {
            let (w, s) = shard.await.unwrap_or((0, 0));
            written += w;
            skipped += s;
        }
        (written, skipped)
    }
}

/// Writes `wire` to the listeners in slots `from..to`, a chunk per lock hold.
async fn write_range(set: &RwLock<Set>, wire: &Bytes, from: usize, to: usize) -> (u64, u64) {
    let (mut written, mut skipped) = (0, 0);
    let mut i = from;
    loop {
        {
            let set = read(set);
            let to = to.min(set.slots.len());
            let end = (i + CHUNK).min(to);
            for conn in set.slots[i.min(end)..end].iter().flatten() {
                if write_one(conn, wire) {
                    written += 1;
                } else {
                    skipped += 1;
                }
            }
            i = end;
            if i >= to {
                return (written, skipped);
            }
        }
        tokio::task::yield_now().await;
    }
}

/// One non-blocking write of a whole packet where the wire is at a frame boundary; whether
/// the socket took it (all of it, or a part whose rest it keeps).
fn write_one(conn: &DirectSocket, wire: &Bytes) -> bool {
    let mut st = lock(&conn.0.st);
    if st.session_mid {
        return false;
    }
    while !st.rest.is_empty() {
        let rest = st.rest.clone();
        match write_sock(conn, &mut st, &rest) {
            Ok((n, _)) if n > 0 => st.rest.advance(n),
            _ => return false,
        }
    }
    match write_sock(conn, &mut st, wire) {
        Ok((n, _)) if n > 0 => {
            if n < wire.len() {
                st.rest = wire.slice(n..);
            }
            true
        }
        // Full (a phone that stopped reading) or broken: skip; the session, or the caption
        // fan-out for a parked listener, finds out which.
        _ => false,
    }
}

/// A write as the caption fan-out's for a parked listener, as a session's otherwise (keeping
/// tokio's readiness of the socket right for the session that waits on it).
fn write_sock(
    conn: &DirectSocket,
    st: &mut WriteState,
    buf: &[u8],
) -> std::io::Result<(usize, bool)> {
    if st.direct() {
        conn.write_parked(st, buf)
    } else {
        conn.write_now(st, buf)
    }
}

/// Sets [`NOTSENT_LOWAT`] on a listener's socket.
fn bound_unsent(tcp: &tokio::net::TcpStream) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid socket fd and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&NOTSENT_LOWAT as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tcp;
    Ok(())
}
