//! The caption formats of the outside world (Zoom's closed-caption API, YouTube Live HTTP
//! caption ingestion, StreamText's caption URL): pure parsing and building functions with no
//! I/O, so each is unit-tested and fuzzable. HTTP handlers live in `server::routes::formats`,
//! per-channel state in [`crate::ingest::formats`], egress in [`crate::forward`].
//!
//! - [`line`]: the line in progress of a text stream (append, corrections, CR/LF commits).
//! - [`seq`]: what a post's `seq` means (retry, changed body, gap, new run).
//! - [`timestamp`]: the `YYYY-MM-DDTHH:MM:SS.mmm` UTC timestamps both Zoom and YouTube use.
//! - [`zoom`], [`youtube`], [`streamtext`]: query parameters, bodies and URLs of each service.
//! - [`ebutt`]: EBU-TT Live documents (TTML over WebSocket) and the screen they describe.
//! - [`ogg`]: Ogg Opus pages (sound recordings, `babelcast push-audio` input).

pub mod ebutt;
pub mod line;
pub mod ogg;
pub mod seq;
pub mod streamtext;
pub mod timestamp;
pub mod youtube;
pub mod zoom;

use crate::protocol::ErrorCode;

pub use seq::{body_hash, check_seq, LastPost, SeqCheck};

/// Which outside format a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Zoom,
    YouTube,
    StreamText,
}

impl Format {
    /// The name used in routes, client ids and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zoom => "zoom",
            Format::YouTube => "youtube",
            Format::StreamText => "streamtext",
        }
    }

    /// The format named `name` (as [`Format::as_str`] gives it).
    pub fn parse(name: &str) -> Option<Format> {
        [Format::Zoom, Format::YouTube, Format::StreamText]
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}

/// Why a format request was refused, before anything was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the seq query parameter is required")]
    MissingSeq,
    #[error("seq must be a non-negative integer, not {0:?}")]
    BadSeq(String),
    #[error("lang {0:?} is not a language code like en or en-US")]
    BadLang(String),
    #[error("the body is not UTF-8 text")]
    NotUtf8,
    #[error("line {line}: {text:?} is not a timestamp like 2024-05-01T09:30:00.000")]
    BadTimestamp { line: usize, text: String },
    #[error("line {line}: caption text must follow a timestamp line")]
    TextBeforeTimestamp { line: usize },
    #[error("line {line}: a caption is longer than {max} characters")]
    CaptionTooLong { line: usize, max: usize },
}

impl FormatError {
    /// The code clients branch on (the `code` of the JSON error body).
    pub fn code(&self) -> ErrorCode {
        match self {
            FormatError::MissingSeq => ErrorCode::MissingSeq,
            FormatError::BadSeq(_) => ErrorCode::BadSeq,
            FormatError::BadLang(_) => ErrorCode::BadLang,
            FormatError::NotUtf8 => ErrorCode::NotUtf8,
            FormatError::BadTimestamp { .. } => ErrorCode::BadTimestamp,
            FormatError::TextBeforeTimestamp { .. } => ErrorCode::TextBeforeTimestamp,
            FormatError::CaptionTooLong { .. } => ErrorCode::TextTooLong,
        }
    }

    /// The HTTP status (Zoom answers a missing seq with 403, which its route applies itself).
    pub fn http_status(&self) -> u16 {
        match self {
            FormatError::CaptionTooLong { .. } => 413,
            _ => 400,
        }
    }
}

/// Parses the `seq` query parameter.
pub fn parse_seq(raw: Option<&str>) -> Result<u64, FormatError> {
    let raw = raw.ok_or(FormatError::MissingSeq)?;
    let t = raw.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::BadSeq(raw.chars().take(32).collect()));
    }
    t.parse()
        .map_err(|_| FormatError::BadSeq(raw.chars().take(32).collect()))
}

/// Parses a `lang` parameter (`en`, `en-US`, Zoom's `jp-JP`) into a lowercase BCP-47 primary
/// tag (`jp` becomes `ja`). `None` when absent or empty.
pub fn parse_lang(raw: Option<&str>) -> Result<Option<String>, FormatError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = || FormatError::BadLang(raw.chars().take(40).collect());
    if raw.len() > 35 {
        return Err(bad());
    }
    let mut parts = raw.split(['-', '_']);
    let primary = parts.next().unwrap_or_default();
    if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    for p in parts {
        if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
    }
    let primary = primary.to_ascii_lowercase();
    Ok(Some(if primary == "jp" {
        "ja".to_string()
    } else {
        primary
    }))
}

/// Appends `key=value` query parameters to a URL that may already have a query.
pub fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(url.len() + 32);
    out.push_str(url);
    let mut sep = if url.contains('?') {
        if url.ends_with('?') || url.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    for (k, v) in params {
        out.push_str(sep);
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        sep = "&";
    }
    out
}

/// A short, stable hash of a text (FNV-1a, 32 bits), for client ids that tell two lines with
/// the same seq apart.
pub fn text_hash(text: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The client id of the `index`-th line committed by post `seq` of a format stream started at
/// `epoch`: retries of the same post produce the same ids, so the store acks them as
/// duplicates; a new run of the caption software (a new epoch) never collides with an old one.
pub fn client_id(format: Format, epoch: i64, seq: u64, index: usize, text: &str) -> String {
    format!(
        "{}-{epoch:x}-{seq}-{index}-{:08x}",
        format.as_str(),
        text_hash(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_and_lang_parameters() {
        assert_eq!(parse_seq(Some("12")), Ok(12));
        assert_eq!(parse_seq(None), Err(FormatError::MissingSeq));
        assert!(matches!(parse_seq(Some("-1")), Err(FormatError::BadSeq(_))));
        assert!(matches!(
            parse_seq(Some("1e3")),
            Err(FormatError::BadSeq(_))
        ));
        assert!(matches!(
            parse_seq(Some("99999999999999999999999")),
            Err(FormatError::BadSeq(_))
        ));
        assert_eq!(parse_lang(Some("en-US")), Ok(Some("en".into())));
        assert_eq!(parse_lang(Some("jp-JP")), Ok(Some("ja".into())));
        assert_eq!(parse_lang(Some("zh_CN")), Ok(Some("zh".into())));
        assert_eq!(parse_lang(Some("")), Ok(None));
        assert_eq!(parse_lang(None), Ok(None));
        assert!(parse_lang(Some("english")).is_err());
        assert!(parse_lang(Some("en US")).is_err());
    }

    #[test]
    fn params_are_appended_and_escaped() {
        assert_eq!(
            with_params("http://h/cc?id=1", &[("seq", "2"), ("lang", "en-US")]),
            "http://h/cc?id=1&seq=2&lang=en-US"
        );
        assert_eq!(
            with_params("http://h/cc", &[("a", "x y")]),
            "http://h/cc?a=x%20y"
        );
        assert_eq!(
            with_params("http://h/cc?", &[("a", "1")]),
            "http://h/cc?a=1"
        );
    }

    #[test]
    fn client_ids_are_stable_and_distinct() {
        let a = client_id(Format::Zoom, 7, 3, 0, "Hello.");
        assert_eq!(a, client_id(Format::Zoom, 7, 3, 0, "Hello."));
        assert_ne!(a, client_id(Format::Zoom, 7, 3, 0, "Goodbye."));
        assert_ne!(a, client_id(Format::StreamText, 7, 3, 0, "Hello."));
        // A new run of the caption software never collides with an earlier one.
        assert_ne!(a, client_id(Format::Zoom, 8, 3, 0, "Hello."));
        assert!(a.starts_with("zoom-7-3-0-"), "{a}");
    }
}
