//! A listener's plain-TCP socket after the WebSocket upgrade, shared by its session
//! (tungstenite) and its channel's direct fan-out ([`super::fanout`]).
//!
//! Every write goes through one small lock, so frames never interleave: the fan-out writes
//! whole frames without blocking, and when it cannot, it keeps the unwritten rest of that one
//! frame here and hands the socket back to the session, which writes the rest first.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::protocol::Frame;

// Nothing panics while holding this lock; the state stays consistent if it did.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An upgraded plain-TCP connection's socket, shared by its session and its channel's fan-out.
#[derive(Debug, Clone)]
pub struct DirectSocket(pub(super) Arc<Sock>);

#[derive(Debug)]
pub(super) struct Sock {
    pub(super) tcp: TcpStream,
    pub(super) st: Mutex<WriteState>,
    /// The fan-out took this listener out of direct mode.
    pub(super) kick: Notify,
}

#[derive(Debug, Default)]
pub(super) struct WriteState {
    /// The fan-out writes to this socket.
    pub(super) direct: bool,
    /// Seq of the last line or edit put on the wire by the fan-out.
    pub(super) last_sent: u64,
    /// The unwritten rest of a frame the fan-out started; written before anything else.
    pub(super) rest: Bytes,
    /// The session's last write stopped inside its buffer: the wire is inside its frame.
    pub(super) session_mid: bool,
    /// The last partial and status frames the fan-out put on the wire (shared handles), so a
    /// session that takes over does not send them again.
    pub(super) sent_partial: Option<Frame>,
    pub(super) sent_status: Option<Frame>,
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
            kick: Notify::new(),
        }))
    }

    /// Bounds the kernel's send buffer of this socket.
    pub fn set_send_buffer(&self, bytes: usize) -> io::Result<()> {
        socket2::SockRef::from(&self.0.tcp).set_send_buffer_size(bytes)
    }

    /// Resolves once the fan-out has taken this listener out of direct mode.
    pub async fn kicked(&self) {
        self.0.kick.notified().await
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
            match self.0.tcp.try_write(&st.rest) {
                Ok(n) => st.rest.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.tcp.poll_write_ready(cx))?
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for DirectSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.tcp.poll_read_ready(cx))?;
            match self.0.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
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
            match self.0.tcp.try_write(buf) {
                Ok(n) => {
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
        self.poll_rest(&mut st, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the session and the fan-out have both let go of it.
        self.poll_flush(cx)
    }
}
