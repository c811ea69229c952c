//! babelcast's own commits of EBU-TT Live sequences' lines in progress: when a sequence is
//! due ([`super::super::idle`]: silence, or its document's timing passed), when the
//! connection that published it ends, when another sequence replaces it, when its event
//! ends, and at shutdown. Each goes through the normal admission path, then the sequence's
//! state is saved. A commit refused for good (the event is over, the channel deleted) drops
//! the line, once, instead of retrying it forever; a deleted channel's sequences are
//! forgotten.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{client_id, key, resolve, saved_state, Admitted, EbuttStreams, Sequence};
use super::{Commit, ConnId, Stream};
use crate::channel::Channel;
use crate::ingest::idle::Due;
use crate::ingest::lifecycle::{in_scope, refused_for_good};
use crate::ingest::Ingest;
use crate::protocol::{ClientMsg, Refusal};
use crate::store::Saved;

/// The line index in client ids of a line babelcast committed itself (a document's own lines
/// are numbered from 0).
const SELF_COMMITTED: usize = usize::MAX;

impl EbuttStreams {
    /// The earliest time a line in progress is due to be committed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.channels
            .iter()
            .filter_map(|c| c.value().iter().filter_map(|s| s.due.map(|d| d.0)).min())
            .min()
    }

    /// Commits the line in progress of every sequence due at `due` (of every sequence with one
    /// when `None`: shutdown).
    pub async fn commit_due(&self, ingest: &Ingest, due: Due) {
        let keys: Vec<String> = self.channels.iter().map(|c| c.key().clone()).collect();
        for k in keys {
            match due {
                Some(now) => {
                    let pick = |s: &Sequence| s.due.filter(|d| d.0 <= now).map(|d| d.1);
                    self.settle_where(ingest, &k, pick).await;
                }
                None => {
                    self.settle_where(ingest, &k, |_| Some(Commit::Shutdown))
                        .await
                }
            }
        }
    }

    /// Commits the line in progress of every sequence of `event` (it is ending).
    pub(crate) async fn commit_event(&self, ingest: &Ingest, event: &str) {
        let keys: Vec<String> = self
            .channels
            .iter()
            .filter(|c| in_scope(c.key(), event, None))
            .map(|c| c.key().clone())
            .collect();
        for k in keys {
            self.settle_where(ingest, &k, |_| Some(Commit::EventEnd))
                .await;
        }
    }

    /// Forgets every sequence of `event` (of its `channel` when given), each after the
    /// document or commit taking its turn; how many.
    pub(crate) async fn forget(&self, event: &str, channel: Option<&str>) -> usize {
        let keys: Vec<String> = self
            .channels
            .iter()
            .filter(|c| in_scope(c.key(), event, channel))
            .map(|c| c.key().clone())
            .collect();
        let mut n = 0;
        for k in keys {
            n += self.forget_key(&k).await;
        }
        n
    }

    /// Forgets the sequences of channel `key`, after their turns; how many.
    async fn forget_key(&self, key: &str) -> usize {
        let lanes: Vec<Arc<Semaphore>> = match self.channels.get(key) {
            Some(seqs) => seqs.iter().map(|s| s.lane.clone()).collect(),
            None => return 0,
        };
        let mut turns = Vec::with_capacity(lanes.len());
        for lane in &lanes {
            turns.push(lane.acquire().await);
        }
        self.channels.remove(key).map_or(0, |(_, seqs)| seqs.len())
    }

    /// The producer's connection `conn` ended: the lines in progress of the sequences it
    /// published last on `ch` are committed.
    pub async fn disconnected(&self, ingest: &Ingest, ch: &Channel, conn: ConnId) {
        let pick = |s: &Sequence| (s.owner == conn).then_some(Commit::Disconnect);
        self.settle_where(ingest, &key(ch), pick).await;
    }

    /// Commits the line in progress of each sequence of channel `key` that `pick` names a
    /// reason for, one at a time, each after the documents already taking their turn.
    pub(super) async fn settle_where(
        &self,
        ingest: &Ingest,
        key: &str,
        pick: impl Fn(&Sequence) -> Option<Commit>,
    ) {
        let wanted = |s: &Sequence| pick(s).filter(|_| !s.screen.partial().is_empty());
        let picked: Vec<(String, Arc<Semaphore>)> = match self.channels.get(key) {
            Some(seqs) => seqs
                .iter()
                .filter(|s| wanted(s).is_some())
                .map(|s| (s.ident.clone(), s.lane.clone()))
                .collect(),
            None => return,
        };
        if picked.is_empty() {
            return;
        }
        let ch = key
            .split_once('/')
            .and_then(|(event, channel)| ingest.channel(event, channel));
        let Some(ch) = ch else {
            // The channel was deleted: its lines in progress can never be committed.
            tracing::warn!(channel = %key, lines = picked.len(), "the lines in progress of a deleted channel's EBU-TT Live sequences can never be committed; dropped");
            for _ in &picked {
                ingest.idle.stats.dropped(Stream::Ebutt);
            }
            self.forget_key(key).await;
            return;
        };
        for (ident, lane) in picked {
            let Ok(_turn) = lane.acquire_owned().await else {
                continue;
            };
            // Decided again, after the documents that held the lane before us.
            let (lines, why, state, before) = {
                let Some(mut seqs) = self.channels.get_mut(key) else {
                    return;
                };
                let Some(s) = seqs.iter_mut().find(|s| s.ident == ident) else {
                    continue;
                };
                let Some(why) = wanted(s) else {
                    continue;
                };
                let before = s.screen.clone();
                s.due = None;
                let lines: Vec<(String, String)> = s
                    .screen
                    .settle()
                    .finals
                    .into_iter()
                    .map(|t| (client_id(&s.ident, s.epoch, s.last, SELF_COMMITTED, &t), t))
                    .collect();
                (lines, why, saved_state(&ch, s), before)
            };
            match commit(ingest, &ch, lines, state.clone()).await {
                Ok(()) => ingest.idle.stats.committed(Stream::Ebutt, why),
                Err(r) if refused_for_good(&r) => {
                    // The settled screen stays, and is saved: a restart does not bring the
                    // line back.
                    tracing::warn!(sequence = %ident, code = ?r.code, error = %r.message, "the line in progress can never be committed; dropped");
                    ingest.idle.stats.dropped(Stream::Ebutt);
                    if let Err(e) = ingest.store().save(Saved::Ebutt(state)).await {
                        tracing::warn!(sequence = %ident, error = %e.message, "saving the EBU-TT Live sequence state failed");
                    }
                }
                Err(r) => {
                    tracing::warn!(sequence = %ident, code = ?r.code, error = %r.message, "the line in progress could not be committed; trying again later");
                    if let Some(mut seqs) = self.channels.get_mut(key) {
                        if let Some(s) = seqs.iter_mut().find(|s| s.ident == ident) {
                            // Nothing else ran on this sequence meanwhile (we hold its lane).
                            s.screen = before;
                            s.due = Some((Instant::now() + ingest.idle.after, Commit::Idle));
                        }
                    }
                    ingest.idle.wake();
                }
            }
        }
    }
}

/// Stores the lines, then the sequence's state.
async fn commit(
    ingest: &Ingest,
    ch: &Arc<Channel>,
    lines: Vec<(String, String)>,
    state: crate::store::EbuttState,
) -> Result<(), Refusal> {
    for (id, text) in lines {
        let msg = ClientMsg::Final { text, id: Some(id) };
        if let Admitted::Pending(rx) = ingest.admit(ch, msg, None).await? {
            resolve(rx).await?;
        }
    }
    ingest.store().save(Saved::Ebutt(state)).await
}
