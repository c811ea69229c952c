//! The v1 wire format: every JSON message a client or the server sends, and the close codes.
//!
//! This is the only module that knows the shape of the JSON on the wire; the rest of the
//! crate builds [`ServerMsg`] values and calls [`ServerMsg::to_frame`] once per event, so a
//! caption is serialised exactly once however many listeners receive it. The full protocol is
//! documented for client authors in `docs/protocol.md`. Refusals ([`ErrorCode`], [`Refusal`])
//! are in `protocol/error.rs`, the JSON bodies of the HTTP API in [`api`].
//!
//! Key order: [`ServerMsg`] frames start with `"type"`. The `booth` message ([`BoothMsg`]) and
//! the HTTP bodies in [`api`] were first built with `serde_json::json!`, which sorts keys; their
//! types declare fields in that alphabetical order (`"type"` last, see [`MsgType`]) so the
//! bytes on the wire stayed the same. Clients must not depend on key order either way.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;

/// A pre-serialised text frame, shared by reference count between every recipient.
pub type Frame = Utf8Bytes;

pub mod admin;
pub mod api;
pub mod audio;
mod booth;
mod error;
mod state;

pub use booth::{parse_booth, BoothMember, BoothMsg, FeedbackCounts};
pub use error::{ErrorCode, Refusal};
pub use state::EventState;

/// Close code sent when the server shuts down or restarts: reconnect with `since=`.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a frame or message over the configured maximum size.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a listener that fell so far behind that the server stopped queueing for it.
/// The client should reconnect at once with `since=` its last seen seq; it misses nothing.
pub const CLOSE_BEHIND: u16 = 4001;
/// Close code for a connection that sent no frame (not even a pong) within the idle timeout.
pub const CLOSE_IDLE: u16 = 4002;
/// Close code for a publisher whose credential the organiser revoked: do not reconnect with
/// it (the next attempt gets HTTP 401 `credential_revoked`).
pub const CLOSE_REVOKED: u16 = 4003;
/// Close code for every socket of a channel the organiser deleted: the channel is gone.
pub const CLOSE_CHANNEL_DELETED: u16 = 4004;
/// Close code for publishers when their event ends, and for everyone when it is archived or
/// deleted: nothing more will come on this socket.
pub const CLOSE_EVENT_OVER: u16 = 4005;
/// Close code for every socket of a channel the organiser changed (its language, label or
/// source): reconnect at once with `since=`; the new `hello` describes the channel.
pub const CLOSE_CHANNEL_CHANGED: u16 = 4006;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

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
    /// Listener: start (`on: true`) or stop receiving the channel's sound (binary frames).
    Audio { on: bool },
}

/// What a listener tells the booth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Slower = 0,
    Unclear = 1,
    Lost = 2,
}

/// Longest accepted client `id` on a final, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 128;
/// Longest publisher display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// On-air state of a channel, as listeners and publishers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Listeners connected to this channel (on this node).
    pub listeners: u64,
    /// Publishers connected to this channel.
    pub publishers: u64,
    /// Whether a publisher is on air.
    pub on_air: bool,
    /// Cluster mode: this server has lost contact with the other servers, so the feed is
    /// interrupted here (nothing new arrives, nobody is on air through it) until it is back.
    /// Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The event's state, written only when it is not `live` (an attendee page says "not
    /// started yet" or "ended").
    #[serde(default, skip_serializing_if = "EventState::is_live")]
    pub state: EventState,
    /// The revision of the event's definition (events made in the dashboard; 0 and left out
    /// for the config file's): when it changes, the channel list or the event changed and a
    /// page reads `GET /v1/events` again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rev: u64,
    /// Whether the channel has a voice now: sound reached it within the last second or two
    /// (docs/audio.md). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audio: bool,
}

/// A message the server sends. Every variant is serialised once and shared.
///
/// Text fields are `Cow`s: the server builds them borrowed (no copy); clients and tests read
/// them owned (`ServerMsg<'static>` via [`parse_server`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<'a> {
    /// First message on every socket.
    Hello {
        event: Cow<'a, str>,
        channel: Cow<'a, str>,
        /// The channel's declared language (`auto` for a floor).
        lang: Cow<'a, str>,
        label: Cow<'a, str>,
        /// `listen` or `publish`.
        role: Cow<'a, str>,
        /// The last seq of the channel when this connection joined.
        seq: u64,
        /// True when the client asked for `since` beyond the channel's last seq (e.g. the
        /// store was wiped): the client must drop what it shows and take what follows.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reset: bool,
        /// Publishers only: this connection's id in `booth` messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        publisher_id: Option<u64>,
        /// The channel this one is interpreted from, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<Cow<'a, str>>,
    },
    /// A committed line.
    Line {
        seq: u64,
        text: Cow<'a, str>,
        /// BCP-47 primary language tag of the text.
        lang: Cow<'a, str>,
        /// Server receive time, Unix milliseconds.
        ts: i64,
        /// Present when the line was confidently detected as a language other than the
        /// channel's declared one; `lang` then names the detected language.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_lang: Option<Cow<'a, str>>,
    },
    /// A correction of line `of`; takes its own seq.
    Edit {
        seq: u64,
        of: u64,
        text: Cow<'a, str>,
        ts: i64,
    },
    /// The on-air publisher changed; takes its own seq.
    Handover {
        seq: u64,
        from: Option<Cow<'a, str>>,
        to: Option<Cow<'a, str>>,
        /// `request`, `timeout` or `take`.
        reason: Cow<'a, str>,
        ts: i64,
    },
    /// The line in progress (replaces the previous partial; empty text clears it).
    Partial { text: Cow<'a, str> },
    /// Publishers following their source: the `line`, `edit`, `partial` and `handover`
    /// messages that follow (until `follow_source` off) are the source channel's.
    Source {
        channel: Cow<'a, str>,
        lang: Cow<'a, str>,
        label: Cow<'a, str>,
        on: bool,
    },
    /// Listener count and on-air state; coalesced, sent when it changes.
    Status(Status),
    /// Acknowledgement of a final or edit once it is durably stored.
    Ack {
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Cow<'a, str>>,
        /// True when this final's `id` had already been stored: nothing new was stored.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    /// A refused message; the connection stays open.
    Error {
        code: ErrorCode,
        message: Cow<'a, str>,
        /// The refused final's client `id`, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Cow<'a, str>>,
        /// The seq a refused edit referred to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        of: Option<u64>,
    },
    /// HTTP publishing: a partial or a control message was taken (nothing stored, no seq).
    Accepted,
}

impl ServerMsg<'_> {
    /// Serialises the message once into a shareable frame.
    pub fn to_frame(&self) -> Frame {
        let json = serde_json::to_string(self).expect("server messages always serialise");
        Frame::from(json)
    }
}

/// The `"type"` of the messages whose keys are in alphabetical order ([`BoothMsg`], the
/// transcript's events in [`api`]): written last, after the other fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MsgType {
    Booth,
    Line,
    Edit,
    Handover,
}

impl ClientMsg {
    /// The message as a publisher sends it (for the clients: `push`, `load`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a client message serialises")
    }
}

/// The partial frame that clears the line in progress.
pub const EMPTY_PARTIAL: &str = r#"{"type":"partial","text":""}"#;

/// Reads one server text frame (for clients and tests): a [`ServerMsg`], or `None` for a
/// frame that is not one (the publishers' `booth` message: [`parse_booth`]).
pub fn parse_server(text: &str) -> Option<ServerMsg<'static>> {
    serde_json::from_str(text).ok()
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
    fn empty_partial_is_the_partial_message_with_no_text() {
        assert_eq!(
            ServerMsg::Partial { text: "".into() }.to_frame().as_str(),
            EMPTY_PARTIAL
        );
    }

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
    fn booth_message_is_unchanged() {
        // The bytes of the `serde_json::json!` value it replaced (keys sorted).
        let anna = BoothMember {
            id: 1,
            name: "Anna".into(),
        };
        let ben = BoothMember {
            id: 2,
            name: "Ben".into(),
        };
        let feedback = FeedbackCounts {
            lost: 1,
            slower: 2,
            unclear: 0,
        };
        let msg = BoothMsg {
            feedback,
            language_alert: Some("fr".into()),
            listeners: 7,
            on_air: Some(anna.clone()),
            publishers: vec![anna.clone(), ben.clone()],
            request: Some(ben.clone()),
            kind: MsgType::Booth,
        };
        let old = serde_json::json!({
            "type": "booth",
            "on_air": anna,
            "publishers": [anna, ben],
            "request": ben,
            "listeners": 7,
            "feedback": feedback,
            "language_alert": "fr",
        });
        assert_eq!(&*msg.to_frame(), old.to_string());
        let idle = BoothMsg {
            feedback: FeedbackCounts::default(),
            language_alert: None,
            listeners: 0,
            on_air: None,
            publishers: vec![],
            request: None,
            kind: MsgType::Booth,
        };
        assert_eq!(
            &*idle.to_frame(),
            r#"{"feedback":{"lost":0,"slower":0,"unclear":0},"language_alert":null,"listeners":0,"on_air":null,"publishers":[],"request":null,"type":"booth"}"#
        );
    }

    #[test]
    fn line_frame_keeps_text_exact() {
        let text = "He said \"你好\" <b>&amp;</b>\n";
        let frame = ServerMsg::Line {
            seq: 7,
            text: text.into(),
            lang: "en".into(),
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
