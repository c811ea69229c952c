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
//! A sequence's line in progress is committed by babelcast ([`settle`]) when the sequence
//! goes quiet for `ingest.idle_commit_ms`, when its last document's `end`/`dur` has passed,
//! when the connection that published it ends, when another sequence starts publishing on the
//! channel, and at graceful shutdown: a producer that never sends a clearing document loses
//! nothing. The screen keeps such a line as committed while it stays on screen
//! ([`Screen::settle`]).
//!
//! `sequenceNumber`s: the last number again is a resend; any higher number is accepted (gaps
//! are normal); 1 starts a new run of the producer (restarted), with new client ids, after
//! committing what the old run left in progress; any other lower number is refused (a
//! producer resending a window of documents after a reconnect: they were applied already).
//!
//! **Invariant:** the map guard is only held while the document is applied to the state,
//! never across an `.await`. Documents and babelcast's own commits of one sequence take turns
//! on the sequence's `lane` (one permit, held across their store submissions; it guards no
//! data).

mod settle;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::stats::{Commit, SeqEvent, Stream};
use super::{resolve, Admitted, Ingest};
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::formats::ebutt::{Document, Screen};
use crate::formats::text_hash;
use crate::protocol::{ClientMsg, ErrorCode, Refusal};
use crate::store::{Ack, EbuttState, Saved};

/// Identifies the connection that published a sequence's last document.
pub type ConnId = u64;

/// A new connection id for a producer's socket.
pub fn connection_id() -> ConnId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

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
    /// When babelcast commits the line in progress itself, and why, unless a document comes
    /// first.
    due: Option<(Instant, Commit)>,
    /// The connection that sent the last document.
    owner: ConnId,
    /// Documents and babelcast's own commits take turns here (see the module docs).
    lane: Arc<Semaphore>,
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
    /// Restores the saved sequences (at startup, before any document), oldest save first. A
    /// restored line in progress is committed after `idle` unless a document comes first.
    pub fn restore(&self, states: Vec<EbuttState>, idle: std::time::Duration) {
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
            s.due = (!s.screen.partial().is_empty()).then(|| (Instant::now() + idle, Commit::Idle));
        }
    }

    /// Applies one document, sent on connection `conn`, and waits until its lines are stored.
    /// First the lines in progress of the channel's other sequences are committed (this one
    /// replaces them).
    pub async fn apply(
        &self,
        ingest: &Ingest,
        ch: &Arc<Channel>,
        doc: &Document,
        conn: ConnId,
    ) -> Result<Applied, Refusal> {
        // Refused before anything is applied (and again once it is our turn): nothing is
        // left in progress on a channel deleted or an event over.
        super::formats::takes_lines(ch)?;
        let ident = &doc.sequence_identifier;
        let replaced = |s: &Sequence| (s.ident != *ident).then_some(Commit::Replaced);
        self.settle_where(ingest, &key(ch), replaced).await;
        let lane = {
            let mut seqs = self.channels.entry(key(ch)).or_default();
            sequence(&mut seqs, ident).lane.clone()
        };
        let _turn = lane
            .acquire_owned()
            .await
            .map_err(|_| Refusal::shutting_down())?;
        super::formats::takes_lines(ch)?;
        let now = Instant::now();
        let (finals, partial, resend, state) = {
            let mut seqs = self.channels.entry(key(ch)).or_default();
            let s = sequence(&mut seqs, ident);
            let n = doc.sequence_number;
            let refused = s.partial_refused.then(|| s.screen.partial());
            s.owner = conn;
            if n == s.last {
                ingest.idle.stats.seq(Stream::Ebutt, SeqEvent::Retry);
                // Saved again: the first attempt's save may have failed.
                (s.finals.clone(), refused, true, Some(saved_state(ch, s)))
            } else if n < s.last && n != 1 {
                // A producer resending a window of documents after a reconnect: those before
                // its last one were applied already.
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
                    // Started over at 1: what the old run showed is committed, and the new run
                    // gets new client ids.
                    ingest.idle.stats.seq(Stream::Ebutt, SeqEvent::Restart);
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
                s.due = due(s, doc, now, ingest.idle.after);
                let state = saved_state(ch, s);
                (finals, shown.partial.or(refused), false, Some(state))
            }
        };
        ingest.idle.wake();
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

/// When the line in progress of `s`, just shown from `doc`, is committed if nothing comes
/// first: after the idle time, or once the document's timing says it is no longer shown.
fn due(
    s: &Sequence,
    doc: &Document,
    now: Instant,
    idle: std::time::Duration,
) -> Option<(Instant, Commit)> {
    if s.screen.partial().is_empty() {
        return None;
    }
    let day_secs = (now_ms().rem_euclid(86_400_000)) as f64 / 1000.0;
    let idle = (now + idle, Commit::Idle);
    Some(match doc.timing.shown_for(day_secs) {
        Some(shown) if now + shown < idle.0 => (now + shown, Commit::Timing),
        _ => idle,
    })
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
                // The least recently used, preferring one with no line in progress (a new
                // document commits the others' lines first, so that is nearly always one).
                let lru = (0..seqs.len())
                    .min_by_key(|&i| (!seqs[i].screen.partial().is_empty(), seqs[i].used));
                if let Some(lru) = lru {
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
                due: None,
                owner: 0,
                lane: Arc::new(Semaphore::new(1)),
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
