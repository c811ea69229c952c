//! A committed channel entry (line, edit or handover): the record the store keeps and the frame it becomes.

use crate::booth::Handover;
use crate::protocol::{Frame, ServerMsg};

/// What kind of event took a seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Line,
    Edit,
    /// A change of on-air publisher (see [`crate::booth`]); `text` holds the
    /// [`Handover`](crate::booth::Handover) as JSON.
    Handover,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Line => "line",
            Kind::Edit => "edit",
            Kind::Handover => "handover",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "line" => Some(Kind::Line),
            "edit" => Some(Kind::Edit),
            "handover" => Some(Kind::Handover),
            _ => None,
        }
    }
}

/// One stored event of a channel, in full.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub kind: Kind,
    /// Server receive time, Unix milliseconds (never decreasing within a channel).
    pub ts: i64,
    pub text: String,
    /// Language tag of a line (empty for edits).
    pub lang: String,
    /// For an edit: the seq of the corrected line.
    pub of: Option<u64>,
    /// The publisher's own id for a final (idempotent retries).
    pub client_id: Option<String>,
    /// For a line flagged as the wrong language: the channel's declared language.
    pub expected_lang: Option<String>,
    /// The publisher (display name) who sent a line or edit, when known.
    pub author: Option<String>,
}

impl Record {
    /// The frame listeners receive for this event; built once per event.
    pub fn to_frame(&self) -> Frame {
        match self.kind {
            Kind::Line => ServerMsg::Line {
                seq: self.seq,
                text: self.text.as_str().into(),
                lang: self.lang.as_str().into(),
                ts: self.ts,
                expected_lang: self.expected_lang.as_deref().map(Into::into),
            },
            Kind::Edit => ServerMsg::Edit {
                seq: self.seq,
                of: self.of.unwrap_or(0),
                text: self.text.as_str().into(),
                ts: self.ts,
            },
            Kind::Handover => {
                let h = self.handover().unwrap_or(Handover {
                    from: None,
                    to: None,
                    reason: String::new(),
                });
                return ServerMsg::Handover {
                    seq: self.seq,
                    from: h.from.as_deref().map(Into::into),
                    to: h.to.as_deref().map(Into::into),
                    reason: h.reason.as_str().into(),
                    ts: self.ts,
                }
                .to_frame();
            }
        }
        .to_frame()
    }

    /// The handover carried by a [`Kind::Handover`] record (see [`handover_text`]).
    pub fn handover(&self) -> Option<Handover> {
        (self.kind == Kind::Handover)
            .then(|| serde_json::from_str(&self.text).ok())
            .flatten()
    }

    /// The shareable committed form.
    pub fn committed(&self) -> Committed {
        Committed {
            seq: self.seq,
            kind: self.kind,
            frame: self.to_frame(),
            ts: self.ts,
        }
    }
}

/// The text a handover record stores: the [`Handover`] as JSON, read back by
/// [`Record::handover`].
pub fn handover_text(h: &Handover) -> String {
    serde_json::to_string(h).expect("a handover serialises")
}

/// A committed event as fan-out carries it: its seq and its one shared frame.
#[derive(Debug, Clone)]
pub struct Committed {
    pub seq: u64,
    pub kind: Kind,
    pub frame: Frame,
    /// Server receive time, Unix ms (for the publish-to-send latency metric).
    pub ts: i64,
}
