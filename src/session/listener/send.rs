//! What a live listener session writes: committed events not sent yet (a line already sent
//! during a catch-up is skipped), a catch-up from memory when it fell behind the ring (or
//! 4001), and the count of partials it never saw.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::TryRecvError;
use tokio_tungstenite::WebSocketStream;

use super::super::{feed, End};
use crate::channel::Channel;
use crate::record::Committed;

/// Sends every committed event already waiting in the ring (flushed together).
pub(super) async fn send_ready<S>(
    ws: &mut WebSocketStream<S>,
    events: &mut tokio::sync::broadcast::Receiver<Committed>,
    ch: &Channel,
    last_sent: &mut u64,
) -> Result<u64, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut sent = 0;
    loop {
        match events.try_recv() {
            Ok(c) => sent += send_event(ws, c, last_sent).await?,
            Err(TryRecvError::Lagged(_)) => sent += catch_up(ws, ch, last_sent).await?,
            Err(_) => return Ok(sent),
        }
    }
}

/// Partial updates this listener never received (replaced before it was sent one); call
/// after taking the partial. Approximate by one update when a change races the read.
pub(super) fn partials_skipped(ch: &Channel, seen: &mut u64) -> u64 {
    let now = ch.stats.partial_updates.load(Ordering::Acquire);
    let skipped = now.saturating_sub(*seen + 1);
    *seen = now.max(*seen);
    skipped
}

/// Feeds one live event unless it was already sent (after a catch-up).
pub(super) async fn send_event<S>(
    ws: &mut WebSocketStream<S>,
    c: Committed,
    last_sent: &mut u64,
) -> Result<u64, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if c.seq <= *last_sent {
        return Ok(0);
    }
    *last_sent = c.seq;
    feed(ws, c.frame).await?;
    Ok(1)
}

/// The listener fell behind the broadcast ring: resend from memory, or give up (4001).
pub(super) async fn catch_up<S>(
    ws: &mut WebSocketStream<S>,
    ch: &Channel,
    last_sent: &mut u64,
) -> Result<u64, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(missed) = ch.recent_after(*last_sent) else {
        return Err(End::Behind);
    };
    ch.stats.catch_ups.fetch_add(1, Ordering::Relaxed);
    let mut n = 0;
    for c in missed {
        n += send_event(ws, c, last_sent).await?;
    }
    Ok(n)
}
