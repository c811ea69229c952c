//! A listener's socket after the WebSocket upgrade (plain TCP, or TLS with the rustls
//! connection behind the same lock, [`super::tls`]), shared by its session (tungstenite) and
//! its channel's direct fan-out ([`super::fanout`]), and, while the listener is parked, read by
//! the channel's reader ([`super::park`]).
//!
//! Every write goes through one small lock, so frames never interleave (but for the fan-out's
//! lines to a parked plain socket, when nobody else writes it, [`super::fanout`]): the
//! fan-out writes whole frames without blocking, and when it cannot, it keeps the unwritten
//! rest of that one frame here and hands the socket back to a session, which writes the rest
//! first. Reads stop at every frame boundary ([`Inbound`]), so a session can park without
//! leaving anything it read behind.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll};
// The runtime's clock, so tests can pause and advance it (pings, idle closes, feedback rate).
use tokio::time::Instant;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConnection;

use super::inbound::Inbound;
use super::park::ReadWaker;
use super::tls;
use crate::protocol::Frame;

// Nothing panics while holding this lock; the state stays consistent if it did.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An upgraded connection's socket, shared by its session and its channel's fan-out.
#[derive(Debug, Clone)]
pub struct DirectSocket(pub(super) Arc<Sock>);

// In this order (and `WriteState`'s first fields too), what a fan-out pass touches per socket
// (the descriptor, the lock, whether it is parked, the seq, the rest, TLS) sits in the first
// two cache lines of the allocation: a pass over 15,000 sockets misses the cache less.
#[derive(Debug)]
#[repr(C)]
pub(super) struct Sock {
    pub(super) tcp: TcpStream,
    pub(super) st: Mutex<WriteState>,
    /// Wakes the channel's reader when this socket, parked, has something to read.
    pub(super) reader: OnceLock<Arc<ReadWaker>>,
}

/// The session's own state while its listener is parked (the channel never looks inside).
pub type Keep = Box<dyn Any + Send>;

#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct WriteState {
    /// The session's last write stopped inside its buffer: the wire is inside its frame.
    pub(super) session_mid: bool,
    /// Reads stop at frame boundaries (listener sockets; set before the session reads).
    pub(super) track: bool,
    /// Bytes were read before tracking could start: this socket never parks.
    pub(super) pinned: bool,
    /// Parked: no session runs; the fan-out writes to this socket and the channel's reader
    /// reads it. Holds what the session left.
    pub(super) parked: Option<KeepBox>,
    /// Seq of the last line or edit put on the wire by the fan-out (while `fast`, the
    /// fan-out keeps it in its slot instead, [`super::fanout`]).
    pub(super) last_sent: u64,
    /// Over TLS: the connection's keys (or rustls connection), used by whoever holds the lock.
    pub(super) tls: Option<tls::Tls>,
    /// The unwritten rest of a frame the fan-out started; written before anything else.
    pub(super) rest: Bytes,
    /// The partial and status frames the client has (shared handles): set when it parks,
    /// replaced by the fan-out's, so a session that takes over does not send them again.
    pub(super) sent_partial: Option<Frame>,
    pub(super) sent_status: Option<Frame>,
    pub(super) inbound: Inbound,
    /// This listener's index in its channel's fan-out set.
    pub(super) slot: Option<usize>,
    /// When the client last sent anything (a parked listener's pongs).
    pub(super) last_heard: Option<Instant>,
    /// Parked on a plain socket: the fan-out writes lines to its descriptor from its own slot
    /// without this lock ([`super::fanout`]); only the fan-out or a holder of its set's write
    /// lock may end that (the reader asks, with `pending`).
    pub(super) fast: bool,
    /// What the reader took off a `fast` socket and why it hands it back: the hand-back
    /// waits for the fan-out's set lock ([`super::park`]), and whoever hands it back first
    /// passes these on.
    pub(super) pending: Option<(super::park::Handback, Vec<u8>)>,
    /// Written sound packets directly by the channel's sound fan-out ([`super::audio`]): a
    /// second writer, so never `fast`.
    pub(super) sound: bool,
}

/// [`Keep`] with a `Debug` that says nothing of its contents.
pub(super) struct KeepBox(pub(super) Keep);

impl std::fmt::Debug for KeepBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keep")
    }
}

impl WriteState {
    /// The fan-out writes to this socket (its listener is parked).
    pub(super) fn direct(&self) -> bool {
        self.parked.is_some()
    }

    /// Nothing is half read or half written on this connection: the listener may park.
    pub(super) fn at_rest(&mut self) -> bool {
        !self.session_mid
            && self.rest.is_empty()
            && !self.pinned
            && self.track
            && self.inbound.at_rest()
            && self.tls.as_mut().is_none_or(tls::Tls::at_rest)
    }
}

/// Where a session takes over from the fan-out.
#[derive(Debug)]
pub struct Takeover {
    /// Seq of the last event on the wire.
    pub last_sent: u64,
    /// The last partial frame on the wire.
    pub partial: Option<Frame>,
    /// The last status frame on the wire.
    pub status: Option<Frame>,
}

impl DirectSocket {
    pub fn new(tcp: TcpStream) -> DirectSocket {
        DirectSocket(Arc::new(Sock {
            tcp,
            st: Mutex::new(WriteState::default()),
            reader: OnceLock::new(),
        }))
    }

    /// A TLS connection after its handshake and upgrade: its keys (TLS 1.3) or its rustls
    /// connection move in with the socket ([`tls::Tls`]).
    pub fn new_tls(tcp: TcpStream, conn: ServerConnection) -> DirectSocket {
        let st = WriteState {
            tls: Some(tls::Tls::new(conn)),
            ..Default::default()
        };
        DirectSocket(Arc::new(Sock {
            tcp,
            st: Mutex::new(st),
            reader: OnceLock::new(),
        }))
    }

    /// One non-blocking read (decrypted, over TLS); `WouldBlock` when nothing is there.
    pub(super) fn read_now(&self, st: &mut WriteState, buf: &mut [u8]) -> io::Result<usize> {
        match st.tls.as_mut() {
            Some(tls) => tls.read(&self.0.tcp, buf),
            None => self.0.tcp.try_read(buf),
        }
    }

    /// One non-blocking write of `buf` (encrypted, over TLS): the bytes taken, and whether
    /// they are all on the wire; `WouldBlock` when nothing could be taken.
    pub(super) fn write_now(&self, st: &mut WriteState, buf: &[u8]) -> io::Result<(usize, bool)> {
        match st.tls.as_mut() {
            Some(tls) => tls.write(&self.0.tcp, buf),
            None => self.0.tcp.try_write(buf).map(|n| (n, n == buf.len())),
        }
    }

    /// Asks the CPU for this socket's state ahead of a write to it: a fan-out pass over
    /// 15,000 sockets otherwise waits for memory at every socket's lock (~7% of the server's
    /// CPU in a hall, `perf`), while the write before it is in the kernel.
    #[inline]
    pub(super) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // What a pass touches is in the first two cache lines of `Sock` (see above),
            // wherever the allocation starts. The pass writes them (the lock first): asked for
            // with intent to write (PREFETCHW), the lines come exclusive, not shared, and the
            // lock's atomic does not wait for them a second time (`perf`: `write_one` 4.0% ->
            // 1.7% of a hall's samples).
            let p = Arc::as_ptr(&self.0).cast::<i8>();
            static PREFETCHW: OnceLock<bool> = OnceLock::new();
            // CPUID 8000_0001h, ECX bit 8: PREFETCHW (3DNowPrefetch).
            let write = *PREFETCHW
                .get_or_init(|| std::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 8) != 0);
            for line in 0..3 {
                let at = p.wrapping_add(line * 64);
                if write {
                    // SAFETY: a prefetch is a hint: it never faults nor changes memory,
                    // whatever the address; the CPU has PREFETCHW (checked above).
                    unsafe {
                        std::arch::asm!("prefetchw [{0}]", in(reg) at,
                            options(nostack, preserves_flags, readonly));
                    }
                } else {
                    // SAFETY: as above; SSE is part of every x86-64 CPU.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(at) };
                }
            }
        }
    }

    /// The fan-out's write of a frame to a parked listener: as [`Self::write_now`], but a plain
    /// socket is written with one `send(2)` straight on its descriptor (as std and mio do),
    /// without tokio's readiness bookkeeping (nobody waits on a parked socket's write
    /// readiness; a session that takes over finds out from its own first write).
    pub(super) fn write_parked(
        &self,
        st: &mut WriteState,
        buf: &[u8],
    ) -> io::Result<(usize, bool)> {
        if st.tls.is_some() {
            return self.write_now(st, buf);
        }
        use std::os::fd::AsRawFd;
        let n = send(self.0.tcp.as_raw_fd(), buf)?;
        Ok((n, n == buf.len()))
    }

    /// Bounds the kernel's send buffer of this socket.
    pub fn set_send_buffer(&self, bytes: usize) -> io::Result<()> {
        socket2::SockRef::from(&self.0.tcp).set_send_buffer_size(bytes)
    }

    /// From now on reads stop at frame boundaries, so the listener can be parked. Call before
    /// anything reads the WebSocket.
    pub fn track_frames(&self) {
        lock(&self.0.st).track = true;
    }

    /// Bytes of this connection were read before [`Self::track_frames`] (sent right behind
    /// the upgrade request): it stays a full session for good.
    pub fn pin(&self) {
        lock(&self.0.st).pinned = true;
    }

    /// What the fan-out had put on the wire when it handed this listener back.
    pub fn takeover(&self) -> Takeover {
        let mut st = lock(&self.0.st);
        Takeover {
            last_sent: st.last_sent,
            partial: st.sent_partial.take(),
            status: st.sent_status.take(),
        }
    }

    /// Writes the rest of a fan-out frame, if any; `Ready(Ok)` once the wire is at a frame
    /// boundary.
    fn poll_rest(&self, st: &mut WriteState, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !st.rest.is_empty() {
            let rest = st.rest.clone();
            match self.write_now(st, &rest) {
                Ok((n, _)) if n > 0 => st.rest.advance(n),
                Ok(_) => ready!(self.0.tcp.poll_write_ready(cx))?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.tcp.poll_write_ready(cx))?
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes every encrypted record still buffered (TLS only).
    fn poll_records(&self, st: &mut WriteState, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(tls) = st.tls.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while !tls.flush(&self.0.tcp)? {
            ready!(self.0.tcp.poll_write_ready(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

/// One non-blocking `send(2)` of `buf` on a socket's descriptor, without tokio's readiness
/// bookkeeping (as std and mio write). The caller keeps the socket alive during the call.
pub(super) fn send(fd: std::os::fd::RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid slice of `buf.len()` bytes; a descriptor that is not a socket
    // is an error, not undefined behaviour. MSG_NOSIGNAL: a closed peer is an EPIPE error.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

impl AsyncRead for DirectSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut st = lock(&self.0.st);
        loop {
            let room = buf.initialize_unfilled();
            let want = if st.track {
                st.inbound.want().min(room.len())
            } else {
                room.len()
            };
            match self.read_now(&mut st, &mut room[..want]) {
                Ok(n) => {
                    if st.track {
                        st.inbound.consumed(&room[..n]);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.tcp.poll_read_ready(cx))?
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for DirectSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = lock(&self.0.st);
        ready!(self.poll_rest(&mut st, cx))?;
        loop {
            match self.write_now(&mut st, buf) {
                Ok((n, _)) => {
                    st.session_mid = n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.tcp.poll_write_ready(cx))?
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = lock(&self.0.st);
        ready!(self.poll_rest(&mut st, cx))?;
        self.poll_records(&mut st, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the session and the fan-out have both let go of it; over TLS
        // the peer hears close_notify first.
        if let Some(tls) = lock(&self.0.st).tls.as_mut() {
            tls.close_notify(&self.0.tcp);
        }
        self.poll_flush(cx)
    }
}
