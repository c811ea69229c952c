//! The saved states of the caption ingest streams (HTTP formats, EBU-TT Live sequences): what
//! lets their retries and resends stay idempotent across a restart. Written by the writer
//! thread behind the lines they follow ([`Store::save`]), read once at startup.

use tokio::sync::oneshot;

use super::writer::Msg;
use super::{Store, StoreError};
use crate::protocol::Refusal;

/// Where a caption format's stream on a channel stands (see `crate::ingest::formats`), kept so
/// that a restart neither refuses the caption software's next seq nor stores a retried post
/// twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatState {
    pub event: String,
    pub channel: String,
    /// The format's name (`zoom`, `youtube`, `streamtext`).
    pub format: String,
    pub last_seq: u64,
    /// The run of the caption software's seqs (part of the lines' client ids).
    pub epoch: i64,
    /// The line in progress.
    pub line: String,
    /// The answer to the last accepted post.
    pub reply: String,
    /// The hash of the last accepted post's body (`crate::formats::body_hash`; 0: not known).
    pub body_hash: u32,
}

/// Where an EBU-TT Live sequence on a channel stands (see `crate::ingest::ebutt`); `screen`
/// and `finals` are that module's JSON, opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbuttState {
    pub event: String,
    pub channel: String,
    /// `ebuttp:sequenceIdentifier`.
    pub ident: String,
    pub last_seq: u64,
    pub epoch: i64,
    pub screen: String,
    pub finals: String,
    /// When it was saved (Unix ms): the newest `keep` sequences of a channel are kept.
    pub saved_ms: i64,
    pub keep: usize,
}

/// A caption stream state to save.
#[derive(Debug, Clone)]
pub enum Saved {
    Format(FormatState),
    Ebutt(EbuttState),
}

impl Store {
    /// Saves a caption stream's state, durably, in order after everything submitted before it.
    pub async fn save(&self, state: Saved) -> Result<(), Refusal> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Save(state, reply)).await.is_err() {
            return Err(Refusal::shutting_down());
        }
        rx.await.unwrap_or_else(|_| Err(Refusal::shutting_down()))
    }

    /// Every saved caption format stream state (read once at startup).
    pub fn format_states(&self) -> Result<Vec<FormatState>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare(
                "SELECT event, channel, format, last_seq, epoch, line, reply, body_hash FROM format_state",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(FormatState {
                    event: r.get(0)?,
                    channel: r.get(1)?,
                    format: r.get(2)?,
                    last_seq: r.get::<_, i64>(3)? as u64,
                    epoch: r.get(4)?,
                    line: r.get(5)?,
                    reply: r.get(6)?,
                    body_hash: r.get::<_, i64>(7)? as u32,
                })
            })?;
            rows.collect()
        })
    }

    /// Every saved EBU-TT Live sequence state, oldest save first (read once at startup).
    pub fn ebutt_states(&self) -> Result<Vec<EbuttState>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare(
                "SELECT event, channel, ident, last_seq, epoch, screen, finals, saved_ms
                 FROM ebutt_state ORDER BY saved_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(EbuttState {
                    event: r.get(0)?,
                    channel: r.get(1)?,
                    ident: r.get(2)?,
                    last_seq: r.get::<_, i64>(3)? as u64,
                    epoch: r.get(4)?,
                    screen: r.get(5)?,
                    finals: r.get(6)?,
                    saved_ms: r.get(7)?,
                    keep: 0,
                })
            })?;
            rows.collect()
        })
    }
}
