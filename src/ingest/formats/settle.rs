//! babelcast's own commits of the caption formats' lines in progress: when a stream goes
//! quiet ([`super::super::idle`]), when its event ends, and at shutdown; and forgetting a
//! stream whose channel or transcript was deleted. Each commit goes through the normal
//! admission path, then the stream's state is saved. A commit refused for good (the event
//! is over, the channel deleted) drops the line, once, instead of retrying it forever.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{client_id, FormatStreams, Slot, SELF_COMMITTED};
use crate::formats::line::LineBuffer;
use crate::formats::Format;
use crate::ingest::idle::Due;
use crate::ingest::lifecycle::{channel_gone, in_scope, refused_for_good};
use crate::ingest::stats::{Commit, Stream};
use crate::ingest::{resolve, Admitted, Ingest};
use crate::protocol::{ClientMsg, Refusal};
use crate::store::{FormatState, Saved};

type Key = (String, Format);

impl FormatStreams {
    /// The earliest time a line in progress is due to be committed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.idle_at).min()
    }

    /// Commits the line in progress of every stream due at `due` (every stream with one when
    /// `None`: shutdown), one at a time, each after the stream's posts in flight.
    pub async fn commit_due(&self, ingest: &Ingest, due: Due) {
        let is_due = |at: Option<Instant>| at.is_some_and(|t| due.is_none_or(|now| t <= now));
        let why = if due.is_some() {
            Commit::Idle
        } else {
            Commit::Shutdown
        };
        self.commit_where(ingest, |_, slot| is_due(slot.idle_at).then_some(why))
            .await;
    }

    /// Commits the line in progress of every stream of `event` (it is ending).
    pub(crate) async fn commit_event(&self, ingest: &Ingest, event: &str) {
        let pick = |key: &Key, slot: &Slot| {
            (in_scope(&key.0, event, None) && !slot.line.line().is_empty())
                .then_some(Commit::EventEnd)
        };
        self.commit_where(ingest, pick).await;
    }

    /// Forgets every stream of `event` (of its `channel` when given), each after the post or
    /// commit taking its turn; how many.
    pub(crate) async fn forget(&self, event: &str, channel: Option<&str>) -> usize {
        let streams: Vec<(Key, Arc<Semaphore>)> = self
            .slots
            .iter()
            .filter(|s| in_scope(&s.key().0, event, channel))
            .map(|s| (s.key().clone(), s.lane.clone()))
            .collect();
        for (key, lane) in &streams {
            let _turn = lane.acquire().await;
            self.slots.remove(key);
        }
        streams.len()
    }

    /// Commits the line in progress of each stream `pick` names a reason for, one at a time,
    /// each after the stream's posts in flight.
    async fn commit_where(&self, ingest: &Ingest, pick: impl Fn(&Key, &Slot) -> Option<Commit>) {
        let streams: Vec<(Key, Arc<Semaphore>)> = self
            .slots
            .iter()
            .filter(|s| pick(s.key(), s.value()).is_some())
            .map(|s| (s.key().clone(), s.lane.clone()))
            .collect();
        for (key, lane) in streams {
            let Ok(_turn) = lane.acquire_owned().await else {
                continue;
            };
            // Decided under the map guard, after the posts that held the lane before us.
            let (text, id, state, why) = {
                let Some(mut slot) = self.slots.get_mut(&key) else {
                    continue;
                };
                let Some(why) = pick(&key, &slot) else {
                    continue; // a post came meanwhile and moved the deadline
                };
                slot.idle_at = None;
                let Some(text) = slot.line.commit_line() else {
                    continue;
                };
                let seq = slot.last_seq.unwrap_or(0);
                let id = client_id(key.1, slot.epoch, seq, SELF_COMMITTED, &text);
                (text, id, slot.state(&key), why)
            };
            match commit(ingest, &key, text.clone(), id, state.clone()).await {
                Ok(()) => ingest.idle.stats.committed(Stream::Format(key.1), why),
                Err(r) if refused_for_good(&r) => drop_line(self, ingest, &key, state, &r).await,
                Err(r) => {
                    tracing::warn!(stream = %key.0, format = key.1.as_str(), code = ?r.code, error = %r.message, "the line in progress could not be committed; trying again later");
                    if let Some(mut slot) = self.slots.get_mut(&key) {
                        // Nothing else ran on this stream meanwhile (we hold its lane).
                        slot.line = LineBuffer::with_line(&text);
                        slot.idle_at =
                            (why != Commit::Shutdown).then(|| Instant::now() + ingest.idle.after);
                    }
                    ingest.idle.wake();
                }
            }
        }
    }
}

/// The line in progress of stream `key` can never be committed (`r`): it stays dropped. If
/// the channel is still there (its event is over), the stream's state without the line is
/// saved, so a restart does not bring the line back; a deleted channel's stream is forgotten.
async fn drop_line(
    streams: &FormatStreams,
    ingest: &Ingest,
    key: &Key,
    state: FormatState,
    r: &Refusal,
) {
    tracing::warn!(stream = %key.0, format = key.1.as_str(), code = ?r.code, error = %r.message, "the line in progress can never be committed; dropped");
    ingest.idle.stats.dropped(Stream::Format(key.1));
    if ingest.channel(&state.event, &state.channel).is_none() {
        streams.slots.remove(key);
    } else if let Err(e) = ingest.store().save(Saved::Format(state)).await {
        tracing::warn!(stream = %key.0, error = %e.message, "saving the caption stream's state failed");
    }
}

/// Stores `text` as a line of the stream `key` committed by babelcast, then the stream's
/// state (its line in progress now empty).
async fn commit(
    ingest: &Ingest,
    key: &Key,
    text: String,
    id: String,
    state: FormatState,
) -> Result<(), Refusal> {
    let ch = ingest
        .channel(&state.event, &state.channel)
        .ok_or_else(|| channel_gone(&state.event, &state.channel))?;
    let msg = ClientMsg::Final { text, id: Some(id) };
    if let Admitted::Pending(rx) = ingest.admit(&ch, msg, None).await? {
        resolve(rx).await?;
    }
    tracing::debug!(stream = %key.0, format = key.1.as_str(), "line in progress committed");
    ingest.store().save(Saved::Format(state)).await
}
