//! A listener's sound, once it asked for it (`?audio=1` or `{"type":"audio","on":true}`).
//!
//! On a plain-TCP socket the channel writes each packet straight to the socket (see
//! `channel/audio.rs`); the session does nothing per packet. On a socket the session must
//! write itself (TLS), it follows the channel's ring of newest packets: a session that falls
//! behind the ring starts again from the newest packet, so it never sends old sound.

use std::sync::atomic::Ordering;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{write_error, End};
use crate::channel::{AudioSlot, Channel, DirectSocket, Packet};

/// Packets a session writes in one go before it flushes.
const BATCH: u64 = 8;

enum Mode {
    Off,
    Direct(AudioSlot),
    Session(broadcast::Receiver<Packet>),
}

/// Whether and how a listener receives its channel's sound.
pub struct AudioListener<'a> {
    ch: &'a Channel,
    conn: Option<&'a DirectSocket>,
    mode: Mode,
}

impl<'a> AudioListener<'a> {
    /// Not listening yet; `conn` is the plain-TCP socket the channel may write to directly.
    pub fn new(ch: &'a Channel, conn: Option<&'a DirectSocket>) -> Self {
        AudioListener {
            ch,
            conn,
            mode: Mode::Off,
        }
    }

    /// Starts or stops the sound.
    pub fn set(&mut self, on: bool) {
        match (on, &self.mode) {
            (true, Mode::Off) => {
                self.mode = match self.conn {
                    Some(conn) => Mode::Direct(self.ch.audio().join_direct(conn)),
                    None => Mode::Session(self.ch.audio().subscribe()),
                };
            }
            (false, Mode::Direct(_) | Mode::Session(_)) => self.leave(),
            _ => {}
        }
    }

    /// Whether this session writes packets itself.
    pub fn writes(&self) -> bool {
        matches!(self.mode, Mode::Session(_))
    }

    fn leave(&mut self) {
        if let Mode::Direct(slot) = std::mem::replace(&mut self.mode, Mode::Off) {
            self.ch.audio().leave_direct(slot);
        }
    }

    /// Waits for the next packet this session must write itself (pending forever unless it
    /// does); `None` when it was behind the ring and starts again from the next packet.
    pub async fn recv(&mut self) -> Option<Packet> {
        let Mode::Session(rx) = &mut self.mode else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(p) => Some(p),
            Err(RecvError::Lagged(n)) => {
                // Behind the ring: old sound is worthless, start again from the newest.
                self.ch
                    .audio()
                    .stats
                    .skipped
                    .fetch_add(n, Ordering::Relaxed);
                *rx = rx.resubscribe();
                None
            }
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }

    /// A packet already waiting, if any (to write a burst with one flush).
    pub fn try_next(&mut self) -> Option<Packet> {
        let Mode::Session(rx) = &mut self.mode else {
            return None;
        };
        match rx.try_recv() {
            Ok(p) => Some(p),
            Err(TryRecvError::Lagged(n)) => {
                self.ch
                    .audio()
                    .stats
                    .skipped
                    .fetch_add(n, Ordering::Relaxed);
                *rx = rx.resubscribe();
                None
            }
            Err(_) => None,
        }
    }

    /// Feeds `first` and the packets waiting after it (a few at most) to `ws`; how many.
    pub async fn feed<S>(&mut self, ws: &mut WebSocketStream<S>, first: Packet) -> Result<u64, End>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(p) = next.take() {
            ws.feed(Message::Binary(p.message()))
                .await
                .map_err(|e| write_error(&e))?;
            n += 1;
            if n < BATCH {
                next = self.try_next();
            }
        }
        self.ch
            .audio()
            .stats
            .frames_out
            .fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

impl Drop for AudioListener<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}
