//! A listener the channel hands back ([`Resume`]): a new session that closes it (idle,
//! shutdown) or takes over where the fan-out stopped, and the [`Parking`] that installs it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{finish, live, send_event, Ctx, Held, Out, Pos};
use crate::channel::{Backlog, Channel, Handback, Parked, Parking, Resume};
use crate::hub::Hub;
use crate::session::{flush, End, WriteDeadline, LISTENER_READ_BUFFER};

/// Hands parked listeners of a server's channels back to new sessions (the channel's
/// [`Resume`] hook). Holds the hub weakly: the channels it serves belong to the hub.
struct Resumer {
    hub: Weak<Hub>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Resume for Resumer {
    fn resume(&self, parked: Parked) {
        // Called under the socket's lock: everything else, dropping the listener included
        // (leaving its channel's sound takes that set's lock), happens in the task.
        let (hub, shutdown) = (self.hub.clone(), self.shutdown.clone());
        let tracker = self.tracker.clone();
        self.tracker.spawn(async move {
            // Without the hub the server is gone: dropping the listener closes its socket.
            let Some(hub) = hub.upgrade() else {
                return;
            };
            let cx = Ctx {
                hub,
                shutdown,
                tracker,
                conn: Some(parked.socket.clone()),
            };
            resume(cx, parked).await
        });
    }
}

/// A session for a listener the channel handed back: it closes (idle, shutdown) or takes over
/// where the fan-out stopped and goes on like any session, until it parks again or ends.
async fn resume(cx: Ctx, parked: Parked) {
    let Ok(held) = parked.keep.downcast::<Held>() else {
        tracing::error!("a parked listener without its session's state");
        return;
    };
    let ch = held.ch.clone();
    let limits = &cx.hub.limits;
    let stream = WriteDeadline::new(parked.socket, limits.write_timeout());
    let config = crate::session::ws_config(limits, LISTENER_READ_BUFFER);
    let mut ws =
        WebSocketStream::from_partially_read(stream, parked.prefix, Role::Server, Some(config))
            .await;
    let mut held = Some(held);
    let out = match parked.why {
        Handback::Shutdown => Out::Ended(End::Shutdown),
        Handback::Idle => Out::Ended(End::Idle),
        Handback::Full | Handback::Read => match take_over(&mut ws, &cx, &ch).await {
            Ok(pos) => {
                // Handed back to read: read before parking again.
                let read_first = parked.why == Handback::Read;
                live(&mut ws, &cx, &ch, pos, &mut held, (read_first, false)).await
            }
            Err(end) => Out::Ended(end),
        },
    };
    if let Out::Ended(end) = out {
        finish(&mut ws, &cx, &ch, &mut held, end).await;
    }
}

/// Takes over from the fan-out: what it missed since the fan-out's last seq (from memory, or
/// 4001), and the partial and status unless the fan-out put them on the wire already.
async fn take_over<S>(ws: &mut WebSocketStream<S>, cx: &Ctx, ch: &Channel) -> Result<Pos, End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let t = match &cx.conn {
        Some(c) => c.takeover(),
        None => return Err(End::Error),
    };
    let mut last_sent = t.last_sent;
    // Partials replaced while this session catches up are counted as coalesced.
    let partials_seen = ch.stats.partial_updates.load(Ordering::Acquire);
    let mut sub = ch.subscribe(Some(last_sent), 0);
    let missed = match std::mem::replace(&mut sub.backlog, Backlog::Memory(Vec::new())) {
        Backlog::Memory(events) => events,
        Backlog::Store { .. } => return Err(End::Behind),
    };
    if !missed.is_empty() {
        ch.stats.catch_ups.fetch_add(1, Ordering::Relaxed);
    }
    let mut sent = 0;
    for c in missed {
        sent += send_event(ws, c, &mut last_sent).await?;
    }
    // What the fan-out already sent is not sent again; anything else is.
    for (rx, sent) in [(&mut sub.partial, t.partial), (&mut sub.status, t.status)] {
        rx.mark_changed();
        if sent.is_some_and(|f| *rx.borrow() == f) {
            rx.borrow_and_update();
        }
    }
    // Also the rest of the frame the fan-out could not finish (and, over TLS, its records).
    flush(ws, cx.hub.limits.write_timeout()).await?;
    ch.stats.frames_out.fetch_add(sent, Ordering::Relaxed);
    Ok(Pos {
        sub,
        last_sent,
        partials_seen,
    })
}

/// How this server's listeners park: handed back through a [`Resumer`], pinged at the
/// configured interval, closed at shutdown, their sessions tracked.
pub(super) fn parking(cx: &Ctx) -> Parking {
    Parking {
        resume: Arc::new(Resumer {
            hub: Arc::downgrade(&cx.hub),
            shutdown: cx.shutdown.clone(),
            tracker: cx.tracker.clone(),
        }),
        ping_every: cx.hub.limits.ping_interval(),
        shutdown: cx.shutdown.clone(),
        tracker: cx.tracker.clone(),
    }
}
