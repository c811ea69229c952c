//! The idle committer: one task per node that commits the line in progress of every caption
//! stream gone quiet (`ingest.idle_commit_ms` without a post or document, or an EBU-TT Live
//! document's `end`/`dur` passed), and of every stream at graceful shutdown, so a line a
//! sender never ended is never lost.
//!
//! It keeps no queue: each wake it asks the streams ([`super::formats::FormatStreams`],
//! [`super::ebutt::EbuttStreams`]) which are due, commits those one at a time through the
//! normal admission path ([`Ingest::admit`]: stored, then shown, then acked semantics as for
//! any line) and sleeps until the next deadline or until a stream sets a new one. Its work is
//! bounded by the number of streams, which the channels and
//! `SEQUENCES_PER_CHANNEL` bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::stats::IngestStats;
use super::Ingest;

/// What the idle committer and the streams share.
#[derive(Debug)]
pub struct Idle {
    /// `ingest.idle_commit_ms`.
    pub after: Duration,
    /// Woken when a stream sets a deadline, so the task sleeps until the earliest one.
    wake: Notify,
    /// Seq rules and commits, for `/metrics`.
    pub stats: IngestStats,
}

impl Idle {
    pub fn new(after: Duration) -> Idle {
        Idle {
            after,
            wake: Notify::new(),
            stats: IngestStats::default(),
        }
    }

    /// A stream set or moved a deadline.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// When the committer is due: every stream whose deadline is at or before `now`, or every
/// stream with a line in progress (`None`: the server is shutting down).
pub type Due = Option<Instant>;

/// Runs the idle committer until `shutdown`, then commits every line in progress.
pub async fn run(ingest: Arc<Ingest>, shutdown: CancellationToken) {
    loop {
        let next = [ingest.formats.next_deadline(), ingest.ebutt.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = ingest.idle.wake.notified() => continue,
            _ = sleep_until(next) => {}
        }
        let now = Some(Instant::now());
        ingest.formats.commit_due(&ingest, now).await;
        ingest.ebutt.commit_due(&ingest, now).await;
    }
    // Graceful shutdown: the store closes only once this task ends (the server's tracker).
    ingest.formats.commit_due(&ingest, None).await;
    ingest.ebutt.commit_due(&ingest, None).await;
}

/// Sleeps until `at`; forever without a deadline.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
