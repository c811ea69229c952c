//! A publisher's connection: partials, finals and edits in; acks, errors and status out.
//!
//! Finals are pipelined: a publisher may send many without waiting, each is acked in order
//! once the store has committed it. At most `limits.publisher_in_flight` may be unacked; beyond
//! that the session stops reading the socket until acks drain (backpressure, no unbounded queue).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{close_publisher, feed, flush, read_error, End};
use crate::channel::Channel;
use crate::channel::{Backlog, Subscription};
use crate::hub::Hub;
use crate::ingest::audio::AudioIn;
use crate::ingest::{self, Admitted, Ingest, Publisher};
use crate::limiter::TokenBucket;
use crate::metrics::Refused;
use crate::protocol::{parse_client, ClientMsg, ErrorCode, Frame, Refusal, ServerMsg};
use crate::store::Ack;

type AckResult = Result<Ack, Refusal>;

/// An ack on its way; boxed once per final (publisher path, not per recipient).
/// Resolves to the final's client `id` or the edit's `of`, and the store's answer.
type PendingAck = Pin<Box<dyn Future<Output = (Naming, AckResult)> + Send>>;

/// What names a pipelined message in its answer: a final's client `id`, an edit's `of`.
type Naming = (Option<String>, Option<u64>);

fn pending_ack(naming: Naming, rx: oneshot::Receiver<AckResult>) -> PendingAck {
    Box::pin(async move { (naming, ingest::resolve(rx).await) })
}

fn ack_frame((id, of): &Naming, result: &AckResult) -> Frame {
    match result {
        Ok(ack) => ServerMsg::Ack {
            seq: ack.seq,
            id: id.as_deref().map(Into::into),
            duplicate: ack.duplicate,
        }
        .to_frame(),
        // The store refuses an edit of an edit (or of a handover) with unknown_seq: name it.
        Err(r) => r.to_frame_for(id.as_deref(), *of),
    }
}

/// Who a publisher is: the display name (`?name=`) and which of the channel's publish tokens
/// it connected with (its index).
#[derive(Debug, Clone)]
pub struct Who {
    pub name: String,
    pub credential: u32,
}

/// Runs a publisher until the client leaves or the server shuts down. On shutdown, finals
/// already received are still stored and acked before the Close frame.
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    hub: Arc<Hub>,
    ingest: Arc<Ingest>,
    ch: Arc<Channel>,
    who: Who,
    shutdown: CancellationToken,
    revoked: Option<CancellationToken>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = who.name;
    let (count, handover) = ch.publisher_join(&name);
    // Stored in order with the lines.
    ingest.store_handover(&ch, handover).await;
    let me = Publisher {
        id: count.id(),
        name: &name,
        credential: Some(who.credential),
    };
    // In a cluster the air is asked of the stream (on air if nobody is, or if it is the
    // same person coming back from another node).
    ingest.joined(&ch, me).await;
    let mut pending = FuturesOrdered::new();
    // The partial generation of this publisher's last partial, cleared when it leaves.
    let mut shown = None;
    let end = match session(
        &mut ws,
        (&hub, &ingest),
        &ch,
        (me, &mut shown),
        (&shutdown, revoked),
        &mut pending,
    )
    .await
    {
        Ok(end) | Err(end) => end,
    };
    if let Some(gen) = shown {
        ingest.clear_partial(&ch, gen).await;
    }
    // Off the booth at once: the closing handshake below may wait for the client, and a
    // partner (or this person reconnecting with a new credential) must not wait for it.
    drop(count);
    // Ack what the store accepted before we stop, so the publisher need not resend it.
    let timeout = hub.limits.write_timeout();
    while let Some((naming, result)) = pending.next().await {
        if feed(&mut ws, ack_frame(&naming, &result)).await.is_err() {
            break;
        }
    }
    let _ = flush(&mut ws, timeout).await;
    close_publisher(&mut ws, end).await;
    end
}

async fn session<S>(
    ws: &mut WebSocketStream<S>,
    (hub, ingest): (&Hub, &Ingest),
    ch: &Arc<Channel>,
    (me, shown): (Publisher<'_>, &mut Option<u64>),
    (shutdown, revoked): (&CancellationToken, Option<CancellationToken>),
    pending: &mut FuturesOrdered<PendingAck>,
) -> Result<End, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &hub.limits;
    let write_timeout = limits.write_timeout();
    let mut status = ch.status_receiver();
    let mut booth = ch.booth.subscribe();
    let mut source: Option<Subscription> = None;
    let info = &ch.info;
    let hello = info.hello("publish", ch.last_seq(), false, Some(me.id));
    feed(ws, hello).await?;
    let first = status.borrow_and_update().clone();
    feed(ws, first).await?;
    let first = booth.borrow_and_update().clone();
    feed(ws, first).await?;
    flush(ws, write_timeout).await?;

    let ping_every = limits.ping_interval();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let max_in_flight = limits.publisher_in_flight;
    let mut sound = AudioIn::partner(me.id, ingest.audio_config());
    let mut rate = (limits.publisher_rate > 0.0).then(|| {
        TokenBucket::new(
            limits.publisher_rate,
            limits.publisher_burst as f64,
            Instant::now(),
        )
    });
    let stopped = ch.life.publisher_stop(revoked);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(End::Shutdown),
            stop = &mut stopped => return Ok(End::Stopped(stop)),
            Some((naming, result)) = pending.next(), if !pending.is_empty() => {
                feed(ws, ack_frame(&naming, &result)).await?;
            }
            r = status.changed() => {
                if r.is_err() {
                    return Ok(End::Shutdown);
                }
                let s = status.borrow_and_update().clone();
                feed(ws, s).await?;
            }
            r = booth.changed() => {
                if r.is_err() {
                    return Ok(End::Shutdown);
                }
                let b = booth.borrow_and_update().clone();
                feed(ws, b).await?;
            }
            frame = next_source_frame(&mut source) => {
                feed(ws, frame).await?;
            }
            msg = ws.next(), if pending.len() < max_in_flight => {
                last_heard = Instant::now();
                let text = match msg {
                    None => return Ok(End::ClientClosed),
                    Some(Err(e)) => {
                        return Ok(read_error(&e));
                    }
                    Some(Ok(Message::Close(_))) => return Ok(End::ClientClosed),
                    Some(Ok(Message::Binary(b))) => {
                        // Sound: one Opus packet, heard only while this partner is on air.
                        if let Err(r) = ingest.admit_audio(ch, &mut sound, &b).await {
                            hub.metrics.refuse_message(r.code);
                            feed(ws, r.to_frame()).await?;
                        }
                        None
                    }
                    Some(Ok(Message::Text(t))) => {
                        if rate.as_mut().is_some_and(|b| !b.try_take(Instant::now())) {
                            hub.metrics.refuse(Refused::RateLimited);
                            feed(ws, rate_limited(&t, limits.publisher_rate)).await?;
                            None
                        } else {
                            Some(t)
                        }
                    }
                    Some(Ok(_)) => None,
                };
                if let Some(text) = text {
                    match parse_client(&text) {
                        Err(r) => {
                            hub.metrics.refuse_message(r.code);
                            feed(ws, r.to_frame()).await?
                        }
                        Ok(ClientMsg::FollowSource { on }) => {
                            follow_source(ws, hub, ch, on, &mut source).await?;
                        }
                        Ok(msg) => {
                            let (id, of) = match &msg {
                                ClientMsg::Final { id, .. } => (id.clone(), None),
                                ClientMsg::Edit { of, .. } => (None, Some(*of)),
                                _ => (None, None),
                            };
                            match ingest.admit(ch, msg, Some(me)).await {
                                // Only the publisher on air sets partials, so the generation
                                // now is this one's.
                                Ok(Admitted::Partial) => *shown = Some(ch.partial_gen()),
                                Ok(Admitted::Control) => {}
                                Ok(Admitted::Pending(rx)) => pending.push_back(pending_ack((id, of), rx)),
                                Err(r) => {
                                    hub.metrics.refuse_message(r.code);
                                    feed(ws, r.to_frame_for(id.as_deref(), of)).await?
                                }
                            }
                        }
                    }
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
    }
}

/// The refusal for a message over `limits.publisher_rate`, naming a final's id so the
/// publisher knows which line to send again.
fn rate_limited(text: &str, rate: f64) -> Frame {
    let (what, id, of) = match parse_client(text) {
        Ok(ClientMsg::Final { id: Some(id), .. }) => (format!("final {id:?}"), Some(id), None),
        Ok(ClientMsg::Final { .. }) => ("final".to_string(), None, None),
        Ok(ClientMsg::Edit { of, .. }) => (format!("edit of {of}"), None, Some(of)),
        _ => ("message".to_string(), None, None),
    };
    Refusal::new(
        ErrorCode::RateLimited,
        format!("more than {rate} messages per second: this {what} was dropped, nothing stored; slow down and resend"),
    )
    .to_frame_for(id.as_deref(), of)
}

/// Starts or stops following the channel's source (the floor or a pivot): a `source` marker,
/// the source's recent lines, then its live lines, edits, handovers and partials.
async fn follow_source<S>(
    ws: &mut WebSocketStream<S>,
    hub: &Hub,
    ch: &Channel,
    on: bool,
    source: &mut Option<Subscription>,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let src = ch
        .info
        .source
        .as_deref()
        .and_then(|id| hub.channel(&ch.info.event, id));
    let Some(src) = src else {
        let r = Refusal::new(ErrorCode::NoSource, "this channel has no source channel");
        return feed(ws, r.to_frame()).await;
    };
    let marker = ServerMsg::Source {
        channel: src.info.id.as_str().into(),
        lang: src.info.lang.as_str().into(),
        label: src.info.label.as_str().into(),
        on,
    }
    .to_frame();
    if !on {
        *source = None;
        return feed(ws, marker).await;
    }
    let mut sub = src.subscribe(None, hub.limits.history_on_join);
    feed(ws, marker).await?;
    if let Backlog::Memory(events) =
        std::mem::replace(&mut sub.backlog, Backlog::Memory(Vec::new()))
    {
        for c in events {
            feed(ws, c.frame).await?;
        }
    }
    let partial = sub.partial.borrow_and_update().clone();
    feed(ws, partial).await?;
    *source = Some(sub);
    Ok(())
}

/// The next frame of the followed source; pending forever when not following.
async fn next_source_frame(source: &mut Option<Subscription>) -> Frame {
    use tokio::sync::broadcast::error::RecvError;
    let Some(sub) = source else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            // Lines before partials: a partial cleared by its line must not overtake it.
            biased;
            r = sub.events.recv() => match r {
                Ok(c) => return c.frame,
                // The booth view of the source may skip when far behind; it is a monitor.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return std::future::pending().await,
            },
            r = sub.partial.changed() => {
                if r.is_err() {
                    return std::future::pending().await;
                }
                // A line that arrived meanwhile goes first; the partial stays marked changed.
                if let Ok(c) = sub.events.try_recv() {
                    return c.frame;
                }
                return sub.partial.borrow_and_update().clone();
            }
        }
    }
}
