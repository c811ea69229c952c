//! Per-channel state of the HTTP caption formats (Zoom, YouTube, StreamText) and the
//! application of one post: the line in progress and the last seq of each format on each
//! channel, then every committed line through [`Ingest::admit`], so these formats share the
//! pipeline of every other publisher (validation, language check, booth rules, acks after
//! store).
//!
//! Idempotency: a post repeating the last accepted seq is a retry. It is answered with the
//! first answer and applies nothing new; its lines are resubmitted with the same client ids
//! (derived from format, seq, position and text), so whatever the first attempt already stored
//! is acked as a duplicate and whatever it did not is stored now.
//!
//! Each stream's state (last seq, the run's epoch, the line in progress, the last answer) is
//! saved in the store after the post's lines are stored, and restored at startup: after a
//! restart the caption software's next seq is accepted, a retried post resubmits lines with
//! the same client ids (acked as duplicates), and the line in progress goes on. A save that
//! did not happen (crash in between) leaves the state one post behind, and that post, sent
//! again, is applied again with the same ids: nothing is lost or stored twice.
//!
//! **Invariant:** the map guard is only held while the post is applied to the state, never
//! across an `.await`.

use std::sync::Arc;

use dashmap::DashMap;

use super::{resolve, Admitted, Ingest};
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::formats::line::LineBuffer;
use crate::formats::youtube::Cue;
use crate::formats::{check_seq, client_id, timestamp, Format, FormatError, SeqCheck};
use crate::protocol::{ClientMsg, Refusal};
use crate::store::{Ack, FormatState, Saved};

/// One format's stream on one channel.
#[derive(Debug, Default)]
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
}

/// The body of a post, parsed by its format.
#[derive(Debug)]
pub enum Input<'a> {
    /// Text appended to the line in progress (Zoom, StreamText); `corrections` applies
    /// backspace and delete.
    Text { text: &'a str, corrections: bool },
    /// Complete captions (YouTube), each committed as one line.
    Cues(Vec<Cue>),
}

/// Why a post was refused.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The request itself is wrong (seq, body); nothing was applied.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The channel pipeline refused a line (booth on air, store unavailable, ...). The seq was
    /// accepted: a retry with the same seq resubmits the lines.
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

fn key(ch: &Channel, format: Format) -> (String, Format) {
    (format!("{}/{}", ch.info.event, ch.info.id), format)
}

impl FormatStreams {
    /// Restores the saved states (at startup, before any post).
    pub fn restore(&self, states: Vec<FormatState>) {
        for s in states {
            let Some(format) = Format::parse(&s.format) else {
                continue;
            };
            self.slots.insert(
                (format!("{}/{}", s.event, s.channel), format),
                Slot {
                    line: LineBuffer::with_line(&s.line),
                    last_seq: Some(s.last_seq),
                    reply: s.reply,
                    finals: Vec::new(),
                    epoch: s.epoch,
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

    /// Applies post `seq` of `format` to the channel and waits until its lines are stored.
    pub async fn post(
        &self,
        ingest: &Ingest,
        ch: &Arc<Channel>,
        format: Format,
        seq: u64,
        input: Input<'_>,
    ) -> Result<Posted, PostError> {
        let max = ingest.max_caption_chars();
        // Decide and apply under the map guard; no await until it is dropped.
        let (finals, partial, reply, retry, state) = {
            let mut slot = self.slots.entry(key(ch, format)).or_default();
            match check_seq(slot.last_seq, seq, format.seq_policy())? {
                // Saved again once its lines are stored: the first attempt may have failed
                // before saving (a refused line, a full disk), and a restart must not find
                // the stream one post behind (Zoom and YouTube would then be refused).
                SeqCheck::Retry => {
                    let state = FormatState {
                        event: ch.info.event.clone(),
                        channel: ch.info.id.clone(),
                        format: format.as_str().to_string(),
                        last_seq: seq,
                        epoch: slot.epoch,
                        line: slot.line.line().to_string(),
                        reply: slot.reply.clone(),
                    };
                    (
                        slot.finals.clone(),
                        None,
                        slot.reply.clone(),
                        true,
                        Some(state),
                    )
                }
                SeqCheck::New => {
                    if slot.last_seq.is_none_or(|last| seq <= 1 && last > seq) || slot.epoch == 0 {
                        slot.epoch = now_ms();
                    }
                    let epoch = slot.epoch;
                    let (texts, partial) = match input {
                        Input::Text { text, corrections } => {
                            let applied = slot.line.push(text, corrections, max);
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
                    let finals: Vec<(String, String)> = texts
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| (client_id(format, epoch, seq, i, &t), t))
                        .collect();
                    let reply = timestamp::format(now_ms());
                    slot.last_seq = Some(seq);
                    slot.reply.clone_from(&reply);
                    slot.finals.clone_from(&finals);
                    let state = FormatState {
                        event: ch.info.event.clone(),
                        channel: ch.info.id.clone(),
                        format: format.as_str().to_string(),
                        last_seq: seq,
                        epoch,
                        line: slot.line.line().to_string(),
                        reply: reply.clone(),
                    };
                    (finals, partial, reply, false, Some(state))
                }
            }
        };
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
