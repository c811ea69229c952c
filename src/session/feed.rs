//! A sound feed's connection (`…/audio/publish`): Opus packets in (a room mixer through
//! `babelcast push-audio`, a booth console in floor mode); the channel's status out, so the
//! sender sees listeners and whether the channel has a voice. A feed is not a booth partner:
//! it is heard while no on-air partner sends sound (see `channel::audio::Source`).

use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{close_publisher, feed, flush, read_error, End};
use crate::channel::Channel;
use crate::hub::Hub;
use crate::ingest::audio::AudioIn;
use crate::ingest::Ingest;
use crate::protocol::{ErrorCode, Refusal};

/// Runs a feed until the client leaves or the server shuts down.
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    hub: Arc<Hub>,
    ingest: Arc<Ingest>,
    ch: Arc<Channel>,
    shutdown: CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let end = match session(&mut ws, &hub, &ingest, &ch, &shutdown).await {
        Ok(end) | Err(end) => end,
    };
    close_publisher(&mut ws, end).await;
    end
}

async fn session<S>(
    ws: &mut WebSocketStream<S>,
    hub: &Hub,
    ingest: &Ingest,
    ch: &Arc<Channel>,
    shutdown: &CancellationToken,
) -> Result<End, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &hub.limits;
    let write_timeout = limits.write_timeout();
    let mut status = ch.status_receiver();
    feed(ws, ch.info.hello("feed", ch.last_seq(), false, None)).await?;
    let first = status.borrow_and_update().clone();
    feed(ws, first).await?;
    flush(ws, write_timeout).await?;
    let mut sound = AudioIn::feed(ingest.audio_config());
    let ping_every = limits.ping_interval();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(End::Shutdown),
            r = status.changed() => {
                if r.is_err() {
                    return Ok(End::Shutdown);
                }
                let s = status.borrow_and_update().clone();
                feed(ws, s).await?;
            }
            msg = ws.next() => {
                last_heard = Instant::now();
                match msg {
                    None | Some(Ok(Message::Close(_))) => return Ok(End::ClientClosed),
                    Some(Err(e)) => {
                        return Ok(read_error(&e));
                    }
                    Some(Ok(Message::Binary(b))) => {
                        if let Err(r) = ingest.admit_audio(ch, &mut sound, &b).await {
                            hub.metrics.refuse_message(r.code);
                            feed(ws, r.to_frame()).await?;
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        let r = Refusal::new(ErrorCode::AudioOnly, "a sound feed takes Opus packets in binary frames only; captions go to the publish endpoint");
                        hub.metrics.refuse_message(r.code);
                        feed(ws, r.to_frame()).await?;
                    }
                    Some(Ok(_)) => {} // ping/pong
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_every * 2 {
                    return Ok(End::Idle);
                }
                ws.feed(Message::Ping(Default::default())).await.map_err(|_| End::Error)?;
            }
        }
        flush(ws, write_timeout).await?;
    }
}
