//! babelcast's own commits of EBU-TT Live sequences' lines in progress: when a sequence is
//! due ([`super::super::idle`]: silence, or its document's timing passed), when the
//! connection that published it ends, when another sequence replaces it, and at shutdown.
//! Each goes through the normal admission path, then the sequence's state is saved.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{client_id, key, resolve, saved_state, Admitted, EbuttStreams, Sequence};
use super::{Commit, ConnId, Stream};
use crate::channel::Channel;
use crate::ingest::idle::Due;
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
        let ch = key
            .split_once('/')
            .and_then(|(event, channel)| ingest.channel(event, channel));
        let Some(ch) = ch.filter(|_| !picked.is_empty()) else {
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
            match commit(ingest, &ch, lines, state).await {
                Ok(()) => ingest.idle.stats.committed(Stream::Ebutt, why),
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
