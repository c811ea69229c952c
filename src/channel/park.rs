//! Parked listeners: a caught-up listener is not a task. Its session hands the socket to the
//! channel and ends; the fan-out writes its frames and pings, and one reader task per channel
//! reads what parked listeners send. The reader answers pongs itself and hands everything
//! else (a close, feedback, a ping, bad input, the end of the connection) back to a new
//! session through the [`Resume`] hook the session layer installed, as the fan-out does with a
//! full socket, a listener silent for two ping intervals, and every listener at shutdown.
//!
//! A parked listener costs its socket, the socket's small shared state and what the session
//! left in [`Keep`]: no task, no WebSocket buffers, no timer.
//!
//! **Invariants:** a socket is read by one owner at a time (its session, or the reader while
//! it is parked), always up to a frame boundary, under the socket's lock; a parked socket is
//! handed back exactly once (taking what the session left out of the socket's state).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Wake, Waker};
// The runtime's clock, so tests can pause and advance it (pings, idle closes, feedback rate).
use tokio::time::Instant;

use tokio::sync::Notify;

use super::inbound::{MAX_CONTROL_PAYLOAD, MAX_HEAD};
use super::socket::{lock, DirectSocket, Keep, Sock, WriteState};
use super::Fanout;

/// Why the channel hands a parked listener back to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handback {
    /// Its socket could not take a whole frame: the session writes the rest and catches up.
    Full,
    /// It sent something other than a pong, or closed the connection.
    Read,
    /// It answered no ping for two ping intervals.
    Idle,
    /// The server is shutting down.
    Shutdown,
}

/// A listener the channel hands back, with everything its session needs to go on.
#[derive(Debug)]
pub struct Parked {
    pub socket: DirectSocket,
    pub why: Handback,
    /// Bytes of the client's next frame that the reader already took off the socket (at most
    /// a header and a short control payload): the session parses them first.
    pub prefix: Vec<u8>,
    /// What the session left when it parked.
    pub keep: Keep,
}

/// Starts a session for a listener the channel hands back. Called from the fan-out and the
/// reader, under their locks: it must not block (spawn a task).
pub trait Resume: Send + Sync + 'static {
    fn resume(&self, parked: Parked);
}

/// What the session layer gives a channel's fan-out so listeners can park: how to hand them
/// back, how often to ping them, when to stop, and where its tasks are tracked (shutdown
/// waits for the fan-out to hand every parked listener back).
#[derive(Clone)]
pub struct Parking {
    pub resume: Arc<dyn Resume>,
    /// Parked listeners are pinged this often and handed back as idle after two silent
    /// intervals.
    pub ping_every: std::time::Duration,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub tracker: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Parking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parking")
            .field("ping_every", &self.ping_every)
            .finish_non_exhaustive()
    }
}

/// Sockets of parked listeners that have something to read, for the channel's reader.
#[derive(Debug, Default)]
pub(super) struct ReadyQueue {
    ready: Mutex<Vec<Arc<Sock>>>,
    notify: Notify,
    /// The reader should stop (the fan-out ended).
    closed: AtomicBool,
}

impl ReadyQueue {
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// A parked socket's read waker: queues the socket for the reader (once until read).
#[derive(Debug)]
pub(super) struct ReadWaker {
    sock: Weak<Sock>,
    queue: Arc<ReadyQueue>,
    queued: AtomicBool,
}

impl Wake for ReadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(sock) = self.sock.upgrade() {
            lock(&self.queue.ready).push(sock);
            self.queue.notify.notify_one();
        }
    }
}

/// Registers the reader's interest in a socket that was just parked (or just read to
/// `WouldBlock`); queues it at once if it is already readable.
pub(super) fn arm(queue: &Arc<ReadyQueue>, socket: &DirectSocket) {
    let waker = socket.0.reader.get_or_init(|| {
        Arc::new(ReadWaker {
            sock: Arc::downgrade(&socket.0),
            queue: queue.clone(),
            queued: AtomicBool::new(false),
        })
    });
    let w = Waker::from(waker.clone());
    if socket
        .0
        .tcp
        .poll_read_ready(&mut Context::from_waker(&w))
        .is_ready()
    {
        w.wake();
    }
}

/// Takes a parked listener out of the fan-out and hands it to a session; false if it was not
/// parked (its session already runs). The socket must not be `fast` any more (the fan-out's
/// `unfast`). What the reader took off it and why (`pending`) go with it, before `prefix`; a
/// listener handed back as full or idle that had spoken is handed back to read.
pub(super) fn hand_back(
    fanout: &Fanout,
    socket: &DirectSocket,
    st: &mut WriteState,
    why: Handback,
    prefix: Vec<u8>,
) -> bool {
    debug_assert!(!st.fast, "handed back while the fan-out writes it unlocked");
    let Some(keep) = st.parked.take() else {
        return false;
    };
    let (why, prefix) = match st.pending.take() {
        Some((read, mut taken)) => {
            taken.extend_from_slice(&prefix);
            let why = match why {
                Handback::Full | Handback::Idle => read,
                other => other,
            };
            (why, taken)
        }
        None => (why, prefix),
    };
    match fanout.resume_hook() {
        Some(hook) => hook.resume(Parked {
            socket: socket.clone(),
            why,
            prefix,
            keep: keep.0,
        }),
        // Never installed (no parking without a hook): nothing to go on with.
        None => drop(keep),
    }
    true
}

/// The reader of one channel's parked listeners: ends when the fan-out does.
pub(super) async fn run(fanout: Arc<Fanout>, queue: Arc<ReadyQueue>) {
    loop {
        queue.notify.notified().await;
        if queue.closed.load(Ordering::Acquire) {
            return;
        }
        let batch = std::mem::take(&mut *lock(&queue.ready));
        let mut pending = Vec::new();
        for sock in batch {
            if let Some(w) = sock.reader.get() {
                w.queued.store(false, Ordering::Release);
            }
            let socket = DirectSocket(sock);
            if read_parked(&fanout, &queue, &socket) {
                pending.push(socket);
            }
        }
        // All at once, under one hold of the set's write lock (everyone leaving while a
        // speaker goes on waits for one chunk of a pass, not one per listener).
        if !pending.is_empty() {
            fanout.hand_back_pending(&pending);
        }
    }
}

/// Reads what a parked listener sent: pongs are taken here, anything else goes to a session.
/// True if it is to be handed back under the set's write lock ([`give_back`]).
fn read_parked(fanout: &Fanout, queue: &Arc<ReadyQueue>, socket: &DirectSocket) -> bool {
    let mut st = lock(&socket.0.st);
    let mut buf = [0u8; MAX_HEAD + MAX_CONTROL_PAYLOAD as usize];
    loop {
        if !st.direct() || st.pending.is_some() {
            return false; // a session owns the socket, or is about to
        }
        let want = st.inbound.want();
        let read = socket.read_now(&mut st, &mut buf[..want]);
        let n = match read {
            Ok(n) if n > 0 => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if st.tls.as_ref().is_some_and(|t| t.wants_write()) {
                    // A TLS answer (an alert, a key update) waits for a full socket.
                    return give_back(fanout, socket, st, Handback::Full, Vec::new());
                }
                drop(st);
                arm(queue, socket);
                return false;
            }
            // The end of the connection or an error: the session finds out which.
            _ => {
                let prefix = st.inbound.head_bytes().to_vec();
                return give_back(fanout, socket, st, Handback::Read, prefix);
            }
        };
        let Some((head, raw)) = st.inbound.consumed(&buf[..n]) else {
            continue; // the rest of a header
        };
        if !head.is_client_pong() {
            let prefix = raw.as_slice().to_vec();
            return give_back(fanout, socket, st, Handback::Read, prefix);
        }
        let len = head.len as usize;
        let got = match len {
            0 => Ok(0),
            _ => socket.read_now(&mut st, &mut buf[..len]),
        };
        match got {
            Ok(m) if m == len => {
                st.inbound.consumed(&buf[..m]);
                st.last_heard = Some(Instant::now());
            }
            // Half a pong (or none of its payload yet): the session reads the rest.
            Ok(m) => {
                st.inbound.consumed(&buf[..m]);
                let mut prefix = raw.as_slice().to_vec();
                prefix.extend_from_slice(&buf[..m]);
                return give_back(fanout, socket, st, Handback::Read, prefix);
            }
            Err(_) => {
                let prefix = raw.as_slice().to_vec();
                return give_back(fanout, socket, st, Handback::Read, prefix);
            }
        }
    }
}

/// The reader hands a parked listener back. A `fast` socket may be mid-write in a fan-out pass
/// that holds no lock of it: the reader leaves what it took in `pending`, lets go of the socket
/// and returns true; it then hands it back under the set's write lock, when no pass is writing
/// (whoever hands it back first, the fan-out or the reader, passes on what the reader took).
fn give_back(
    fanout: &Fanout,
    socket: &DirectSocket,
    mut st: std::sync::MutexGuard<'_, WriteState>,
    why: Handback,
    prefix: Vec<u8>,
) -> bool {
    if !st.fast {
        hand_back(fanout, socket, &mut st, why, prefix);
        return false;
    }
    st.pending = Some((why, prefix));
    // It spoke: not idle, whatever a ping pass finds before the hand-back.
    st.last_heard = Some(Instant::now());
    true
}
