//! Refusals: [`ErrorCode`], the codes clients branch on, and [`Refusal`], a code with a message
//! for people. Sent as the protocol's `error` message ([`ServerMsg::Error`]) on sockets and as
//! the JSON body of every refused HTTP request (docs/protocol.md#errors).

use serde::{Deserialize, Serialize};

use super::{Frame, ServerMsg};

/// Why a message or a request was refused; sent as `{"type":"error","code":…,"message":…}`
/// on sockets and as the body of HTTP refusals (docs/protocol.md#errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A client `id` longer than [`MAX_CLIENT_ID_CHARS`](super::MAX_CLIENT_ID_CHARS).
    IdTooLong,
    /// An edit whose `of` is not the seq of a committed line in this channel.
    UnknownSeq,
    /// The connection may not send this message (e.g. a listener sending a final).
    NotAllowed,
    /// The transcript store refused the write; nothing was stored, retry later.
    StorageUnavailable,
    /// The server is shutting down; the message was not stored.
    ShuttingDown,
    /// Cluster mode: this node has lost contact with the cluster (NATS), so it cannot order
    /// the message among the other nodes' ones; nothing was stored or changed, send it again.
    ClusterUnavailable,
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
    /// A binary frame that is not one well-formed Opus packet (docs/protocol.md#sound).
    BadAudio,
    /// Text on a sound feed socket, which takes Opus packets only.
    AudioOnly,
    /// An EBU-TT Live frame that is not well-formed XML.
    BadXml,
    /// Well-formed XML that is not an EBU-TT Live document (root, sequence attributes).
    BadDocument,
    /// An EBU-TT Live `sequenceNumber` older than the last one accepted in its sequence (the
    /// HTTP caption formats accept every `seq`: see `formats::seq`).
    SeqOutOfOrder,

    // Refusals of an HTTP request (or a WebSocket handshake) before any message.
    /// Missing or wrong publish token or admin token.
    Unauthorized,
    /// A protected event without its access code.
    AccessCodeRequired,
    /// A protected event with a wrong access code.
    WrongAccessCode,
    /// A browser page of another origin publishing or calling the admin API.
    OriginNotAllowed,
    /// The node is at `limits.max_connections`.
    ServerFull,
    /// Too many open connections from one address.
    TooManyConnections,
    /// Too many new connections per second from one address.
    ConnectingTooFast,
    /// An HTTP body over `limits.max_body_bytes`.
    BodyTooLarge,
    /// An HTTP request slower than `limits.request_timeout_secs`.
    RequestTimeout,
    /// No such event.
    UnknownEvent,
    /// No such channel.
    UnknownChannel,
    /// `since` is not a non-negative integer.
    BadSince,
    /// A transcript `format` other than txt, vtt, srt, json.
    BadFormat,
    /// A transcript `version` other than corrected, as-shown.
    BadVersion,

    // Refusals of a caption format post (Zoom, YouTube, StreamText; docs/integrations.md).
    /// A post without `seq`.
    MissingSeq,
    /// A `seq` that is not a non-negative integer.
    BadSeq,
    /// A `lang` that is not a language code.
    BadLang,
    /// A body that is not UTF-8 text.
    NotUtf8,
    /// A YouTube body line that is not a timestamp where one is expected.
    BadTimestamp,
    /// YouTube caption text before any timestamp line.
    TextBeforeTimestamp,

    // Organisers (the admin API, docs/organisers.md) and the event lifecycle.
    /// An event, channel or credential id that is not 1-64 of `a-z 0-9 - _`.
    BadId,
    /// A field of an admin request that is missing, too long or not allowed (the message
    /// names it).
    BadField,
    /// An event or channel id that already exists.
    DuplicateId,
    /// A channel `source` that names no channel of the event.
    UnknownSource,
    /// Channel sources that form a cycle (a channel interpreted, through others, from itself).
    SourceCycle,
    /// A change to an event declared in the config file (read-only at run time).
    ReadOnly,
    /// Deleting a channel that people are connected to (without `force`).
    ChannelBusy,
    /// A lifecycle change the event's state does not allow (e.g. archiving a live event).
    BadState,
    /// No such credential or admin token.
    UnknownCredential,
    /// A credential name already given to someone else on this channel.
    NameTaken,
    /// A publish credential the organiser revoked.
    CredentialRevoked,
    /// The event has not started yet: nothing is published before its start.
    EventNotStarted,
    /// The event has ended: it takes no new lines (its transcript stays readable).
    EventEnded,
    /// The event is archived: only its transcript remains, if the organiser published it.
    EventArchived,
    /// The organiser changed or deleted the channel while the message was on its way: nothing
    /// was stored; send it again on the channel as it is now.
    ChannelChanged,
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
            ErrorCode::ClusterUnavailable => "cluster_unavailable",
            ErrorCode::TooManyInFlight => "too_many_in_flight",
            ErrorCode::NotOnAir => "not_on_air",
            ErrorCode::HandoverRefused => "handover_refused",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NoSource => "no_source",
            ErrorCode::BadAudio => "bad_audio",
            ErrorCode::AudioOnly => "audio_only",
            ErrorCode::BadXml => "bad_xml",
            ErrorCode::BadDocument => "bad_document",
            ErrorCode::SeqOutOfOrder => "seq_out_of_order",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::AccessCodeRequired => "access_code_required",
            ErrorCode::WrongAccessCode => "wrong_access_code",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::ConnectingTooFast => "connecting_too_fast",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::UnknownChannel => "unknown_channel",
            ErrorCode::BadSince => "bad_since",
            ErrorCode::BadFormat => "bad_format",
            ErrorCode::BadVersion => "bad_version",
            ErrorCode::MissingSeq => "missing_seq",
            ErrorCode::BadSeq => "bad_seq",
            ErrorCode::BadLang => "bad_lang",
            ErrorCode::NotUtf8 => "not_utf8",
            ErrorCode::BadTimestamp => "bad_timestamp",
            ErrorCode::TextBeforeTimestamp => "text_before_timestamp",
            ErrorCode::BadId => "bad_id",
            ErrorCode::BadField => "bad_field",
            ErrorCode::DuplicateId => "duplicate_id",
            ErrorCode::UnknownSource => "unknown_source",
            ErrorCode::SourceCycle => "source_cycle",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::ChannelBusy => "channel_busy",
            ErrorCode::BadState => "bad_state",
            ErrorCode::UnknownCredential => "unknown_credential",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::CredentialRevoked => "credential_revoked",
            ErrorCode::EventNotStarted => "event_not_started",
            ErrorCode::EventEnded => "event_ended",
            ErrorCode::EventArchived => "event_archived",
            ErrorCode::ChannelChanged => "channel_changed",
        }
    }

    /// The HTTP status the same refusal gets on the HTTP routes (a route may answer
    /// otherwise where a service it imitates does, e.g. Zoom's 403).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::StorageUnavailable
            | ErrorCode::ShuttingDown
            | ErrorCode::ClusterUnavailable
            | ErrorCode::ServerFull => 503,
            ErrorCode::TooManyInFlight
            | ErrorCode::RateLimited
            | ErrorCode::TooManyConnections
            | ErrorCode::ConnectingTooFast => 429,
            ErrorCode::NotAllowed
            | ErrorCode::NotOnAir
            | ErrorCode::WrongAccessCode
            | ErrorCode::OriginNotAllowed
            | ErrorCode::ReadOnly => 403,
            ErrorCode::Unauthorized
            | ErrorCode::AccessCodeRequired
            | ErrorCode::CredentialRevoked => 401,
            ErrorCode::UnknownEvent | ErrorCode::UnknownChannel | ErrorCode::UnknownCredential => {
                404
            }
            ErrorCode::HandoverRefused
            | ErrorCode::DuplicateId
            | ErrorCode::ChannelBusy
            | ErrorCode::BadState
            | ErrorCode::NameTaken
            | ErrorCode::EventNotStarted
            | ErrorCode::EventEnded
            | ErrorCode::ChannelChanged => 409,
            ErrorCode::EventArchived => 410,
            ErrorCode::UnknownSource | ErrorCode::SourceCycle => 422,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::TextTooLong | ErrorCode::BodyTooLarge => 413,
            _ => 400,
        }
    }
}

/// A refusal: a code callers branch on and a message people read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    /// Cluster mode: the refusal of anything a node cut off from the cluster cannot order.
    pub fn cluster_unavailable() -> Self {
        Refusal::new(
            ErrorCode::ClusterUnavailable,
            "this server has lost contact with the other servers of the cluster, so nothing was stored or changed; it is reconnecting: send again in a moment",
        )
    }

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

    /// The refusal as an `error` frame.
    pub fn to_frame(&self) -> Frame {
        self.to_frame_for(None, None)
    }

    /// The refusal of a final with client `id`, or of an edit of `of`, so a publisher that
    /// pipelines messages knows which one was refused.
    pub fn to_frame_for(&self, id: Option<&str>, of: Option<u64>) -> Frame {
        ServerMsg::Error {
            code: self.code,
            message: self.message.as_str().into(),
            id: id.map(Into::into),
            of,
        }
        .to_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialise_as_their_names() {
        use ErrorCode as E;
        let all = [
            E::BadJson,
            E::BadMessage,
            E::BinaryNotSupported,
            E::EmptyText,
            E::TextTooLong,
            E::IdTooLong,
            E::UnknownSeq,
            E::NotAllowed,
            E::StorageUnavailable,
            E::ShuttingDown,
            E::ClusterUnavailable,
            E::TooManyInFlight,
            E::NotOnAir,
            E::HandoverRefused,
            E::RateLimited,
            E::NoSource,
            E::BadAudio,
            E::AudioOnly,
            E::BadXml,
            E::BadDocument,
            E::SeqOutOfOrder,
            E::Unauthorized,
            E::AccessCodeRequired,
            E::WrongAccessCode,
            E::OriginNotAllowed,
            E::ServerFull,
            E::TooManyConnections,
            E::ConnectingTooFast,
            E::BodyTooLarge,
            E::RequestTimeout,
            E::UnknownEvent,
            E::UnknownChannel,
            E::BadSince,
            E::BadFormat,
            E::BadVersion,
            E::MissingSeq,
            E::BadSeq,
            E::BadLang,
            E::NotUtf8,
            E::BadTimestamp,
            E::TextBeforeTimestamp,
            E::BadId,
            E::BadField,
            E::DuplicateId,
            E::UnknownSource,
            E::SourceCycle,
            E::ReadOnly,
            E::ChannelBusy,
            E::BadState,
            E::UnknownCredential,
            E::NameTaken,
            E::CredentialRevoked,
            E::EventNotStarted,
            E::EventEnded,
            E::EventArchived,
            E::ChannelChanged,
        ];
        for code in all {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                code.as_str(),
                "{code:?}"
            );
        }
        let frame = Refusal::new(E::UnknownEvent, "no event \"x\"").to_frame();
        assert_eq!(
            &*frame,
            r#"{"type":"error","code":"unknown_event","message":"no event \"x\""}"#
        );
        assert_eq!(&*ServerMsg::Accepted.to_frame(), r#"{"type":"accepted"}"#);
    }
}
