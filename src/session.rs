//! One upgraded WebSocket connection: the pieces listener and publisher sessions share.
//!
//! Each session is one task that both reads and writes its socket; it writes by feeding every
//! frame that is ready and flushing once (one syscall for a burst), and never holds a lock
//! across an `.await`.

pub mod audio;
pub mod ebutt;
pub mod feed;
pub mod listener;
pub mod publisher;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::config::Limits;
use crate::protocol::{Frame, CLOSE_GOING_AWAY, CLOSE_IDLE, CLOSE_TOO_BIG};

/// Read buffer per listener: listeners only send pings, closes and tiny feedback messages,
/// and tungstenite's 128 KiB default would cost ~130 KB per idle phone.
pub const LISTENER_READ_BUFFER: usize = 2 * 1024;
/// Kernel send buffer per listener socket (the kernel doubles it). Captions need a few KB/s;
/// without a bound, autotuning lets each slow phone pin up to 4 MiB of kernel memory and
/// hides its slowness from the slow-consumer policy for minutes.
pub const LISTENER_SEND_BUFFER: usize = 32 * 1024;
/// Read buffer per publisher (captions are at most a few KiB).
pub const PUBLISHER_READ_BUFFER: usize = 8 * 1024;
/// Bytes of queued frames that trigger a write before the explicit flush: bounds the per-
/// connection write buffer while still batching a burst into few syscalls.
pub const WRITE_BUFFER: usize = 4 * 1024;
/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// What [`drain`] reads at a time while a closed client still sends.
const DRAIN_CHUNK: usize = 1024;
/// How long [`drain`] waits for more from a client before it ends the connection.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// The WebSocket settings for a session.
pub fn ws_config(limits: &Limits, read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER * 64 + limits.max_frame_bytes)
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
}

/// Why a session ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    ClientClosed,
    Shutdown,
    Behind,
    Idle,
    /// A frame or message over the size limit (closed with 1009).
    TooBig,
    /// A frame that breaks the protocol or is not UTF-8 (closed with this code and reason).
    BadFrame(u16, &'static str),
    WriteTimeout,
    Error,
    /// An organiser's decision: credential revoked, channel deleted, event over.
    Stopped(crate::channel::Stop),
}

/// Queues a frame for writing (written at the next flush or when the buffer fills).
pub(crate) async fn feed<S>(ws: &mut WebSocketStream<S>, frame: Frame) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.feed(Message::Text(frame))
        .await
        .map_err(|e| write_error(&e))
}

/// How a failed write ends the session: a client that did not read within the write timeout
/// (see [`WriteDeadline`]) or a broken connection.
fn write_error(e: &tungstenite::Error) -> End {
    match e {
        tungstenite::Error::Io(err) if err.kind() == io::ErrorKind::TimedOut => End::WriteTimeout,
        _ => End::Error,
    }
}

/// Flushes queued frames, giving up on a client that does not read for `timeout`.
pub(crate) async fn flush<S>(ws: &mut WebSocketStream<S>, timeout: Duration) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, ws.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(write_error(&e)),
        Err(_) => Err(End::WriteTimeout),
    }
}

/// Sends a Close frame with `code` and a reason, then waits for the client's Close (RFC 6455
/// §5.5.1), reading and dropping whatever it sent before: the server then ends TCP with
/// nothing unread, so the client sees a clean close with the code, not a reset (1006). Bounded
/// in time: a client that never answers is simply dropped.
pub(crate) async fn close<S>(ws: &mut WebSocketStream<S>, code: u16, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        loop {
            match ws.next().await {
                Some(Ok(m)) if m.is_close() => return,
                Some(Ok(_)) => {}
                // No longer readable as frames (the rest of a message over the size limit, a
                // protocol error, a stream tungstenite ended): read and drop raw bytes until the
                // client ends TCP.
                Some(Err(_)) | None => break,
            }
        }
        drain(ws.get_mut()).await;
    })
    .await;
}

/// Reads and drops what a client still sends until it ends the connection or goes quiet (it
/// sent its Close and waits for ours to end TCP): a socket closed with unread data makes the
/// kernel answer with a reset, which the client reports as 1006 instead of the code it was sent.
async fn drain<S: AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; DRAIN_CHUNK];
    loop {
        let read = tokio::time::timeout(DRAIN_QUIET, tokio::io::AsyncReadExt::read(s, &mut buf));
        match read.await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}

/// Completes a closing handshake the client started (RFC 6455 §5.5.1): tungstenite queued the
/// echo of the client's Close when it read it; this writes it, bounded in time. Dropping the
/// socket afterwards ends the TCP connection from the server's side, as the RFC asks.
pub(crate) async fn answer_close<S>(ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Not `close`: tungstenite refuses to queue a frame once the peer has closed.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.flush()).await;
}

/// Closes a publisher's socket the way its session ended: 1001 on shutdown (reconnect), 4002
/// when it stopped answering pings, 4003-4006 on an organiser's decision, 1009/1007/1002 for a
/// frame that broke the rules (sent here, after the session let go of the booth, because the
/// closing handshake may wait for the client); other ends need no close frame.
pub(crate) async fn close_publisher<S>(ws: &mut WebSocketStream<S>, end: End)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match end {
        End::Shutdown => close(ws, CLOSE_GOING_AWAY, "server restarting; reconnect").await,
        End::Idle => close(ws, CLOSE_IDLE, "idle: no pong").await,
        End::Stopped(stop) => {
            let (code, reason) = stop.close();
            close(ws, code, reason).await
        }
        end => {
            if let Some((code, reason)) = end.violation() {
                close(ws, code, reason).await
            }
        }
    }
}

/// Counts session ends that are refusals or reaps.
pub fn count_end(metrics: &crate::metrics::Metrics, end: End) {
    match end {
        End::TooBig => metrics.refuse(crate::metrics::Refused::TooBig),
        End::Idle => {
            metrics
                .idle_closes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Maps a read error to how the session ends.
pub(crate) fn read_error(e: &tungstenite::Error) -> End {
    match e {
        tungstenite::Error::Capacity(_) => End::TooBig,
        tungstenite::Error::Utf8(_) => End::BadFrame(1007, "text frame is not UTF-8"),
        tungstenite::Error::Protocol(_) => End::BadFrame(1002, "protocol error"),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            End::ClientClosed
        }
        _ => End::Error,
    }
}

impl End {
    /// The close code and reason a client that broke the rules is sent, if this is such an end.
    pub(crate) fn violation(self) -> Option<(u16, &'static str)> {
        match self {
            End::TooBig => Some((CLOSE_TOO_BIG, "frame or message over the maximum size")),
            End::BadFrame(code, reason) => Some((code, reason)),
            _ => None,
        }
    }
}

/// A session's socket, whose writes fail with [`io::ErrorKind::TimedOut`] once they have made
/// no progress for `limits.write_timeout_secs`. Every write of a session goes through it (frames
/// fed back to back between flushes, pings, the Close frame), so a client that stops reading (a
/// frozen tab in a pocket) cannot pin its session, its socket buffers or a graceful shutdown.
#[derive(Debug)]
pub struct WriteDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Started when a write could not proceed; cleared by any write that does.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Passes a write's outcome through: pending until the deadline, then `TimedOut`.
    fn progress<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, r)
    }
}
