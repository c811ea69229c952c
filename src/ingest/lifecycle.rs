//! The caption streams' lines in progress across an event's life: committed when the event
//! ends (by the organiser or its schedule), before the end takes effect, so they land in the
//! transcript; forgotten, in memory, when transcripts, a channel or an event are deleted (the
//! organiser deletes their saved states in the same step), so deleted text never comes back
//! into a channel or event made again with the same ids; and which refusals of
//! babelcast's own commits are for good, so the idle committer drops such a line instead of
//! retrying it forever.

use super::Ingest;
use crate::protocol::{ErrorCode, Refusal};

/// Whether the stream key `key` (`event/channel`) is of `event` (of its `channel` when
/// given).
pub(crate) fn in_scope(key: &str, event: &str, channel: Option<&str>) -> bool {
    match key.split_once('/') {
        Some((e, c)) => e == event && channel.is_none_or(|ch| ch == c),
        None => false,
    }
}

/// The refusal of a line whose channel is no longer in the registry (deleted).
pub(crate) fn channel_gone(event: &str, channel: &str) -> Refusal {
    Refusal::new(
        ErrorCode::UnknownChannel,
        format!("channel {channel:?} of event {event:?} was deleted"),
    )
}

/// Whether a refusal of babelcast's own commit is for good: the event is over (or not
/// live any more), or the channel was deleted. Anything else (storage or cluster
/// unavailable, shutting down, an interpreter on air, a channel being replaced) may pass
/// later and is retried.
pub(crate) fn refused_for_good(r: &Refusal) -> bool {
    matches!(
        r.code,
        ErrorCode::EventEnded
            | ErrorCode::EventArchived
            | ErrorCode::EventNotStarted
            | ErrorCode::UnknownChannel
    )
}

impl Ingest {
    /// The event is about to end (or otherwise stop being live): every line in progress of
    /// its caption format streams and EBU-TT Live sequences is committed now, while the event
    /// still takes lines. A line refused now (e.g. an interpreter on air) is left to the idle
    /// committer, which drops it once the event has ended.
    pub async fn end_event(&self, event: &str) {
        self.formats.commit_event(self, event).await;
        self.ebutt.commit_event(self, event).await;
    }

    /// Forgets the lines in progress and stream states of `event` (of its `channel` when
    /// given), after the posts and documents being applied to them. Called once their
    /// channels take nothing more (deleted, or the event over) and with their saved states
    /// deleted from the store in the same step.
    pub async fn forget(&self, event: &str, channel: Option<&str>) {
        let n = self.formats.forget(event, channel).await + self.ebutt.forget(event, channel).await;
        if n > 0 {
            tracing::info!(
                event,
                channel,
                streams = n,
                "caption stream states forgotten"
            );
        }
    }
}
