//! Where a forwarder starts after a stop or a crash: the saved position, corrected by what the
//! remote says, so a line is posted once. A post that was in flight when the process died (the
//! remote had it, or not, and never answered) is settled here: Zoom's seq URL tells whether it
//! was delivered (then it is not posted again), otherwise it is posted again under the same
//! seq, as a retry (Zoom: "it must not be increased for retries"; YouTube keeps the seq too).

use tokio_util::sync::CancellationToken;

use super::position::Position;
use super::service::{zoom_remote_seq, SeqAnswer};
use super::{Forwarder, HttpClient, FIRST_BACKOFF, MAX_BACKOFF};
use crate::config::ForwardKind;

/// The position to start from, given the saved one (`None` on shutdown). With a post in
/// flight, a Zoom forwarder keeps asking the seq URL until it answers: guessing would either
/// show the caption twice or lose it.
pub(super) async fn start_position(
    f: &Forwarder,
    client: &HttpClient,
    mut pos: Position,
    shutdown: &CancellationToken,
) -> Option<Position> {
    // Only a line after the cursor can still be in flight (a further position saved since,
    // e.g. by another node of a cluster, has handled it).
    let in_flight = pos.in_flight.take().filter(|i| i.line > pos.cursor);
    if f.kind != ForwardKind::Zoom {
        if let Some(i) = in_flight {
            tracing::info!(
                line = i.line,
                seq = i.seq,
                "a post was in flight when the forwarder stopped; posting it again under the same seq"
            );
            pos.remote_seq = i.seq - 1;
        }
        return Some(pos);
    }
    let mut backoff = FIRST_BACKOFF;
    let answer = loop {
        let answer = tokio::select! {
            _ = shutdown.cancelled() => return None,
            a = zoom_remote_seq(client, &f.url) => a,
        };
        if answer != SeqAnswer::Unreachable || in_flight.is_none() {
            break answer;
        }
        f.stats
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    match (in_flight, answer) {
        (Some(i), SeqAnswer::Seq(n)) if n >= i.seq => {
            tracing::info!(
                line = i.line,
                seq = i.seq,
                remote_seq = n,
                "the post in flight when the forwarder stopped was delivered; not posting it again"
            );
            pos.cursor = i.line;
            pos.remote_seq = n;
        }
        (Some(i), answer) => {
            if answer == SeqAnswer::Refused {
                tracing::warn!(
                    line = i.line,
                    "cannot tell whether the post in flight was delivered; posting it again under the same seq"
                );
            }
            pos.remote_seq = i.seq - 1;
        }
        (None, SeqAnswer::Seq(n)) => pos.remote_seq = pos.remote_seq.max(n),
        (None, _) => {}
    }
    Some(pos)
}
