//! An EBU-TT Live publisher's connection: one TTML document per message in (text frames, or
//! binary frames holding UTF-8). On babelcast's own URL: `hello`, then an `ack` per committed
//! line and an `error` per refused document or line out. On the toolkit-shaped URL
//! (`/{sequenceIdentifier}/publish`) nothing is sent back, as in EBU Tech 3370's WebSocket
//! carriage (a producer there treats any message as a protocol error): refusals are logged.
//! Like the HTTP caption formats, the producer is not a booth member (see
//! [`crate::ingest::ebutt`]). When the connection ends (not at shutdown, which the idle
//! committer handles), the lines in progress of the sequences it published are committed.
//!
//! Documents are applied one at a time, each once its lines are stored: a producer sends a few
//! documents a second at most, and the listeners then see every line before the partial that
//! follows it.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{close_publisher, feed, flush, read_error, End};
use crate::channel::Channel;
use crate::formats::ebutt;
use crate::hub::Hub;
use crate::ingest::ebutt::{connection_id, ConnId};
use crate::ingest::Ingest;
use crate::limiter::TokenBucket;
use crate::metrics::Refused;
use crate::protocol::{ErrorCode, Frame, Refusal, ServerMsg};

/// What the producer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replies {
    /// `hello`, acks and errors (babelcast's own URL).
    Sent,
    /// Nothing: refusals are logged (the toolkit-shaped URL, EBU Tech 3370 carriage).
    Logged,
}

/// One answer to a document.
enum Answer {
    Ack(Frame),
    Refused(Refusal, Option<String>),
}

/// Runs an EBU-TT Live publisher until the client leaves or the server shuts down.
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    hub: Arc<Hub>,
    ingest: Arc<Ingest>,
    ch: Arc<Channel>,
    shutdown: CancellationToken,
    replies: Replies,
    revoked: Option<CancellationToken>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = connection_id();
    let stopped = ch.life.publisher_stop(revoked);
    let end = match session(
        &mut ws,
        (&hub, &ingest),
        &ch,
        (&shutdown, conn, replies),
        stopped,
    )
    .await
    {
        Ok(end) | Err(end) => end,
    };
    let _ = flush(&mut ws, hub.limits.write_timeout()).await;
    close_publisher(&mut ws, end).await;
    if end != End::Shutdown {
        ingest.ebutt.disconnected(&ingest, &ch, conn).await;
    }
    end
}

async fn session<S>(
    ws: &mut WebSocketStream<S>,
    (hub, ingest): (&Hub, &Ingest),
    ch: &Arc<Channel>,
    (shutdown, conn, replies): (&CancellationToken, ConnId, Replies),
    stopped: impl std::future::Future<Output = crate::channel::Stop>,
) -> Result<End, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::pin!(stopped);
    let limits = &hub.limits;
    let write_timeout = limits.write_timeout();
    let info = &ch.info;
    if replies == Replies::Sent {
        let hello = info.hello("publish", ch.last_seq(), false, None);
        feed(ws, hello).await?;
        flush(ws, write_timeout).await?;
    }

    let ping_every = limits.ping_interval();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let mut rate = (limits.publisher_rate > 0.0).then(|| {
        TokenBucket::new(
            limits.publisher_rate,
            limits.publisher_burst as f64,
            Instant::now(),
        )
    });
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(End::Shutdown),
            stop = &mut stopped => return Ok(End::Stopped(stop)),
            msg = ws.next() => {
                last_heard = Instant::now();
                let answers = match msg {
                    None | Some(Ok(Message::Close(_))) => return Ok(End::ClientClosed),
                    Some(Err(e)) => {
                        return Ok(read_error(&e));
                    }
                    Some(Ok(Message::Text(t))) => {
                        document((hub, ingest), ch, t.as_str(), &mut rate, conn).await
                    }
                    Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                        Ok(t) => document((hub, ingest), ch, t, &mut rate, conn).await,
                        Err(_) => vec![Answer::Refused(Refusal::new(
                            ErrorCode::BadXml,
                            "a binary frame that is not UTF-8; send each EBU-TT Live document as UTF-8 text",
                        ), None)],
                    },
                    Some(Ok(_)) => Vec::new(),
                };
                for answer in answers {
                    match answer {
                        Answer::Ack(frame) if replies == Replies::Sent => feed(ws, frame).await?,
                        Answer::Ack(_) => {}
                        Answer::Refused(r, id) => {
                            hub.metrics.refuse_message(r.code);
                            if replies == Replies::Sent {
                                feed(ws, r.to_frame_for(id.as_deref(), None)).await?;
                            } else {
                                tracing::warn!(code = ?r.code, id = id.as_deref(), error = %r.message, "EBU-TT Live document refused (not told to the producer on this URL)");
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

/// Parses and applies one document; the answers (acks and refusals), in order.
async fn document(
    (hub, ingest): (&Hub, &Ingest),
    ch: &Arc<Channel>,
    xml: &str,
    rate: &mut Option<TokenBucket>,
    conn: ConnId,
) -> Vec<Answer> {
    if rate.as_mut().is_some_and(|b| !b.try_take(Instant::now())) {
        hub.metrics.refuse(Refused::RateLimited);
        let r = Refusal::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} documents per second: this document was dropped, nothing stored; slow down",
                hub.limits.publisher_rate
            ),
        );
        return vec![Answer::Refused(r, None)];
    }
    let doc = match ebutt::parse(xml, hub.limits.max_caption_chars) {
        Ok(doc) => doc,
        Err(e) => return vec![Answer::Refused(e.refusal(), None)],
    };
    let applied = match ingest.ebutt.apply(ingest, ch, &doc, conn).await {
        Ok(a) => a,
        Err(r) => return vec![Answer::Refused(r, None)],
    };
    tracing::debug!(
        sequence = %doc.sequence_identifier,
        number = doc.sequence_number,
        lines = applied.lines.len(),
        resend = applied.resend,
        "ebu-tt document"
    );
    let mut answers = Vec::with_capacity(applied.lines.len() + 1);
    for (id, result) in applied.lines {
        answers.push(match result {
            Ok(ack) => Answer::Ack(
                ServerMsg::Ack {
                    seq: ack.seq,
                    id: Some(id.as_str().into()),
                    duplicate: ack.duplicate,
                }
                .to_frame(),
            ),
            Err(r) => Answer::Refused(r, Some(id)),
        });
    }
    if let Some(r) = applied.partial {
        answers.push(Answer::Refused(r, None));
    }
    answers
}
