//! Per-channel state of EBU-TT Live sequences and the application of one document: its
//! `sequenceNumber` is checked against the sequence's last one, its rows are shown on the
//! sequence's [`Screen`], and the lines that commits go through [`Ingest::admit`] like every
//! other publisher's (validation, language check, booth rules, acks after store). Like the HTTP
//! caption formats, an EBU-TT Live producer is not a booth member: it is refused with
//! `not_on_air` while an interpreter is on air, and a reconnect never waits for its own stale
//! connection to leave the booth.
//!
//! A sequence (`ebuttp:sequenceIdentifier`) is remembered per channel across connections,
//! so a producer that reconnects and sends its last document again is
//! answered with the acks of that document's lines (the store recognises their client ids,
//! derived from the sequence, its run, the `sequenceNumber`, the position and the text) and
//! nothing is stored twice. At most [`SEQUENCES_PER_CHANNEL`] sequences are kept per channel.
//! Each sequence's state (last `sequenceNumber`, run, screen, last document's lines) is queued
//! to the store right behind its lines and restored at startup, so the same holds across a
//! restart (even `kill -9`): the producer's resend after it reconnects stores nothing twice.
//! In a cluster the state is each node's own: a producer should keep to one node (a load
//! balancer's affinity), or a resend to another node can store its lines again.
//!
//! **Invariant:** the map guard is only held while the document is applied to the state,
//! never across an `.await`.

use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;

use super::{resolve, Admitted, Ingest};
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::formats::ebutt::{Document, Screen};
use crate::formats::text_hash;
use crate::protocol::{ClientMsg, ErrorCode, Refusal};
use crate::store::{Ack, EbuttState, Saved};

/// Sequences remembered per channel; beyond, the least recently used one is forgotten.
pub const SEQUENCES_PER_CHANNEL: usize = 8;

/// One sequence of documents on one channel.
#[derive(Debug)]
struct Sequence {
    ident: String,
    /// The last accepted `sequenceNumber` (0 before any).
    last: u64,
    /// Identifies this run of the sequence (Unix ms when it started): a producer that starts
    /// over at 1 must not collide with the client ids of its earlier run.
    epoch: i64,
    screen: Screen,
    /// The lines (client id, text) the last accepted document committed, resubmitted when it
    /// is sent again.
    finals: Vec<(String, String)>,
    /// The line in progress was refused (a partner on air): shown again with the next
    /// document, even if that one repeats it.
    partial_refused: bool,
    used: Instant,
}

/// What applying one document did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The document repeated the last accepted `sequenceNumber`: its lines were resubmitted
    /// (and acked as duplicates once stored), nothing else was applied.
    pub resend: bool,
    /// The client id and store result of each line the document committed, in order.
    pub lines: Vec<(String, Result<Ack, Refusal>)>,
    /// Why the new line in progress was refused (e.g. `not_on_air`), if it was.
    pub partial: Option<Refusal>,
}

/// The EBU-TT Live sequences of every channel.
#[derive(Debug, Default)]
pub struct EbuttStreams {
    channels: DashMap<String, Vec<Sequence>>,
}

/// The client id of the `index`-th line committed by document `number` of a sequence run.
pub fn client_id(ident: &str, epoch: i64, number: u64, index: usize, text: &str) -> String {
    format!(
        "ebutt-{:08x}-{epoch:x}-{number}-{index}-{:08x}",
        text_hash(ident),
        text_hash(text)
    )
}

fn key(ch: &Channel) -> String {
    format!("{}/{}", ch.info.event, ch.info.id)
}

impl EbuttStreams {
    /// Restores the saved sequences (at startup, before any document), oldest save first.
    pub fn restore(&self, states: Vec<EbuttState>) {
        for st in states {
            let (Ok(screen), Ok(finals)) = (
                serde_json::from_str::<Screen>(&st.screen),
                serde_json::from_str::<Vec<(String, String)>>(&st.finals),
            ) else {
                tracing::warn!(sequence = %st.ident, "unreadable saved EBU-TT Live state; the sequence starts afresh");
                continue;
            };
            let mut seqs = self
                .channels
                .entry(format!("{}/{}", st.event, st.channel))
                .or_default();
            let s = sequence(&mut seqs, &st.ident);
            s.last = st.last_seq;
            s.epoch = st.epoch;
            s.screen = screen;
            s.finals = finals;
        }
    }

    /// Applies one document and waits until its lines are stored.
    /// Refused as a whole (nothing applied) when its `sequenceNumber` is older than the last
    /// accepted one of its sequence; 1 starts the sequence over (a restarted producer).
    pub async fn apply(
        &self,
        ingest: &Ingest,
        ch: &Arc<Channel>,
        doc: &Document,
    ) -> Result<Applied, Refusal> {
        let (finals, partial, resend, state) = {
            let mut seqs = self.channels.entry(key(ch)).or_default();
            let s = sequence(&mut seqs, &doc.sequence_identifier);
            let n = doc.sequence_number;
            let refused = s
                .partial_refused
                .then(|| s.screen.in_progress().to_string());
            if n == s.last {
                // Saved again: the first attempt's save may have failed.
                (s.finals.clone(), refused, true, Some(saved_state(ch, s)))
            } else if n < s.last && n != 1 {
                return Err(Refusal::new(
                    ErrorCode::SeqOutOfOrder,
                    format!(
                        "sequenceNumber {n} of sequence {:?} is not after the last accepted one, {}; document ignored, nothing stored",
                        s.ident, s.last
                    ),
                ));
            } else {
                let mut texts = Vec::new();
                if n < s.last {
                    // Started over: what the old run showed is cleared (its line in progress
                    // committed), and the new run gets new client ids.
                    texts = s.screen.show(&[]).finals;
                    s.epoch = now_ms().max(s.epoch + 1);
                }
                let shown = s.screen.show(&doc.rows());
                texts.extend(shown.finals);
                let finals: Vec<(String, String)> = texts
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (client_id(&s.ident, s.epoch, n, i, &t), t))
                    .collect();
                s.last = n;
                s.finals.clone_from(&finals);
                let state = saved_state(ch, s);
                (finals, shown.partial.or(refused), false, Some(state))
            }
        };
        let committed = !finals.is_empty();
        // Submit every line first (the store keeps their order), then wait for all of them.
        let mut pending = Vec::with_capacity(finals.len());
        for (id, text) in finals {
            let msg = ClientMsg::Final {
                text,
                id: Some(id.clone()),
            };
            pending.push(match ingest.admit(ch, msg, None).await {
                Ok(Admitted::Pending(rx)) => (id, Ok(rx)),
                Ok(_) => continue,
                Err(r) => (id, Err(r)),
            });
        }
        // The state is queued right behind the lines (usually the same transaction): it
        // carries the document's lines, so a restart in between resubmits them by their ids.
        let save = async {
            if let Some(state) = state {
                if let Err(r) = ingest.store().save(Saved::Ebutt(state)).await {
                    // A restart finds the sequence one document behind; that document, sent
                    // again, is applied again with the same ids.
                    tracing::warn!(error = %r.message, "saving the EBU-TT Live sequence state failed");
                }
            }
        };
        let acks = async {
            let mut lines = Vec::with_capacity(pending.len());
            for (id, p) in pending {
                let result = match p {
                    Ok(rx) => resolve(rx).await,
                    Err(r) => Err(r),
                };
                lines.push((id, result));
            }
            lines
        };
        let ((), lines) = futures_util::future::join(save, acks).await;
        // The new line in progress, once the lines before it are visible. A commit already
        // cleared the partial, so an empty line after one needs nothing.
        let mut refused = None;
        if let Some(text) = partial.as_ref().filter(|p| !(p.is_empty() && committed)) {
            let msg = ClientMsg::Partial { text: text.clone() };
            if let Err(r) = ingest.admit(ch, msg, None).await {
                refused = Some(r);
            }
        }
        if partial.is_some() {
            if let Some(mut seqs) = self.channels.get_mut(&key(ch)) {
                if let Some(s) = seqs.iter_mut().find(|s| s.ident == doc.sequence_identifier) {
                    s.partial_refused = refused.is_some();
                }
            }
        }
        Ok(Applied {
            resend,
            lines,
            partial: refused,
        })
    }
}

/// What is saved of a sequence (see the module docs).
fn saved_state(ch: &Channel, s: &Sequence) -> EbuttState {
    EbuttState {
        event: ch.info.event.clone(),
        channel: ch.info.id.clone(),
        ident: s.ident.clone(),
        last_seq: s.last,
        epoch: s.epoch,
        screen: serde_json::to_string(&s.screen).expect("a screen serialises"),
        finals: serde_json::to_string(&s.finals).expect("lines serialise"),
        saved_ms: now_ms(),
        keep: SEQUENCES_PER_CHANNEL,
    }
}

/// The sequence `ident` of a channel, created (forgetting the least recently used one when
/// there are too many) if new.
fn sequence<'a>(seqs: &'a mut Vec<Sequence>, ident: &str) -> &'a mut Sequence {
    let now = Instant::now();
    let i = match seqs.iter().position(|s| s.ident == ident) {
        Some(i) => i,
        None => {
            if seqs.len() >= SEQUENCES_PER_CHANNEL {
                if let Some(lru) = (0..seqs.len()).min_by_key(|&i| seqs[i].used) {
                    seqs.swap_remove(lru);
                }
            }
            seqs.push(Sequence {
                ident: ident.to_string(),
                last: 0,
                epoch: now_ms(),
                screen: Screen::default(),
                finals: Vec::new(),
                partial_refused: false,
                used: now,
            });
            seqs.len() - 1
        }
    };
    let s = &mut seqs[i];
    s.used = now;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_per_channel_are_bounded() {
        let mut seqs = Vec::new();
        for i in 0..SEQUENCES_PER_CHANNEL + 3 {
            sequence(&mut seqs, &format!("s{i}")).last = 5;
        }
        assert_eq!(seqs.len(), SEQUENCES_PER_CHANNEL);
        // The oldest were forgotten; a known one is found again, not duplicated.
        assert!(seqs.iter().all(|s| s.ident != "s0"));
        assert_eq!(sequence(&mut seqs, "s10").last, 5);
        assert_eq!(seqs.len(), SEQUENCES_PER_CHANNEL);
    }

    #[test]
    fn client_ids_are_stable_short_and_distinct() {
        let a = client_id("BBC1-live", 7, 42, 0, "Hello.");
        assert_eq!(a, client_id("BBC1-live", 7, 42, 0, "Hello."));
        assert!(a.starts_with("ebutt-") && a.len() <= crate::protocol::MAX_CLIENT_ID_CHARS);
        for b in [
            client_id("BBC2-live", 7, 42, 0, "Hello."),
            client_id("BBC1-live", 8, 42, 0, "Hello."),
            client_id("BBC1-live", 7, 43, 0, "Hello."),
            client_id("BBC1-live", 7, 42, 1, "Hello."),
            client_id("BBC1-live", 7, 42, 0, "Hello!"),
        ] {
            assert_ne!(a, b);
        }
        let long = client_id(&"x".repeat(10_000), i64::MAX, u64::MAX, 31, "y");
        assert!(long.len() <= crate::protocol::MAX_CLIENT_ID_CHARS, "{long}");
    }
}
