//! A listener's connection: hello, backlog, then live events, partials and status.
//!
//! Slow-consumer policy: committed events come from the channel's bounded broadcast ring. A
//! listener that falls more than `limits.listener_queue` events behind is caught up from the
//! channel's in-memory history when it still holds what was missed, and otherwise closed with
//! [`CLOSE_BEHIND`] (4001) so the page reconnects with `since=` and misses nothing. Partials
//! and status are coalesced: a listener only ever receives the newest one.
//!
//! Hot path: once a listener is caught up, its session parks it with the channel's direct
//! fan-out ([`crate::channel::Fanout`]) and ends: the fan-out writes each frame straight to
//! its socket and pings it, the channel's reader takes its pongs. A new session starts
//! ([`resume`], through the channel's [`Resume`] hook) only when the listener needs one: its
//! socket is full, it sent something other than a pong, it went silent, the server stops, or
//! an organiser closed the channel. A listener that asked for sound parks too: the channel
//! writes its packets to the same socket, parked or not ([`super::audio`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
// The runtime's clock, so tests can pause and advance it (pings, idle closes, feedback rate).
use tokio::time::Instant;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::audio::{self, AudioListener};
use super::{answer_close, close, feed, flush, read_error, End};
use crate::channel::{AudioSlot, Channel, CountGuard, DirectSocket, Subscription};
use crate::hub::Hub;
use crate::limiter::ConnPermit;
use crate::protocol::{
    parse_client, ClientMsg, ErrorCode, Refusal, CLOSE_BEHIND, CLOSE_GOING_AWAY, CLOSE_IDLE,
};

mod resume;
mod send;
mod start;
use resume::parking;
use send::{catch_up, partials_skipped, send_event, send_ready};
use start::start;

/// Shortest interval between two feedback messages from one listener.
pub const FEEDBACK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);
/// Events read from the store per page when a resume reaches past memory.
const STORE_PAGE: u64 = 500;

/// A listener connection, as the route hands it over.
#[derive(Debug)]
pub struct Listen {
    pub hub: Arc<Hub>,
    pub ch: Arc<Channel>,
    pub since: Option<u64>,
    /// Whether it counts as one of the channel's listeners (not a booth's monitor).
    pub counted: bool,
    /// Whether it asked for the channel's sound at once (`?audio=1`).
    pub audio: bool,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// The connection's slot in the connection limits, held as long as the connection lives.
    pub permit: Option<Arc<ConnPermit>>,
}

/// What a listener holds for as long as it is connected, across sessions and parking.
#[derive(Debug)]
struct Held {
    ch: Arc<Channel>,
    _count: Option<CountGuard>,
    _permit: Option<Arc<ConnPermit>>,
    last_feedback: Option<Instant>,
    /// Its place among the channel's direct sound listeners, once it asked for sound.
    sound: Option<AudioSlot>,
}

impl Drop for Held {
    fn drop(&mut self) {
        audio::leave(&self.ch, &mut self.sound);
    }
}

/// What a session runs with.
struct Ctx {
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// The plain-TCP socket the fan-out may write to (none over TLS).
    conn: Option<DirectSocket>,
}

/// Where a session is: its receivers, the last seq it sent, the partial updates it has seen
/// (to count the ones it skips).
struct Pos {
    sub: Subscription,
    last_sent: u64,
    partials_seen: u64,
}

/// How a session's live part ended.
enum Out {
    Ended(End),
    /// Parked with the fan-out: the channel holds the listener now.
    Parked,
}

/// Runs a listener until the client leaves, falls too far behind, or the server shuts down,
/// or until it parks (a later session takes over through [`resume`]).
pub async fn run<S>(mut ws: WebSocketStream<S>, direct: Option<DirectSocket>, l: Listen)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let count = l.counted.then(|| l.ch.listener_guard());
    if let Some(conn) = &direct {
        if let Err(e) = conn.set_send_buffer(super::LISTENER_SEND_BUFFER) {
            tracing::debug!(error = %e, "cannot bound the listener's send buffer");
        }
        conn.track_frames();
    }
    let mut held = Some(Box::new(Held {
        ch: l.ch.clone(),
        _count: count,
        _permit: l.permit,
        last_feedback: None,
        sound: None,
    }));
    let cx = Ctx {
        hub: l.hub,
        shutdown: l.shutdown,
        tracker: l.tracker,
        conn: direct,
    };
    let out = match start(&mut ws, &cx, &l.ch, l.since).await {
        // The sound, once asked for, after the hello and backlog (docs/protocol.md#sound).
        Ok(pos) => live(&mut ws, &cx, &l.ch, pos, &mut held, (false, l.audio)).await,
        Err(end) => Out::Ended(end),
    };
    if let Out::Ended(end) = out {
        finish(&mut ws, &cx, &l.ch, &mut held, end).await;
    }
}

/// Leaves the fan-out and the sound, sends the close frame the end calls for, counts the end.
async fn finish<S>(
    ws: &mut WebSocketStream<S>,
    cx: &Ctx,
    ch: &Channel,
    held: &mut Option<Box<Held>>,
    end: End,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(conn) = &cx.conn {
        ch.fanout().leave(conn);
    }
    if let Some(h) = held.as_mut() {
        audio::leave(ch, &mut h.sound);
    }
    match end {
        End::Shutdown => {
            close(
                ws,
                CLOSE_GOING_AWAY,
                "server restarting; reconnect with since=",
            )
            .await
        }
        End::Idle => close(ws, CLOSE_IDLE, "idle: no pong").await,
        End::Stopped(stop) => {
            let (code, reason) = stop.close();
            close(ws, code, reason).await
        }
        End::Behind => {
            ch.stats.behind_closes.fetch_add(1, Ordering::Relaxed);
            close(ws, CLOSE_BEHIND, "too far behind; reconnect with since=").await
        }
        // Out of the fan-out by now, so the echo cannot cut into one of its frames.
        End::ClientClosed => answer_close(ws).await,
        _ => {}
    }
    cx.hub.metrics.closed();
    super::count_end(&cx.hub.metrics, end);
    tracing::debug!(?end, "listener left");
}

/// Live events, partials and status until the session parks or ends.
async fn live<S>(
    ws: &mut WebSocketStream<S>,
    cx: &Ctx,
    ch: &Arc<Channel>,
    mut pos: Pos,
    held: &mut Option<Box<Held>>,
    read_audio: (bool, bool),
) -> Out
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match live_loop(ws, cx, ch, &mut pos, held, read_audio).await {
        Ok(out) => out,
        Err(end) => Out::Ended(end),
    }
}

async fn live_loop<S>(
    ws: &mut WebSocketStream<S>,
    cx: &Ctx,
    ch: &Arc<Channel>,
    pos: &mut Pos,
    held: &mut Option<Box<Held>>,
    (mut read_first, audio_on): (bool, bool),
) -> Result<Out, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hub = &cx.hub;
    let limits = &hub.limits;
    let write_timeout = limits.write_timeout();
    let ping_every = limits.ping_interval();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    // Observability, off the per-frame path: a sampled listener reports publish-to-send
    // latency once per flush; coalesced partials are counted from the channel's update count.
    let sampled = hub.metrics.sample_latency();
    let Pos {
        sub,
        last_sent,
        partials_seen,
    } = pos;
    // Created once: a fresh `cancelled()` per turn would register and unregister every time.
    let cancelled = cx.shutdown.cancelled();
    tokio::pin!(cancelled);
    let stopped = ch.life.listener_stop();
    tokio::pin!(stopped);
    let mut sound = AudioListener::new(ch, cx.conn.as_ref());
    if audio_on {
        sound.set(true, &mut held_mut(held).sound);
    }
    loop {
        let mut sent = 0u64;
        let mut coalesced = 0u64;
        let mut live_ts = 0i64;
        let parkable = if read_first || cx.conn.is_none() {
            None
        } else {
            held.take()
        };
        if let (Some(conn), Some(keep)) = (&cx.conn, parkable) {
            if try_park(cx, ch, conn, sub, *last_sent, keep, held) {
                return Ok(Out::Parked);
            }
        }
        tokio::select! {
            biased;
            _ = &mut cancelled => return Ok(Out::Ended(End::Shutdown)),
            stop = &mut stopped => return Ok(Out::Ended(End::Stopped(stop))),
            r = sub.events.recv() => {
                match r {
                    Ok(c) => {
                        live_ts = c.ts;
                        sent += send_event(ws, c, last_sent).await?
                    }
                    Err(RecvError::Lagged(_)) => sent += catch_up(ws, ch, last_sent).await?,
                    Err(RecvError::Closed) => return Ok(Out::Ended(End::Shutdown)),
                }
                // Batch everything else that is ready into the same flush.
                sent += send_ready(ws, &mut sub.events, ch, last_sent).await?;
                if sub.partial.has_changed().unwrap_or(false) {
                    let p = sub.partial.borrow_and_update().clone();
                    coalesced += partials_skipped(ch, partials_seen);
                    feed(ws, p).await?;
                    sent += 1;
                }
            }
            r = sub.partial.changed() => {
                if r.is_err() {
                    return Ok(Out::Ended(End::Shutdown));
                }
                // A line committed just before this partial changed goes first: the partial
                // is cleared only after the line that completes it is in the ring.
                sent += send_ready(ws, &mut sub.events, ch, last_sent).await?;
                let p = sub.partial.borrow_and_update().clone();
                coalesced += partials_skipped(ch, partials_seen);
                feed(ws, p).await?;
                sent += 1;
            }
            p = sound.recv(), if sound.writes() => {
                if let Some(p) = p {
                    sound.feed(ws, p).await?;
                }
            }
            r = sub.status.changed() => {
                if r.is_err() {
                    return Ok(Out::Ended(End::Shutdown));
                }
                let s = sub.status.borrow_and_update().clone();
                feed(ws, s).await?;
                sent += 1;
            }
            msg = ws.next() => {
                last_heard = Instant::now();
                read_first = false;
                if let Some(out) = on_message(ws, msg, ch, held, &mut sound).await? {
                    return Ok(out);
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_every * 2 {
                    return Ok(Out::Ended(End::Idle));
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

/// Tries to park a caught-up listener: its socket goes to the channel's fan-out and the
/// session ends (true). Otherwise what the session holds stays with it.
fn try_park(
    cx: &Ctx,
    ch: &Arc<Channel>,
    conn: &DirectSocket,
    sub: &Subscription,
    last_sent: u64,
    keep: Box<Held>,
    held: &mut Option<Box<Held>>,
) -> bool {
    let caught_up =
        || !sub.partial.has_changed().unwrap_or(true) && !sub.status.has_changed().unwrap_or(true);
    if !(sub.events.is_empty() && caught_up()) {
        *held = Some(keep);
        return false;
    }
    let shown = [sub.partial.borrow().clone(), sub.status.borrow().clone()];
    let parked = ch.fanout().join(
        conn,
        last_sent,
        shown,
        caught_up,
        || {
            let mut feeds = ch.fanout_feeds();
            feeds.metrics = Some(cx.hub.metrics.clone());
            feeds.parking = Some(parking(cx));
            feeds
        },
        keep,
    );
    match parked {
        Ok(()) => true,
        Err(keep) => {
            *held = keep.downcast().ok();
            false
        }
    }
}

/// What a listener sent: feedback, sound on or off, a close; anything else is refused with
/// a specific error and the connection stays. `Some` when the session ends.
async fn on_message<S>(
    ws: &mut WebSocketStream<S>,
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ch: &Channel,
    held: &mut Option<Box<Held>>,
    sound: &mut AudioListener<'_>,
) -> Result<Option<Out>, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match msg {
        None => return Ok(Some(Out::Ended(End::ClientClosed))),
        Some(Err(e)) => {
            let end = read_error(&e);
            if let Some((code, reason)) = end.violation() {
                close(ws, code, reason).await;
            }
            return Ok(Some(Out::Ended(end)));
        }
        Some(Ok(Message::Close(_))) => return Ok(Some(Out::Ended(End::ClientClosed))),
        Some(Ok(Message::Binary(_))) => {
            let r = Refusal::new(
                ErrorCode::BinaryNotSupported,
                "binary frames are not part of the protocol; send JSON text",
            );
            feed(ws, r.to_frame()).await?;
        }
        Some(Ok(Message::Text(t))) => match parse_client(&t) {
            Ok(ClientMsg::Feedback { kind }) => {
                let last_feedback = &mut held_mut(held).last_feedback;
                if last_feedback.is_some_and(|at| at.elapsed() < FEEDBACK_INTERVAL) {
                    let r = Refusal::new(
                        ErrorCode::RateLimited,
                        "one feedback every few seconds, please",
                    );
                    feed(ws, r.to_frame()).await?;
                } else {
                    *last_feedback = Some(Instant::now());
                    ch.booth.feedback(kind);
                }
            }
            Ok(ClientMsg::Audio { on }) => sound.set(on, &mut held_mut(held).sound),
            Ok(_) => {
                let r = Refusal::new(
                    ErrorCode::NotAllowed,
                    "listeners do not publish; use the publish endpoint with a token",
                );
                feed(ws, r.to_frame()).await?;
            }
            Err(r) => feed(ws, r.to_frame()).await?,
        },
        Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
    }
    Ok(None)
}

/// What the listener holds, which its running session always has (it is handed over only
/// when the session parks, and the session ends then).
fn held_mut(held: &mut Option<Box<Held>>) -> &mut Held {
    held.as_mut().expect("held while the session runs")
}
