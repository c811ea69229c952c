//! An EBU-TT Live document as far as captions are concerned ([`Document`], its paragraphs
//! and rows), and why a text message is not an acceptable one ([`DocError`]).

use super::Timing;
use crate::protocol::{ErrorCode, Refusal};

/// Most rows of text one document may carry (a subtitle screen shows two or three).
pub const MAX_ROWS: usize = 32;

/// One EBU-TT Live document, as far as captions are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// `ebuttp:sequenceIdentifier`: which sequence (producer stream) the document belongs to.
    pub sequence_identifier: String,
    /// `ebuttp:sequenceNumber`: increases with every document of the sequence.
    pub sequence_number: u64,
    /// The `tt:p` elements of `tt:body` with text, in document order.
    pub paragraphs: Vec<Paragraph>,
    /// The document's timing attributes.
    pub timing: Timing,
}

impl Document {
    /// Every row of every paragraph, in document order: what the screen shows, top to bottom.
    pub fn rows(&self) -> Vec<String> {
        self.paragraphs
            .iter()
            .flat_map(|p| p.rows.iter().cloned())
            .collect()
    }
}

/// One `tt:p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    /// Its `xml:id`, if any (kept for logs; producers do not keep ids stable, see [`super::Screen`]).
    pub id: Option<String>,
    /// Its text rows (split at `tt:br`), whitespace collapsed and trimmed; never empty rows.
    pub rows: Vec<String>,
}

/// Why a text message is not an acceptable EBU-TT Live document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("not well-formed XML: {0}")]
    NotXml(String),
    #[error(
        "the root element must be tt in the TTML namespace (http://www.w3.org/ns/ttml), found {0}"
    )]
    NotTtml(String),
    #[error("tt:tt has no sequenceIdentifier attribute in the EBU-TT parameters namespace (urn:ebu:tt:parameters)")]
    MissingSequenceIdentifier,
    #[error("tt:tt has no sequenceNumber attribute in the EBU-TT parameters namespace (urn:ebu:tt:parameters)")]
    MissingSequenceNumber,
    #[error("sequenceNumber must be a positive integer, not {0:?}")]
    BadSequenceNumber(String),
    #[error("a line of the document is longer than {0} characters")]
    TextTooLong(usize),
    #[error("the document has more than {MAX_ROWS} lines of text")]
    TooManyRows,
}

impl DocError {
    /// The code clients branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            DocError::NotXml(_) => ErrorCode::BadXml,
            DocError::TextTooLong(_) | DocError::TooManyRows => ErrorCode::TextTooLong,
            _ => ErrorCode::BadDocument,
        }
    }

    /// The refusal sent back as an `error` frame.
    pub fn refusal(&self) -> Refusal {
        Refusal::new(
            self.code(),
            format!("{self}; document ignored, nothing stored"),
        )
    }
}
