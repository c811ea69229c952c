//! A listener's sound, once it asked for it (`?audio=1` or `{"type":"audio","on":true}`).
//!
//! On a direct socket (plain TCP or TLS from the server's own accept loop) the channel writes
//! each packet straight to the socket (see `channel/audio.rs`), while a session runs for the
//! listener and while it is parked alike; the session does nothing per packet. The listener's
//! place among those sockets ([`AudioSlot`]) is kept with what it holds across sessions, not
//! by a session. On any other socket the session follows the channel's ring of newest packets
//! (such a listener never parks): a session that falls behind the ring starts again from the
//! newest packet, so it never sends old sound.

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

/// A session's part in its listener's sound.
pub struct AudioListener<'a> {
    ch: &'a Channel,
    conn: Option<&'a DirectSocket>,
    /// The ring this session writes from (no direct socket).
    ring: Option<broadcast::Receiver<Packet>>,
}

impl<'a> AudioListener<'a> {
    /// `conn` is the socket the channel may write to directly.
    pub fn new(ch: &'a Channel, conn: Option<&'a DirectSocket>) -> Self {
        AudioListener {
            ch,
            conn,
            ring: None,
        }
    }

    /// Starts or stops the sound; `direct` is the listener's place among the channel's direct
    /// sound listeners, which outlives this session (left with [`leave`]).
    pub fn set(&mut self, on: bool, direct: &mut Option<AudioSlot>) {
        match (on, self.conn) {
            (true, Some(conn)) if direct.is_none() => {
                *direct = Some(self.ch.audio().join_direct(conn));
            }
            (true, None) if self.ring.is_none() => self.ring = Some(self.ch.audio().subscribe()),
            (true, _) => {}
            (false, _) => {
                leave(self.ch, direct);
                self.ring = None;
            }
        }
    }

    /// Whether this session writes packets itself.
    pub fn writes(&self) -> bool {
        self.ring.is_some()
    }

    /// Waits for the next packet this session must write itself (pending forever unless it
    /// does); `None` when it was behind the ring and starts again from the next packet.
    pub async fn recv(&mut self) -> Option<Packet> {
        let Some(rx) = &mut self.ring else {
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
        let Some(rx) = &mut self.ring else {
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

/// Leaves the channel's direct sound listeners, if the listener is one (before its socket
/// closes: no packet may follow the Close frame).
pub fn leave(ch: &Channel, direct: &mut Option<AudioSlot>) {
    if let Some(slot) = direct.take() {
        ch.audio().leave_direct(slot);
    }
}
