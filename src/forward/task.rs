//! The forwarder task: follow the channel by seq, read the lines after the cursor from the
//! store page by page, post each one until the remote accepts it (retrying with backoff and
//! the same remote seq) or refuses it for good, and save the position after every event.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::Method;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::position::{
    load_position, save_position, state_path, InFlight, Position, PositionMirror,
};
use super::recover::start_position;
use super::{Forwarder, HttpClient, State, FIRST_BACKOFF, MAX_BACKOFF, POST_TIMEOUT};
use crate::clock::now_ms;
use crate::hub::Hub;
use crate::record::{Kind, Record};

/// Lines read from the store at a time when catching up.
const PAGE: u64 = 100;

/// Starts one task per forwarder; they stop when `shutdown` is cancelled. `mirror`: where
/// positions are also kept (the cluster), if anywhere.
pub fn spawn_all(
    hub: &Arc<Hub>,
    forwarders: &[Arc<Forwarder>],
    mirror: Option<Arc<dyn PositionMirror>>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let Some(first) = forwarders.first() else {
        return;
    };
    let ca_file = first.ca_file.as_deref();
    let client = HttpClient::with_ca_file(ca_file).unwrap_or_else(|e| {
        // Checked when the config was loaded; gone or changed since. Public CAs still work.
        tracing::error!(
            error = %e,
            path = %ca_file.unwrap_or(std::path::Path::new("")).display(),
            "server.forward_ca_file cannot be used; forwarders trust the Mozilla roots only"
        );
        HttpClient::new()
    });
    for f in forwarders {
        tracker.spawn(run(
            hub.clone(),
            f.clone(),
            client.clone(),
            mirror.clone(),
            shutdown.clone(),
        ));
    }
}

/// How one delivery ended.
enum Delivery {
    Accepted,
    Dropped,
    Shutdown,
}

/// Whether an answer status is worth retrying with the same seq.
pub fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Runs one forwarder until shutdown.
pub async fn run(
    hub: Arc<Hub>,
    f: Arc<Forwarder>,
    client: HttpClient,
    mirror: Option<Arc<dyn PositionMirror>>,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("forward", event = %f.event, channel = %f.channel, kind = f.kind.as_str(), index = f.index);
    forward(hub, f.clone(), client, mirror.as_deref(), shutdown)
        .instrument(span)
        .await;
    f.set(State::Stopped);
}

async fn forward(
    hub: Arc<Hub>,
    f: Arc<Forwarder>,
    client: HttpClient,
    mirror: Option<&dyn PositionMirror>,
    shutdown: CancellationToken,
) {
    let Some(ch) = hub.channel(&f.event, &f.channel) else {
        tracing::error!("no such channel; forwarder not started");
        return;
    };
    f.set(State::Starting);
    // Subscribe before reading the position: every commit after this wakes us.
    let sub = ch.subscribe(None, 0);
    let mut wake = sub.events;
    let path = state_path(&hub, &f);
    let saved = load_position(&f, &path, mirror).await;
    let pos = match saved {
        Some(p) if p.cursor <= sub.last_seq => p,
        // In a cluster this node may still be catching up with the stream: wait for the lines
        // the last holder of the lease already posted rather than posting them again.
        Some(p) if mirror.is_some() => {
            while ch.last_seq() < p.cursor {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = wake.recv() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
            p
        }
        // A saved cursor beyond the channel means the transcripts were wiped: start over.
        _ => Position {
            cursor: sub.last_seq,
            remote_seq: 0,
            in_flight: None,
        },
    };
    // Zoom's last seq, and the post in flight when the forwarder last stopped, if any.
    let Some(mut pos) = start_position(&f, &client, pos, &shutdown).await else {
        return;
    };
    if saved != Some(pos) {
        // Saved before the first post: lines committed from now on survive a restart even if
        // the remote is down until then.
        save_position(&f, &path, mirror, pos).await;
    }
    f.stats.forwarded_seq.store(pos.cursor, Ordering::Relaxed);
    f.stats.remote_seq.store(pos.remote_seq, Ordering::Relaxed);
    tracing::info!(
        cursor = pos.cursor,
        remote_seq = pos.remote_seq,
        "forwarder started"
    );
    let mut read_backoff = FIRST_BACKOFF;
    loop {
        let last = ch.last_seq();
        if last > pos.cursor {
            f.set(State::Sending);
            let (after, upto) = (pos.cursor, last.min(pos.cursor + PAGE));
            let page = hub
                .store
                .read_range(&f.event, &f.channel, after, upto)
                .await;
            let records = match page {
                Ok(r) => {
                    read_backoff = FIRST_BACKOFF;
                    r
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read lines to forward; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(read_backoff) => {}
                    }
                    read_backoff = (read_backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if records.is_empty() {
                // Nothing stored in that range (cannot happen with gapless seqs): move on.
                pos.cursor = upto;
            }
            for record in records {
                // Stopped (shutdown, or the cluster's forwarding lease moved to another node):
                // not one more post, or two nodes would post the same lines.
                if shutdown.is_cancelled() {
                    return;
                }
                if record.kind == Kind::Line {
                    let seq = pos.remote_seq + 1;
                    // Saved before the post: after a crash mid-request the next start asks the
                    // remote whether this line arrived instead of guessing.
                    let in_flight = Some(InFlight {
                        line: record.seq,
                        seq,
                    });
                    save_position(&f, &path, mirror, Position { in_flight, ..pos }).await;
                    match deliver(&f, &client, &ch.info.lang, &record, seq, &shutdown).await {
                        Delivery::Accepted => pos.remote_seq = seq,
                        Delivery::Dropped => {}
                        Delivery::Shutdown => return,
                    }
                    f.stats.remote_seq.store(pos.remote_seq, Ordering::Relaxed);
                }
                pos.cursor = record.seq;
                f.stats.forwarded_seq.store(pos.cursor, Ordering::Relaxed);
                save_position(&f, &path, mirror, pos).await;
            }
            continue;
        }
        f.set(State::UpToDate);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = wake.recv() => {
                // A new event, or many (lagged): either way, read from the cursor.
                if let Err(RecvError::Closed) = r {
                    return;
                }
            }
        }
    }
}

/// Posts one line as remote seq `seq` until the remote accepts it, gives a final refusal, or
/// the server shuts down.
async fn deliver(
    f: &Forwarder,
    client: &HttpClient,
    channel_lang: &str,
    record: &Record,
    seq: u64,
    shutdown: &CancellationToken,
) -> Delivery {
    let (url, body) = f.request(channel_lang, record, seq);
    let mut backoff = FIRST_BACKOFF;
    loop {
        if shutdown.is_cancelled() {
            return Delivery::Shutdown;
        }
        let why = match client
            .send(Method::POST, &url, Some(body.clone()), POST_TIMEOUT)
            .await
        {
            Ok(a) if (200..300).contains(&a.status) => {
                f.stats.posts.fetch_add(1, Ordering::Relaxed);
                f.stats.last_success_ms.store(now_ms(), Ordering::Relaxed);
                f.set(State::Sending);
                return Delivery::Accepted;
            }
            Ok(a) if retryable(a.status) => format!("HTTP {}", a.status),
            Ok(a) => {
                f.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    status = a.status,
                    answer = %a.body.chars().take(200).collect::<String>(),
                    line = record.seq,
                    "the remote refused a line; it is dropped"
                );
                return Delivery::Dropped;
            }
            Err(e) => e.to_string(),
        };
        f.stats.retries.fetch_add(1, Ordering::Relaxed);
        f.set(State::Retrying);
        tracing::warn!(error = %why, seq, retry_in_ms = backoff.as_millis() as u64, "post failed; retrying");
        tokio::select! {
            _ = shutdown.cancelled() => return Delivery::Shutdown,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policy() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 413] {
            assert!(!retryable(s), "{s}");
        }
    }
}
