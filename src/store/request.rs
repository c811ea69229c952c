//! What is submitted to the sequencer (the local writer or the cluster's) and what it
//! answers: [`Append`] and its [`Record`], the edit rule, [`Outcome`] and the [`Ack`].

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::booth::Handover;
use crate::channel::Channel;
use crate::protocol::{ErrorCode, Refusal};
use crate::record::{Kind, Record};

/// What a publisher asks to store.
#[derive(Debug, Clone)]
pub enum Append {
    Line {
        text: String,
        lang: String,
        expected_lang: Option<String>,
        client_id: Option<String>,
        /// The publisher's display name (lets the author correct the line later).
        author: Option<String>,
    },
    Edit {
        of: u64,
        text: String,
        /// Who corrects, when the edit comes from a booth publisher: only the on-air
        /// publisher or the line's author may correct a line.
        editor: Option<Editor>,
    },
    /// A change of on-air publisher.
    Handover(Handover),
}

impl Append {
    /// The record this submission becomes as event `seq` of its channel, stamped `ts`. The one
    /// record builder of the local writer and the cluster sequencer.
    pub fn record(&self, seq: u64, ts: i64) -> Record {
        let base = |kind: Kind, text: String| Record {
            seq,
            kind,
            ts,
            text,
            lang: String::new(),
            of: None,
            client_id: None,
            expected_lang: None,
            author: None,
        };
        match self {
            Append::Line {
                text,
                lang,
                expected_lang,
                client_id,
                author,
            } => Record {
                lang: lang.clone(),
                client_id: client_id.clone(),
                expected_lang: expected_lang.clone(),
                author: author.clone(),
                ..base(Kind::Line, text.clone())
            },
            Append::Edit { of, text, editor } => Record {
                of: Some(*of),
                author: editor.as_ref().map(|e| e.name.clone()),
                ..base(Kind::Edit, text.clone())
            },
            Append::Handover(h) => base(Kind::Handover, crate::record::handover_text(h)),
        }
    }
}

/// Whether an edit of line `of` may be stored: `target` is the line's author (`None`: no
/// committed line has that seq). Only the on-air publisher or the line's author may correct a
/// line. Shared by the local writer and the cluster sequencer.
pub fn check_edit(
    of: u64,
    target: Option<Option<String>>,
    editor: Option<&Editor>,
) -> Result<(), Refusal> {
    let Some(author) = target else {
        return Err(Refusal::new(
            ErrorCode::UnknownSeq,
            format!("no committed line with seq {of} in this channel"),
        ));
    };
    match editor {
        Some(e) if !e.on_air && author.as_deref() != Some(e.name.as_str()) => Err(Refusal::new(
            ErrorCode::NotOnAir,
            "only the on-air publisher or the line's author can correct it",
        )),
        _ => Ok(()),
    }
}

/// A booth publisher correcting a line.
#[derive(Debug, Clone)]
pub struct Editor {
    pub name: String,
    pub on_air: bool,
}

/// A stored event's acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    /// The final's client id was already stored: this is the original seq.
    pub duplicate: bool,
}

/// How the sequencer (the local writer, or the cluster's) decided one submission.
#[derive(Debug)]
pub enum Outcome {
    Stored(Record),
    /// The final's client id was already stored, with this seq.
    Duplicate(u64),
    Refused(Refusal),
}

impl Outcome {
    /// The submitter's answer.
    pub fn into_ack(self) -> Result<Ack, Refusal> {
        match self {
            Outcome::Stored(r) => Ok(Ack {
                seq: r.seq,
                duplicate: false,
            }),
            Outcome::Duplicate(seq) => Ok(Ack {
                seq,
                duplicate: true,
            }),
            Outcome::Refused(r) => Err(r),
        }
    }
}

/// One event to sequence and store, with where its acknowledgement goes.
#[derive(Debug)]
pub struct Request {
    pub channel: Arc<Channel>,
    pub append: Append,
    pub ts: i64,
    pub partial_gen: Option<u64>,
    pub reply: oneshot::Sender<Result<Ack, Refusal>>,
}
