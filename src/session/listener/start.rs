//! A listener's first session: the hello, the status, the backlog (from memory or the store)
//! and the partial, before it goes live.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

use super::{Ctx, Pos, STORE_PAGE};
use crate::channel::{Backlog, Channel, EMPTY_PARTIAL};
use crate::session::{feed, flush, End};

/// The hello, the status and the backlog; returns the subscription and the last seq sent.
pub(super) async fn start<S>(
    ws: &mut WebSocketStream<S>,
    cx: &Ctx,
    ch: &Channel,
    since: Option<u64>,
) -> Result<Pos, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hub = &cx.hub;
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
    let last_sent = sub.last_seq;
    let partial = sub.partial.borrow_and_update().clone();
    if partial != EMPTY_PARTIAL {
        feed(ws, partial).await?;
        sent += 1;
    }
    flush(ws, write_timeout).await?;
    ch.stats.frames_out.fetch_add(sent, Ordering::Relaxed);
    let partials_seen = ch.stats.partial_updates.load(Ordering::Acquire);
    Ok(Pos {
        sub,
        last_sent,
        partials_seen,
    })
}
