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

use super::{close, feed, flush, read_error, End};
use crate::channel::Channel;
use crate::hub::Hub;
use crate::ingest::{self, Admitted};
use crate::protocol::{
    parse_client, ErrorCode, Frame, Refusal, ServerMsg, CLOSE_GOING_AWAY, CLOSE_IDLE,
};
use crate::store::Ack;

type AckResult = Result<Ack, Refusal>;

/// An ack on its way; boxed once per final (publisher path, not per recipient).
type PendingAck = Pin<Box<dyn Future<Output = (Option<String>, AckResult)> + Send>>;

fn pending_ack(id: Option<String>, rx: oneshot::Receiver<AckResult>) -> PendingAck {
    Box::pin(async move { (id, ingest::resolve(rx).await) })
}

fn ack_frame(id: Option<&str>, result: &AckResult) -> Frame {
    match result {
        Ok(ack) => ServerMsg::Ack {
            seq: ack.seq,
            id,
            duplicate: ack.duplicate,
        }
        .to_frame(),
        Err(r) => r.to_frame(),
    }
}

/// Runs a publisher until the client leaves or the server shuts down. On shutdown, finals
/// already received are still stored and acked before the Close frame.
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    hub: Arc<Hub>,
    ch: Arc<Channel>,
    shutdown: CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _count = ch.publisher_guard();
    let mut pending = FuturesOrdered::new();
    let end = match session(&mut ws, &hub, &ch, &shutdown, &mut pending).await {
        Ok(end) | Err(end) => end,
    };
    // Ack what the store accepted before we stop, so the publisher need not resend it.
    let timeout = hub.limits.write_timeout();
    while let Some((id, result)) = pending.next().await {
        if feed(&mut ws, ack_frame(id.as_deref(), &result))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = flush(&mut ws, timeout).await;
    match end {
        End::Shutdown => close(&mut ws, CLOSE_GOING_AWAY, "server restarting; reconnect").await,
        End::Idle => close(&mut ws, CLOSE_IDLE, "idle: no pong").await,
        _ => {}
    }
    end
}

async fn session<S>(
    ws: &mut WebSocketStream<S>,
    hub: &Hub,
    ch: &Arc<Channel>,
    shutdown: &CancellationToken,
    pending: &mut FuturesOrdered<PendingAck>,
) -> Result<End, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &hub.limits;
    let write_timeout = limits.write_timeout();
    let mut status = ch.status_receiver();
    let info = &ch.info;
    let hello = ServerMsg::Hello {
        event: &info.event,
        channel: &info.id,
        lang: &info.lang,
        label: &info.label,
        role: "publish",
        seq: ch.last_seq(),
        reset: false,
    }
    .to_frame();
    feed(ws, hello).await?;
    let first = status.borrow_and_update().clone();
    feed(ws, first).await?;
    flush(ws, write_timeout).await?;

    let ping_every = limits.ping_interval();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let max_in_flight = limits.publisher_in_flight;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(End::Shutdown),
            Some((id, result)) = pending.next(), if !pending.is_empty() => {
                feed(ws, ack_frame(id.as_deref(), &result)).await?;
            }
            r = status.changed() => {
                if r.is_err() {
                    return Ok(End::Shutdown);
                }
                let s = status.borrow_and_update().clone();
                feed(ws, s).await?;
            }
            msg = ws.next(), if pending.len() < max_in_flight => {
                last_heard = Instant::now();
                let text = match msg {
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
                        None
                    }
                    Some(Ok(Message::Text(t))) => Some(t),
                    Some(Ok(_)) => None,
                };
                if let Some(text) = text {
                    match parse_client(&text) {
                        Err(r) => feed(ws, r.to_frame()).await?,
                        Ok(msg) => {
                            let id = match &msg {
                                crate::protocol::ClientMsg::Final { id, .. } => id.clone(),
                                _ => None,
                            };
                            match ingest::admit(hub, ch, msg).await {
                                Ok(Admitted::Partial) => {}
                                Ok(Admitted::Pending(rx)) => pending.push_back(pending_ack(id, rx)),
                                Err(r) => feed(ws, r.to_frame()).await?,
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
