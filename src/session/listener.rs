//! A listener's connection: hello, backlog, then live events, partials and status.
//!
//! Slow-consumer policy: committed events come from the channel's bounded broadcast ring. A
//! listener that falls more than `limits.listener_queue` events behind is caught up from the
//! channel's in-memory history when it still holds what was missed, and otherwise closed with
//! [`CLOSE_BEHIND`] (4001) so the page reconnects with `since=` and misses nothing. Partials
//! and status are coalesced: a listener only ever receives the newest one.
//!
//! Hot path: once a listener is caught up, its session joins the channel's direct fan-out
//! ([`crate::channel::Fanout`]) and sleeps; the fan-out task writes each frame straight to its socket.
//! The session wakes only to read, ping, or take over again when its socket is full.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
// The runtime's clock, so tests can pause and advance it (pings, idle closes, feedback rate).
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::audio::AudioListener;
use super::{answer_close, close, feed, flush, read_error, End};
use crate::channel::{Backlog, Channel, DirectSocket, EMPTY_PARTIAL};
use crate::hub::Hub;
use crate::protocol::{
    parse_client, ClientMsg, ErrorCode, Refusal, CLOSE_BEHIND, CLOSE_GOING_AWAY, CLOSE_IDLE,
};
use crate::record::Committed;

/// Shortest interval between two feedback messages from one listener.
pub const FEEDBACK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);
/// Events read from the store per page when a resume reaches past memory.
const STORE_PAGE: u64 = 500;

/// Runs a listener until the client leaves, falls too far behind, or the server shuts down.
/// `counted`: whether it counts as one of the channel's listeners (not a booth's monitor);
/// `audio`: whether it asked for the channel's sound at once (`?audio=1`).
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    direct: Option<DirectSocket>,
    hub: Arc<Hub>,
    ch: Arc<Channel>,
    (since, counted, audio): (Option<u64>, bool, bool),
    shutdown: CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let _count = counted.then(|| ch.listener_guard());
    if let Some(conn) = &direct {
        if let Err(e) = conn.set_send_buffer(super::LISTENER_SEND_BUFFER) {
            tracing::debug!(error = %e, "cannot bound the listener's send buffer");
        }
    }
    let mut slot = None;
    let end = match session(
        &mut ws,
        &hub,
        &ch,
        (since, audio),
        &shutdown,
        direct.as_ref(),
        &mut slot,
    )
    .await
    {
        Ok(end) | Err(end) => end,
    };
    if let Some(conn) = &direct {
        ch.fanout().leave(conn, slot);
    }
    match end {
        End::Shutdown => {
            close(
                &mut ws,
                CLOSE_GOING_AWAY,
                "server restarting; reconnect with since=",
            )
            .await
        }
        End::Idle => close(&mut ws, CLOSE_IDLE, "idle: no pong").await,
        End::Stopped(stop) => {
            let (code, reason) = stop.close();
            close(&mut ws, code, reason).await
        }
        End::Behind => {
            ch.stats.behind_closes.fetch_add(1, Ordering::Relaxed);
            close(
                &mut ws,
                CLOSE_BEHIND,
                "too far behind; reconnect with since=",
            )
            .await
        }
        // Out of the fan-out by now, so the echo cannot cut into one of its frames.
        End::ClientClosed => answer_close(&mut ws).await,
        _ => {}
    }
    end
}

async fn session<S>(
    ws: &mut WebSocketStream<S>,
    hub: &Arc<Hub>,
    ch: &Arc<Channel>,
    (since, audio): (Option<u64>, bool),
    shutdown: &CancellationToken,
    conn: Option<&DirectSocket>,
    slot: &mut Option<usize>,
) -> Result<End, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &hub.limits;
    let write_timeout = limits.write_timeout();
    let mut sub = ch.subscribe(since, limits.history_on_join);
    let info = &ch.info;
    let hello = info.hello("listen", sub.last_seq, sub.reset, None);
    feed(ws, hello).await?;
    let status = sub.status.borrow_and_update().clone();
    feed(ws, status).await?;
    let mut sent = 2u64;
    match std::mem::replace(&mut sub.backlog, Backlog::Memory(Vec::new())) {
        Backlog::Memory(events) => {
            for c in events {
                feed(ws, c.frame).await?;
                sent += 1;
            }
        }
        Backlog::Store { after, upto } => {
            let mut from = after;
            while from < upto {
                let to = (from + STORE_PAGE).min(upto);
                let page = hub.store.read_range(&info.event, &info.id, from, to).await;
                let page = page.map_err(|e| {
                    tracing::error!(error = %e, "reading history for a resume failed");
                    End::Error
                })?;
                for r in &page {
                    feed(ws, r.to_frame()).await?;
                    sent += 1;
                }
                flush(ws, write_timeout).await?;
                from = to;
            }
        }
    }
    let mut last_sent = sub.last_seq;
    let partial = sub.partial.borrow_and_update().clone();
    if partial != EMPTY_PARTIAL {
        feed(ws, partial).await?;
        sent += 1;
    }
    flush(ws, write_timeout).await?;
    ch.stats.frames_out.fetch_add(sent, Ordering::Relaxed);
    // The channel's sound, once asked for (after the hello and backlog: docs/protocol.md#sound).
    let mut sound = AudioListener::new(ch, conn);
    sound.set(audio);

    let ping_every = limits.ping_interval();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let mut last_feedback: Option<Instant> = None;
    // Observability, off the per-frame path: a sampled listener reports publish-to-send
    // latency once per flush; coalesced partials are counted from the channel's update count.
    let sampled = hub.metrics.sample_latency();
    let mut partials_seen = ch.stats.partial_updates.load(Ordering::Acquire);
    // Created once: a fresh `cancelled()` per turn would register and unregister every time.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let stopped = ch.life.listener_stop();
    tokio::pin!(stopped);
    let mut direct = false;
    loop {
        let mut sent = 0u64;
        let mut coalesced = 0u64;
        let mut live_ts = 0i64;
        if let (Some(conn), false) = (conn, direct) {
            // Caught up with everything queued for us: hand the writing to the fan-out.
            let caught_up = || {
                !sub.partial.has_changed().unwrap_or(true)
                    && !sub.status.has_changed().unwrap_or(true)
            };
            if sub.events.is_empty() && caught_up() {
                direct = ch.fanout().join(conn, slot, last_sent, caught_up, || {
                    let mut feeds = ch.fanout_feeds();
                    feeds.metrics = Some(hub.metrics.clone());
                    feeds
                });
            }
        }
        let kicked = async {
            match conn {
                Some(c) => c.kicked().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut cancelled => return Ok(End::Shutdown),
            stop = &mut stopped => return Ok(End::Stopped(stop)),
            _ = kicked, if direct => {
                // The socket was full: take over from where the fan-out stopped.
                direct = false;
                if let Some(c) = conn {
                    let t = c.takeover();
                    last_sent = t.last_sent;
                    // What the fan-out already sent is not sent again.
                    for (rx, sent) in [(&mut sub.partial, t.partial), (&mut sub.status, t.status)] {
                        if sent.is_some_and(|f| *rx.borrow() == f) {
                            rx.borrow_and_update();
                        }
                    }
                }
                partials_seen = ch.stats.partial_updates.load(Ordering::Acquire);
                sub.events = sub.events.resubscribe();
                sent += catch_up(ws, ch, &mut last_sent).await?;
            }
            r = sub.events.recv(), if !direct => {
                match r {
                    Ok(c) => {
                        live_ts = c.ts;
                        sent += send_event(ws, c, &mut last_sent).await?
                    }
                    Err(RecvError::Lagged(_)) => sent += catch_up(ws, ch, &mut last_sent).await?,
                    Err(RecvError::Closed) => return Ok(End::Shutdown),
                }
                // Batch everything else that is ready into the same flush.
                loop {
                    match sub.events.try_recv() {
                        Ok(c) => sent += send_event(ws, c, &mut last_sent).await?,
                        Err(TryRecvError::Lagged(_)) => sent += catch_up(ws, ch, &mut last_sent).await?,
                        Err(_) => break,
                    }
                }
                if sub.partial.has_changed().unwrap_or(false) {
                    let p = sub.partial.borrow_and_update().clone();
                    coalesced += partials_skipped(ch, &mut partials_seen);
                    feed(ws, p).await?;
                    sent += 1;
                }
            }
            r = sub.partial.changed(), if !direct => {
                if r.is_err() {
                    return Ok(End::Shutdown);
                }
                // A line committed just before this partial changed goes first: the partial
                // is cleared only after the line that completes it is in the ring.
                loop {
                    match sub.events.try_recv() {
                        Ok(c) => sent += send_event(ws, c, &mut last_sent).await?,
                        Err(TryRecvError::Lagged(_)) => sent += catch_up(ws, ch, &mut last_sent).await?,
                        Err(_) => break,
                    }
                }
                let p = sub.partial.borrow_and_update().clone();
                coalesced += partials_skipped(ch, &mut partials_seen);
                feed(ws, p).await?;
                sent += 1;
            }
            p = sound.recv(), if sound.writes() => {
                if let Some(p) = p {
                    sound.feed(ws, p).await?;
                }
            }
            r = sub.status.changed(), if !direct => {
                if r.is_err() {
                    return Ok(End::Shutdown);
                }
                let s = sub.status.borrow_and_update().clone();
                feed(ws, s).await?;
                sent += 1;
            }
            msg = ws.next() => {
                last_heard = Instant::now();
                match msg {
                    None => return Ok(End::ClientClosed),
                    Some(Err(e)) => {
                        let (end, code) = read_error(&e);
                        if let Some((code, reason)) = code {
                            close(ws, code, reason).await;
                        }
                        return Ok(end);
                    }
                    Some(Ok(Message::Close(_))) => return Ok(End::ClientClosed),
                    Some(Ok(Message::Binary(_))) => {
                        let r = Refusal::new(ErrorCode::BinaryNotSupported, "binary frames are not part of the protocol; send JSON text");
                        feed(ws, r.to_frame()).await?;
                    }
                    Some(Ok(Message::Text(t))) => match parse_client(&t) {
                        Ok(ClientMsg::Feedback { kind }) => {
                            if last_feedback.is_some_and(|at| at.elapsed() < FEEDBACK_INTERVAL) {
                                let r = Refusal::new(ErrorCode::RateLimited, "one feedback every few seconds, please");
                                feed(ws, r.to_frame()).await?;
                            } else {
                                last_feedback = Some(Instant::now());
                                ch.booth.feedback(kind);
                            }
                        }
                        Ok(ClientMsg::Audio { on }) => sound.set(on),
                        Ok(_) => {
                            let r = Refusal::new(ErrorCode::NotAllowed, "listeners do not publish; use the publish endpoint with a token");
                            feed(ws, r.to_frame()).await?;
                        }
                        Err(r) => feed(ws, r.to_frame()).await?,
                    },
                    Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_every * 2 {
                    return Ok(End::Idle);
                }
                use futures_util::SinkExt;
                ws.feed(Message::Ping(Default::default())).await.map_err(|_| End::Error)?;
            }
        }
        flush(ws, write_timeout).await?;
        if sent > 0 {
            ch.stats.frames_out.fetch_add(sent, Ordering::Relaxed);
            if coalesced > 0 {
                ch.stats
                    .partials_coalesced
                    .fetch_add(coalesced, Ordering::Relaxed);
            }
            if sampled && live_ts > 0 {
                let ms = (crate::clock::now_ms() - live_ts).max(0) as u64;
                hub.metrics
                    .publish_to_send
                    .observe(std::time::Duration::from_millis(ms));
            }
        }
    }
}

/// Partial updates this listener never received (replaced before it was sent one); call
/// after taking the partial. Approximate by one update when a change races the read.
fn partials_skipped(ch: &Channel, seen: &mut u64) -> u64 {
    let now = ch.stats.partial_updates.load(Ordering::Acquire);
    let skipped = now.saturating_sub(*seen + 1);
    *seen = now.max(*seen);
    skipped
}

/// Feeds one live event unless it was already sent (after a catch-up).
async fn send_event<S>(
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
async fn catch_up<S>(
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
