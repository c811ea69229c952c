//! Per-channel state of the HTTP caption formats (Zoom, YouTube, StreamText) and the
//! application of one post: the line in progress and the last seq of each format on each
//! channel, then every committed line through [`Ingest::admit`], so these formats share the
//! pipeline of every other publisher (validation, language check, booth rules, acks after
//! store).
//!
//! Seqs follow [`crate::formats::seq`]: a post repeating the last accepted seq **and body** is
//! a retry. It is answered with the first answer and applies nothing new; its lines are
//! resubmitted with the same client ids (derived from format, run, seq, position and text), so
//! whatever the first attempt already stored is acked as a duplicate and whatever it did not is
//! stored now. Any other post is new text: the same seq with another body, a gap, or a seq
//! below the last (a new run, with a new epoch so its ids never collide with the old run's).
//!
//! A line in progress is committed by babelcast itself after `ingest.idle_commit_ms` without
//! a post, when its event ends and at graceful shutdown ([`settle`]), so a sender that never sends a line
//! break loses nothing. Posts and those commits of one stream take turns on the stream's
//! `lane` (one permit), so they reach the store in the order they were decided.
//!
//! Each stream's state (last seq, the run's epoch, the line in progress, the last answer) is
//! saved in the store after the post's lines are stored, and restored at startup: after a
//! restart the caption software's next seq is accepted, a retried post resubmits lines with
//! the same client ids (acked as duplicates), and the line in progress goes on. A save that
//! did not happen (crash in between) leaves the state one post behind, and that post, sent
//! again, is applied again with the same ids: nothing is lost or stored twice.
//!
//! **Invariant:** the map guard is only held while the post is applied to the state, never
//! across an `.await`. The lane permit is held across the post's store submissions: it orders
//! one sender's posts (a sender posts one at a time; a second waits, bounded by the requests
//! in flight), it guards no data.

mod settle;

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::stats::{SeqEvent, Stream};
use super::{resolve, Admitted, Ingest};
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::formats::line::LineBuffer;
use crate::formats::youtube::Cue;
use crate::formats::{body_hash, check_seq, client_id, timestamp, Format, LastPost, SeqCheck};
use crate::protocol::{ClientMsg, Refusal};
use crate::store::{Ack, FormatState, Saved};

/// The line index in client ids of a line babelcast committed itself (never a post's own:
/// a post's lines are numbered from 0).
const SELF_COMMITTED: usize = usize::MAX;

/// One format's stream on one channel.
#[derive(Debug)]
struct Slot {
    line: LineBuffer,
    last_seq: Option<u64>,
    /// The answer to the last accepted post (a timestamp), repeated for its retries.
    reply: String,
    /// The lines (client id, text) the last accepted post committed, resubmitted on retry.
    finals: Vec<(String, String)>,
    /// Identifies this run of the caption software's seqs (the Unix ms it started): a
    /// stream that starts over at seq 1 must not collide with an earlier run's ids, or a
    /// repeated "[Applause]" would be acked as a duplicate and never shown.
    epoch: i64,
    /// The hash of the last accepted post's body (`UNKNOWN_BODY` when restored from an older
    /// version's state).
    body: u32,
    /// When the line in progress is committed if no post comes first.
    idle_at: Option<Instant>,
    /// Posts and babelcast's own commits of this stream take turns here (see the module docs).
    lane: Arc<Semaphore>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            line: LineBuffer::default(),
            last_seq: None,
            reply: String::new(),
            finals: Vec::new(),
            epoch: 0,
            body: crate::formats::seq::UNKNOWN_BODY,
            idle_at: None,
            lane: Arc::new(Semaphore::new(1)),
        }
    }
}

impl Slot {
    fn last(&self) -> Option<LastPost> {
        self.last_seq.map(|seq| LastPost {
            seq,
            body: self.body,
        })
    }

    fn state(&self, key: &(String, Format)) -> FormatState {
        let (event, channel) = key.0.split_once('/').unwrap_or((&key.0, ""));
        FormatState {
            event: event.to_string(),
            channel: channel.to_string(),
            format: key.1.as_str().to_string(),
            last_seq: self.last_seq.unwrap_or(0),
            epoch: self.epoch,
            line: self.line.line().to_string(),
            reply: self.reply.clone(),
            body_hash: self.body,
        }
    }
}

/// The body of a post, parsed by its format.
#[derive(Debug)]
pub enum Input<'a> {
    /// Text appended to the line in progress (Zoom, StreamText); `corrections` applies
    /// backspace and delete; `chunks` joins a post that continues the line with a space
    /// where neither side has whitespace (Zoom senders post one caption per request).
    Text {
        text: &'a str,
        corrections: bool,
        chunks: bool,
    },
    /// Complete captions (YouTube), each committed as one line.
    Cues(Vec<Cue>),
}

/// Why a post was refused.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The channel pipeline refused a line (booth on air, store unavailable, ...). The seq was
    /// accepted: a retry with the same seq and body resubmits the lines.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// What an accepted post did.
#[derive(Debug)]
pub struct Posted {
    /// The answer body: the server time when the post was first accepted.
    pub reply: String,
    /// The post repeated the last accepted seq.
    pub retry: bool,
    /// The acks of the lines it committed, in order.
    pub acks: Vec<Ack>,
}

/// The format streams of every channel.
#[derive(Debug, Default)]
pub struct FormatStreams {
    slots: DashMap<(String, Format), Slot>,
}

/// Refuses a line for a channel whose event is not live or that was deleted.
pub(crate) fn takes_lines(ch: &Channel) -> Result<(), Refusal> {
    if ch.life.is_deleted() {
        return Err(crate::channel::Lifecycle::gone_refusal());
    }
    ch.life.refusal().map_or(Ok(()), Err)
}

fn key(ch: &Channel, format: Format) -> (String, Format) {
    (format!("{}/{}", ch.info.event, ch.info.id), format)
}

impl FormatStreams {
    /// Restores the saved states (at startup, before any post). A restored line in progress
    /// is committed after `idle` unless a post continues it first.
    pub fn restore(&self, states: Vec<FormatState>, idle: std::time::Duration) {
        for s in states {
            let Some(format) = Format::parse(&s.format) else {
                continue;
            };
            self.slots.insert(
                (format!("{}/{}", s.event, s.channel), format),
                Slot {
                    idle_at: (!s.line.is_empty()).then(|| Instant::now() + idle),
                    line: LineBuffer::with_line(&s.line),
                    last_seq: Some(s.last_seq),
                    reply: s.reply,
                    epoch: s.epoch,
                    body: s.body_hash,
                    ..Slot::default()
                },
            );
        }
    }

    /// The last accepted seq of a format on a channel (0 before any).
    pub fn last_seq(&self, ch: &Channel, format: Format) -> u64 {
        self.slots
            .get(&key(ch, format))
            .and_then(|s| s.last_seq)
            .unwrap_or(0)
    }

    /// The line in progress of a format on a channel.
    pub fn line(&self, ch: &Channel, format: Format) -> String {
        self.slots
            .get(&key(ch, format))
            .map(|s| s.line.line().to_string())
            .unwrap_or_default()
    }

    /// Applies post `seq` of `format` (whose raw body is `body`) to the channel and waits
    /// until its lines are stored.
    pub async fn post(
        &self,
        ingest: &Ingest,
        ch: &Arc<Channel>,
        (format, seq, body): (Format, u64, &str),
        input: Input<'_>,
    ) -> Result<Posted, PostError> {
        let max = ingest.max_caption_chars();
        let key = key(ch, format);
        // Refused before anything is applied (and again once it is our turn): a post refused
        // now leaves no text behind to be committed later, and none in a stream forgotten
        // because its channel was deleted or its event ended.
        takes_lines(ch)?;
        let lane = self.slots.entry(key.clone()).or_default().lane.clone();
        let _turn = lane
            .acquire_owned()
            .await
            .map_err(|_| Refusal::shutting_down())?;
        takes_lines(ch)?;
        super::anonymous_may_publish(ch)?;
        let body = body_hash(body);
        let stats = &ingest.idle.stats;
        // Decide and apply under the map guard; no await until it is dropped.
        let (finals, partial, reply, retry, state) = {
            let mut slot = self.slots.entry(key.clone()).or_default();
            let check = check_seq(slot.last(), seq, body);
            let counted = match check {
                SeqCheck::Retry => Some(SeqEvent::Retry),
                SeqCheck::Gap { skipped } => Some(SeqEvent::Gap { skipped }),
                SeqCheck::Changed => Some(SeqEvent::Changed),
                SeqCheck::Restart => Some(SeqEvent::Restart),
                SeqCheck::New => None,
            };
            if let Some(event) = counted {
                stats.seq(Stream::Format(format), event);
            }
            match check {
                // Saved again once its lines are stored: the first attempt may have failed
                // before saving (a refused line, a full disk), and a restart must not find
                // the stream one post behind.
                SeqCheck::Retry => (
                    slot.finals.clone(),
                    None,
                    slot.reply.clone(),
                    true,
                    Some(slot.state(&key)),
                ),
                _ => {
                    // A new run (and new text under a seq already used) gets a new epoch, so
                    // its lines' client ids never collide with lines stored before.
                    if slot.epoch == 0 || matches!(check, SeqCheck::Restart | SeqCheck::Changed) {
                        slot.epoch = now_ms().max(slot.epoch + 1);
                    }
                    let epoch = slot.epoch;
                    // A new run does not continue the old run's line in progress: that is a
                    // line of its own, committed first.
                    let old_line = match check {
                        SeqCheck::Restart => slot.line.commit_line(),
                        _ => None,
                    };
                    let (mut texts, partial) = match input {
                        Input::Text {
                            text,
                            corrections,
                            chunks,
                        } => {
                            let applied = if chunks {
                                slot.line.push_chunk(text, corrections, max)
                            } else {
                                slot.line.push(text, corrections, max)
                            };
                            let partial = applied.changed.then(|| slot.line.line().to_string());
                            (applied.finals, partial)
                        }
                        Input::Cues(cues) => (
                            cues.into_iter()
                                .map(|c| c.text)
                                .filter(|t| !t.trim().is_empty())
                                .collect(),
                            None,
                        ),
                    };
                    if let Some(old) = old_line {
                        texts.insert(0, old);
                    }
                    let finals: Vec<(String, String)> = texts
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| (client_id(format, epoch, seq, i, &t), t))
                        .collect();
                    let reply = timestamp::format(now_ms());
                    slot.last_seq = Some(seq);
                    slot.body = body;
                    slot.reply.clone_from(&reply);
                    slot.finals.clone_from(&finals);
                    slot.idle_at =
                        (!slot.line.line().is_empty()).then(|| Instant::now() + ingest.idle.after);
                    (finals, partial, reply, false, Some(slot.state(&key)))
                }
            }
        };
        ingest.idle.wake();
        let committed = !finals.is_empty();
        // Submit every line first (the store keeps their order), then wait for all of them.
        let mut pending = Vec::with_capacity(finals.len());
        let mut refused = None;
        for (id, text) in finals {
            match ingest
                .admit(ch, ClientMsg::Final { text, id: Some(id) }, None)
                .await
            {
                Ok(Admitted::Pending(rx)) => pending.push(rx),
                Ok(_) => {}
                Err(r) => {
                    refused = Some(r);
                    break;
                }
            }
        }
        let mut acks = Vec::with_capacity(pending.len());
        for rx in pending {
            match resolve(rx).await {
                Ok(ack) => acks.push(ack),
                Err(r) => {
                    refused.get_or_insert(r);
                }
            }
        }
        if let Some(r) = refused {
            return Err(r.into());
        }
        // The new line in progress, once the lines before it are visible. A commit already
        // cleared the partial, so an empty line after one needs nothing.
        if let Some(text) = partial.filter(|p| !(p.is_empty() && committed)) {
            ingest.admit(ch, ClientMsg::Partial { text }, None).await?;
        }
        if let Some(state) = state {
            ingest.store().save(Saved::Format(state)).await?;
        }
        Ok(Posted { reply, retry, acks })
    }
}
