//! The v1 wire format: every JSON message a client or the server sends, and the close codes.
//!
//! This is the only module that knows the shape of the JSON on the wire; the rest of the
//! crate builds [`ServerMsg`] values and calls [`ServerMsg::to_frame`] once per event, so a
//! caption is serialised exactly once however many listeners receive it. The full protocol is
//! documented for client authors in `docs/protocol.md`.

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;

/// A pre-serialised text frame, shared by reference count between every recipient.
pub type Frame = Utf8Bytes;

/// Close code sent when the server shuts down or restarts: reconnect with `since=`.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a frame or message over the configured maximum size.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a listener that fell so far behind that the server stopped queueing for it.
/// The client should reconnect at once with `since=` its last seen seq; it misses nothing.
pub const CLOSE_BEHIND: u16 = 4001;
/// Close code for a connection that sent no frame (not even a pong) within the idle timeout.
pub const CLOSE_IDLE: u16 = 4002;

/// A message a publisher (or, for `feedback`, a listener) sends to the server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The line in progress; replaces the previous partial. Empty text clears it.
    Partial { text: String },
    /// A committed line. `id` is the client's own id, used to make retries idempotent.
    Final {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A correction of the committed line with seq `of`.
    Edit { of: u64, text: String },
    /// Booth: come on air (the channel is idle, or the on-air partner has been silent long
    /// enough).
    Take,
    /// Booth: go off air.
    Release,
    /// Booth: a standby partner asks the on-air partner to hand over.
    HandoverRequest,
    /// Booth: the on-air partner hands over to the partner who asked.
    HandoverAccept,
    /// Publisher: start (`on: true`) or stop receiving the source channel's captions.
    FollowSource { on: bool },
    /// Listener: audience feedback for the booth. No identity is kept.
    Feedback { kind: FeedbackKind },
}

/// What a listener tells the booth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Slower = 0,
    Unclear = 1,
    Lost = 2,
}

/// Why a client message was refused; sent as `{"type":"error","code":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    BadJson,
    /// The JSON has no known `type`, or a field is missing or of the wrong type.
    BadMessage,
    /// A binary frame; the protocol is text only.
    BinaryNotSupported,
    /// A final or edit with empty (or whitespace-only) text.
    EmptyText,
    /// Text longer than `limits.max_caption_chars`.
    TextTooLong,
    /// A client `id` longer than [`MAX_CLIENT_ID_CHARS`].
    IdTooLong,
    /// An edit whose `of` is not the seq of a committed line in this channel.
    UnknownSeq,
    /// The connection may not send this message (e.g. a listener sending a final).
    NotAllowed,
    /// The transcript store refused the write; nothing was stored, retry later.
    StorageUnavailable,
    /// The server is shutting down; the message was not stored.
    ShuttingDown,
    /// Too many unacknowledged finals in flight on this connection.
    TooManyInFlight,
    /// This publisher is on standby: another booth partner is on air.
    NotOnAir,
    /// A take, handover request or accept that the booth rules do not allow now.
    HandoverRefused,
    /// Too many messages of this kind from this connection (e.g. feedback).
    RateLimited,
    /// The channel has no source channel to follow.
    NoSource,
    /// An EBU-TT Live frame that is not well-formed XML.
    BadXml,
    /// Well-formed XML that is not an EBU-TT Live document (root, sequence attributes).
    BadDocument,
    /// An EBU-TT Live `sequenceNumber` older than the last one accepted in its sequence.
    SeqOutOfOrder,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::EmptyText => "empty_text",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::IdTooLong => "id_too_long",
            ErrorCode::UnknownSeq => "unknown_seq",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::TooManyInFlight => "too_many_in_flight",
            ErrorCode::NotOnAir => "not_on_air",
            ErrorCode::HandoverRefused => "handover_refused",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NoSource => "no_source",
            ErrorCode::BadXml => "bad_xml",
            ErrorCode::BadDocument => "bad_document",
            ErrorCode::SeqOutOfOrder => "seq_out_of_order",
        }
    }

    /// The HTTP status the same refusal gets on the HTTP ingest routes.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::StorageUnavailable | ErrorCode::ShuttingDown => 503,
            ErrorCode::TooManyInFlight | ErrorCode::RateLimited => 429,
            ErrorCode::NotAllowed | ErrorCode::NotOnAir => 403,
            ErrorCode::HandoverRefused => 409,
            ErrorCode::TextTooLong => 413,
            _ => 400,
        }
    }
}

/// Longest accepted client `id` on a final, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 128;

/// A refusal: a code callers branch on and a message people read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    /// The refusal of anything that arrives while the server stops.
    pub fn shutting_down() -> Self {
        Refusal::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down; nothing was stored",
        )
    }

    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// On-air state of a channel, as listeners and publishers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Listeners connected to this channel (on this node).
    pub listeners: u64,
    /// Publishers connected to this channel.
    pub publishers: u64,
    /// Whether a publisher is on air.
    pub on_air: bool,
}

/// A message the server sends. Every variant is serialised once and shared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<'a> {
    /// First message on every socket.
    Hello {
        event: &'a str,
        channel: &'a str,
        /// The channel's declared language (`auto` for a floor).
        lang: &'a str,
        label: &'a str,
        /// `listen` or `publish`.
        role: &'a str,
        /// The last seq of the channel when this connection joined.
        seq: u64,
        /// True when the client asked for `since` beyond the channel's last seq (e.g. the
        /// store was wiped): the client must drop what it shows and take what follows.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        reset: bool,
        /// Publishers only: this connection's id in `booth` messages.
        #[serde(skip_serializing_if = "Option::is_none")]
        publisher_id: Option<u64>,
        /// The channel this one is interpreted from, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<&'a str>,
    },
    /// A committed line.
    Line {
        seq: u64,
        text: &'a str,
        /// BCP-47 primary language tag of the text.
        lang: &'a str,
        /// Server receive time, Unix milliseconds.
        ts: i64,
        /// Present when the line was confidently detected as a language other than the
        /// channel's declared one; `lang` then names the detected language.
        #[serde(skip_serializing_if = "Option::is_none")]
        expected_lang: Option<&'a str>,
    },
    /// A correction of line `of`; takes its own seq.
    Edit {
        seq: u64,
        of: u64,
        text: &'a str,
        ts: i64,
    },
    /// The on-air publisher changed; takes its own seq.
    Handover {
        seq: u64,
        from: Option<&'a str>,
        to: Option<&'a str>,
        /// `request`, `timeout` or `take`.
        reason: &'a str,
        ts: i64,
    },
    /// The line in progress (replaces the previous partial; empty text clears it).
    Partial { text: &'a str },
    /// Publishers following their source: the `line`, `edit`, `partial` and `handover`
    /// messages that follow (until `follow_source` off) are the source channel's.
    Source {
        channel: &'a str,
        lang: &'a str,
        label: &'a str,
        on: bool,
    },
    /// Listener count and on-air state; coalesced, sent when it changes.
    Status(Status),
    /// Acknowledgement of a final or edit once it is durably stored.
    Ack {
        seq: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        /// True when this final's `id` had already been stored: nothing new was stored.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    /// A refused message; the connection stays open.
    Error {
        code: ErrorCode,
        message: &'a str,
        /// The refused final's client `id`, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        /// The seq a refused edit referred to.
        #[serde(skip_serializing_if = "Option::is_none")]
        of: Option<u64>,
    },
}

impl ServerMsg<'_> {
    /// Serialises the message once into a shareable frame.
    pub fn to_frame(&self) -> Frame {
        let json = serde_json::to_string(self).expect("server messages always serialise");
        Frame::from(json)
    }
}

impl Refusal {
    /// The refusal as an `error` frame.
    pub fn to_frame(&self) -> Frame {
        self.to_frame_for(None, None)
    }

    /// The refusal of a final with client `id`, or of an edit of `of`, so a publisher that
    /// pipelines messages knows which one was refused.
    pub fn to_frame_for(&self, id: Option<&str>, of: Option<u64>) -> Frame {
        ServerMsg::Error {
            code: self.code,
            message: &self.message,
            id,
            of,
        }
        .to_frame()
    }
}

/// Parses one client text frame, mapping failures to the codes clients branch on.
pub fn parse_client(text: &str) -> Result<ClientMsg, Refusal> {
    match serde_json::from_str::<ClientMsg>(text) {
        Ok(msg) => Ok(msg),
        Err(e) if e.is_syntax() || e.is_eof() => Err(Refusal::new(
            ErrorCode::BadJson,
            format!("not valid JSON: {e}"),
        )),
        Err(e) => Err(Refusal::new(
            ErrorCode::BadMessage,
            format!("not a valid message: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_message() {
        assert_eq!(
            parse_client(r#"{"type":"partial","text":"Hel"}"#).unwrap(),
            ClientMsg::Partial { text: "Hel".into() }
        );
        assert_eq!(
            parse_client(r#"{"type":"final","text":"Hello.","id":"a1"}"#).unwrap(),
            ClientMsg::Final {
                text: "Hello.".into(),
                id: Some("a1".into())
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"edit","of":3,"text":"Fixed."}"#).unwrap(),
            ClientMsg::Edit {
                of: 3,
                text: "Fixed.".into()
            }
        );
    }

    #[test]
    fn refuses_with_codes() {
        assert_eq!(parse_client("{nope").unwrap_err().code, ErrorCode::BadJson);
        assert_eq!(
            parse_client(r#"{"type":"shout","text":"x"}"#)
                .unwrap_err()
                .code,
            ErrorCode::BadMessage
        );
        assert_eq!(
            parse_client(r#"{"type":"final"}"#).unwrap_err().code,
            ErrorCode::BadMessage
        );
    }

    #[test]
    fn line_frame_keeps_text_exact() {
        let text = "He said \"你好\" <b>&amp;</b>\n";
        let frame = ServerMsg::Line {
            seq: 7,
            text,
            lang: "en",
            ts: 1,
            expected_lang: None,
        }
        .to_frame();
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["type"], "line");
        assert_eq!(v["text"], text);
        assert_eq!(v["seq"], 7);
    }
}
