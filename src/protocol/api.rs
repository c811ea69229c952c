//! The JSON bodies of the HTTP API (docs/protocol.md#http-api): the event list, the admin
//! dashboard's data and the JSON transcript. Refusals use the protocol's `error` message
//! ([`Refusal`](super::Refusal)).
//!
//! Every struct declares its fields in alphabetical order, the order these bodies have always
//! had on the wire (see the [module docs](super)); `null` fields are written, not skipped.

use serde::Serialize;

use super::{FeedbackCounts, MsgType};

/// `GET /v1/events`: every event with its channels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventList<'a> {
    pub events: Vec<EventSummary<'a>>,
}

/// One event of [`EventList`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary<'a> {
    pub channels: Vec<ChannelSummary<'a>>,
    /// When the schedule ends it, Unix ms (`null`: when the organiser ends it).
    pub ends_at: Option<i64>,
    pub id: &'a str,
    /// The event has an access code: listening and transcripts need it.
    pub needs_code: bool,
    /// The revision of the event's definition (0: the config file's); the `status` message
    /// carries it too, so a page knows when to read the list again.
    pub rev: u64,
    /// When the schedule starts it, Unix ms (`null`: started already or by hand).
    pub starts_at: Option<i64>,
    /// `scheduled`, `live`, `ended` (archived events are not listed).
    pub state: super::EventState,
    pub title: &'a str,
    /// The read-only transcript page is published (`/e/{event}/transcript`).
    pub transcript_public: bool,
    /// The attendee link people type or scan (`server.public_url`, else the machine's network
    /// address), the one the event's QR code encodes.
    pub url: String,
}

/// One channel of an [`EventSummary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelSummary<'a> {
    pub id: &'a str,
    /// An interpreter works on it (the page offers feedback for the booth).
    pub interpreted: bool,
    pub label: &'a str,
    pub lang: &'a str,
    pub last_seq: u64,
    /// The path of the channel's listen WebSocket.
    pub listen: String,
    pub listeners: u64,
    pub on_air: bool,
    pub publishers: u64,
    /// The channel this one is interpreted from (the relay graph).
    pub source: Option<&'a str>,
}

/// `GET /v1/admin/channels`: the dashboard's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminChannels<'a> {
    pub channels: Vec<AdminChannel<'a>>,
    /// Server time of the answer, Unix milliseconds.
    pub now: i64,
}

/// One channel as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminChannel<'a> {
    pub alerts: Vec<Alert>,
    pub event: &'a str,
    pub event_title: &'a str,
    /// Audience feedback over the last minute.
    pub feedback: FeedbackCounts,
    pub id: &'a str,
    pub label: &'a str,
    pub lang: &'a str,
    /// Lines confidently detected as another language, since start.
    pub lang_mismatches: u64,
    /// Milliseconds since the last line (`null`: no line yet).
    pub last_line_age_ms: Option<i64>,
    /// The last line's `ts` (`null`: no line yet).
    pub last_line_ts: Option<i64>,
    pub last_seq: u64,
    pub lines_per_minute: u64,
    pub listeners: u64,
    pub on_air: bool,
    /// The on-air publisher's display name.
    pub on_air_name: Option<String>,
    pub publishers: u64,
    pub source: Option<&'a str>,
}

/// A dashboard alert on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// For people.
    pub message: String,
}

/// What an [`Alert`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The source channel is live but this one has had no line for a while.
    SilentBooth,
    /// Lines arrive in another language than the channel's.
    LangMismatch,
}

/// `GET …/transcript?format=json`: the channel, its lines (corrected or as shown) with cue
/// times, and every stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript<'a> {
    /// The channel id.
    pub channel: &'a str,
    pub event: &'a str,
    pub events: Vec<TranscriptEvent<'a>>,
    pub label: &'a str,
    pub lang: &'a str,
    pub lines: Vec<TranscriptLine<'a>>,
    /// `corrected` or `as-shown`.
    pub version: &'a str,
}

/// One cue of a [`Transcript`], timed from the channel's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptLine<'a> {
    /// Whether an edit corrected the line.
    pub edited: bool,
    pub end_ms: i64,
    pub lang: &'a str,
    pub seq: u64,
    pub start_ms: i64,
    pub text: &'a str,
}

/// A stored event of a [`Transcript`]; `kind` is the variant's [`MsgType`] (written last,
/// as `"type"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TranscriptEvent<'a> {
    Line {
        expected_lang: Option<&'a str>,
        lang: &'a str,
        seq: u64,
        text: &'a str,
        ts: i64,
        /// [`MsgType::Line`].
        #[serde(rename = "type")]
        kind: MsgType,
    },
    Edit {
        of: Option<u64>,
        seq: u64,
        text: &'a str,
        ts: i64,
        /// [`MsgType::Edit`].
        #[serde(rename = "type")]
        kind: MsgType,
    },
    Handover {
        from: Option<String>,
        reason: Option<String>,
        seq: u64,
        to: Option<String>,
        ts: i64,
        /// [`MsgType::Handover`].
        #[serde(rename = "type")]
        kind: MsgType,
    },
}

#[cfg(test)]
mod tests {
    //! The typed bodies against the `serde_json::json!` values they replaced: byte for byte.
    use serde_json::json;

    use super::*;

    fn same_bytes(typed: &impl Serialize, old: serde_json::Value) {
        assert_eq!(serde_json::to_string(typed).unwrap(), old.to_string());
    }

    #[test]
    fn event_list_is_unchanged() {
        let typed = EventList {
            events: vec![EventSummary {
                channels: vec![ChannelSummary {
                    id: "en",
                    interpreted: true,
                    label: "English",
                    lang: "en",
                    last_seq: 41,
                    listen: "/v1/events/demo/channels/en/listen".into(),
                    listeners: 3,
                    on_air: true,
                    publishers: 1,
                    source: Some("floor"),
                }],
                ends_at: None,
                id: "demo",
                needs_code: false,
                rev: 0,
                starts_at: None,
                state: crate::protocol::EventState::Live,
                title: "Demo \"day\"",
                transcript_public: false,
                url: "http://192.168.1.5:8080/e/demo".into(),
            }],
        };
        let channel = json!({
            "id": "en", "interpreted": true, "lang": "en", "label": "English", "source": "floor", "listeners": 3,
            "publishers": 1, "on_air": true, "last_seq": 41,
            "listen": "/v1/events/demo/channels/en/listen",
        });
        let event = json!({"id": "demo", "title": "Demo \"day\"", "needs_code": false, "channels": [channel], "url": "http://192.168.1.5:8080/e/demo",
            "ends_at": null, "rev": 0, "starts_at": null, "state": "live", "transcript_public": false});
        same_bytes(&typed, json!({ "events": [event] }));
    }

    #[test]
    fn admin_channels_are_unchanged() {
        let none: Option<i64> = None;
        let typed = AdminChannels {
            channels: vec![AdminChannel {
                alerts: vec![Alert {
                    kind: AlertKind::SilentBooth,
                    message: "nobody on air while Floor is live".into(),
                }],
                event: "demo",
                event_title: "Demo",
                feedback: FeedbackCounts {
                    lost: 1,
                    slower: 2,
                    unclear: 0,
                },
                id: "en",
                label: "English",
                lang: "en",
                lang_mismatches: 4,
                last_line_age_ms: None,
                last_line_ts: None,
                last_seq: 0,
                lines_per_minute: 12,
                listeners: 5,
                on_air: false,
                on_air_name: None,
                publishers: 0,
                source: Some("floor"),
            }],
            now: 1_700_000_000_000,
        };
        let alerts =
            vec![json!({"kind": "silent_booth", "message": "nobody on air while Floor is live"})];
        let channel = json!({
            "event": "demo", "event_title": "Demo", "id": "en", "label": "English", "lang": "en",
            "source": "floor", "on_air": false, "on_air_name": None::<&String>,
            "feedback": FeedbackCounts { lost: 1, slower: 2, unclear: 0 }, "publishers": 0,
            "listeners": 5, "lines_per_minute": 12, "last_seq": 0, "last_line_ts": none,
            "last_line_age_ms": none, "lang_mismatches": 4, "alerts": alerts,
        });
        same_bytes(
            &typed,
            json!({ "now": 1_700_000_000_000_i64, "channels": [channel] }),
        );
        same_bytes(
            &Alert {
                kind: AlertKind::LangMismatch,
                message: "m".into(),
            },
            json!({"kind": "lang_mismatch", "message": "m"}),
        );
    }

    #[test]
    fn transcript_is_unchanged() {
        let typed = Transcript {
            channel: "en",
            event: "demo",
            events: vec![
                TranscriptEvent::Line {
                    expected_lang: None,
                    lang: "en",
                    seq: 1,
                    text: "Hello wrld.",
                    ts: 10,
                    kind: MsgType::Line,
                },
                TranscriptEvent::Edit {
                    of: Some(1),
                    seq: 2,
                    text: "Hello world.",
                    ts: 11,
                    kind: MsgType::Edit,
                },
                TranscriptEvent::Handover {
                    from: Some("Anna".into()),
                    reason: Some("request".into()),
                    seq: 3,
                    to: None,
                    ts: 12,
                    kind: MsgType::Handover,
                },
            ],
            label: "English",
            lang: "en",
            lines: vec![TranscriptLine {
                edited: true,
                end_ms: 1000,
                lang: "en",
                seq: 1,
                start_ms: 0,
                text: "Hello world.",
            }],
            version: "corrected",
        };
        let none: Option<String> = None;
        let old = json!({
            "event": "demo", "channel": "en", "lang": "en", "label": "English",
            "version": "corrected",
            "lines": [json!({"seq": 1, "start_ms": 0, "end_ms": 1000, "text": "Hello world.",
                             "lang": "en", "edited": true})],
            "events": [
                json!({"seq": 1, "type": "line", "ts": 10, "text": "Hello wrld.", "lang": "en",
                       "expected_lang": none}),
                json!({"seq": 2, "type": "edit", "ts": 11, "of": Some(1), "text": "Hello world."}),
                json!({"seq": 3, "type": "handover", "ts": 12, "from": Some("Anna"),
                       "to": none, "reason": Some("request")}),
            ],
        });
        same_bytes(&typed, old);
    }
}
