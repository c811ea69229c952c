//! A listener's connection: hello, backlog, then live events, partials and status.
//!
//! Slow-consumer policy: committed events come from the channel's bounded broadcast ring. A
//! listener that falls more than `limits.listener_queue` events behind is caught up from the
//! channel's in-memory history when it still holds what was missed, and otherwise closed with
//! [`CLOSE_BEHIND`] (4001) so the page reconnects with `since=` and misses nothing. Partials
//! and status are coalesced: a listener only ever receives the newest one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{close, feed, flush, read_error, End};
use crate::channel::{Backlog, Channel};
use crate::event::Committed;
use crate::hub::Hub;
use crate::protocol::{ErrorCode, Refusal, ServerMsg, CLOSE_BEHIND, CLOSE_GOING_AWAY, CLOSE_IDLE};

/// Events read from the store per page when a resume reaches past memory.
const STORE_PAGE: u64 = 500;
const EMPTY_PARTIAL: &str = r#"{"type":"partial","text":""}"#;

/// Runs a listener until the client leaves, falls too far behind, or the server shuts down.
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    hub: Arc<Hub>,
    ch: Arc<Channel>,
    since: Option<u64>,
    shutdown: CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _count = ch.listener_guard();
    let end = match session(&mut ws, &hub, &ch, since, &shutdown).await {
        Ok(end) | Err(end) => end,
    };
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
        End::Behind => {
            ch.stats.behind_closes.fetch_add(1, Ordering::Relaxed);
            close(
                &mut ws,
                CLOSE_BEHIND,
                "too far behind; reconnect with since=",
            )
            .await
        }
        _ => {}
    }
    end
}

async fn session<S>(
    ws: &mut WebSocketStream<S>,
    hub: &Arc<Hub>,
    ch: &Arc<Channel>,
    since: Option<u64>,
    shutdown: &CancellationToken,
) -> Result<End, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &hub.limits;
    let write_timeout = limits.write_timeout();
    let mut sub = ch.subscribe(since, limits.history_on_join);
    let info = &ch.info;
    let hello = ServerMsg::Hello {
        event: &info.event,
        channel: &info.id,
        lang: &info.lang,
        label: &info.label,
        role: "listen",
        seq: sub.last_seq,
        reset: sub.reset,
    }
    .to_frame();
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
                let (hub2, event, id) = (hub.clone(), info.event.clone(), info.id.clone());
                let page =
                    tokio::task::spawn_blocking(move || hub2.store.range(&event, &id, from, to))
                        .await
                        .map_err(|_| End::Error)?;
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

    let ping_every = limits.ping_interval();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    loop {
        let mut sent = 0u64;
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(End::Shutdown),
            r = sub.events.recv() => {
                match r {
                    Ok(c) => sent += send_event(ws, c, &mut last_sent).await?,
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
                    feed(ws, p).await?;
                    sent += 1;
                }
            }
            r = sub.partial.changed() => {
                if r.is_err() {
                    return Ok(End::Shutdown);
                }
                let p = sub.partial.borrow_and_update().clone();
                feed(ws, p).await?;
                sent += 1;
            }
            r = sub.status.changed() => {
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
                    Some(Ok(Message::Text(_))) => {
                        let r = Refusal::new(ErrorCode::NotAllowed, "listeners do not publish; use the publish endpoint with a token");
                        feed(ws, r.to_frame()).await?;
                    }
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
        }
    }
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
