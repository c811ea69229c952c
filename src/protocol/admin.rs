//! The JSON bodies of the organisers' admin API (docs/organisers.md#admin-api): what requests
//! carry (events, channels, changes, credentials, admin tokens) and what answers hold.
//! Refusals use the protocol's `error` message ([`Refusal`](super::Refusal)).

use serde::{Deserialize, Deserializer, Serialize};

use super::{ErrorCode, EventState, Refusal};

/// Parses a request body, refusing with `bad_json` (not JSON) or `bad_field` (a missing,
/// unknown or mistyped field, named in the message).
pub fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            Refusal::new(
                ErrorCode::BadJson,
                format!("the body is not valid JSON: {e}"),
            )
        } else {
            Refusal::new(ErrorCode::BadField, format!("{e}"))
        }
    })
}

/// `Some(None)` for an explicit `null` (clear the field), `None` when absent (keep it).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /v1/admin/events`: a new event, with its channels if given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub access_code: Option<String>,
    /// Unix ms.
    #[serde(default)]
    pub starts_at: Option<i64>,
    /// Unix ms.
    #[serde(default)]
    pub ends_at: Option<i64>,
    #[serde(default)]
    pub transcript_public: bool,
    #[serde(default)]
    pub channels: Vec<NewChannel>,
}

/// `POST /v1/admin/events/{e}/channels`: a new channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub id: String,
    pub lang: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub source: Option<String>,
    /// Default: true when it has a source.
    #[serde(default)]
    pub interpreted: Option<bool>,
    #[serde(default)]
    pub takeover_after_secs: Option<u64>,
}

/// `PATCH /v1/admin/events/{e}/channels/{c}`: the fields to change (absent: unchanged;
/// `null` clears `source` and `takeover_after_secs`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub source: Option<Option<String>>,
    #[serde(default)]
    pub interpreted: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub takeover_after_secs: Option<Option<u64>>,
}

/// `PATCH /v1/admin/events/{e}`: the fields to change (absent: unchanged; `null`: cleared).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub access_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub starts_at: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub ends_at: Option<Option<i64>>,
    #[serde(default)]
    pub transcript_public: Option<bool>,
}

/// `POST …/credentials` and `POST /v1/admin/tokens`: who it is for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    pub name: String,
}

/// A channel as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelDefBody<'a> {
    pub id: &'a str,
    pub lang: &'a str,
    pub label: &'a str,
    pub source: Option<&'a str>,
    pub interpreted: bool,
    pub takeover_after_secs: Option<u64>,
}

/// An event as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventBody<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// `file` (read-only here) or `stored` (made in the dashboard).
    pub origin: &'a str,
    pub access_code: Option<&'a str>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    /// The state now (organiser's decision, then schedule).
    pub state: EventState,
    pub transcript_public: bool,
    pub rev: u64,
    pub channels: Vec<ChannelDefBody<'a>>,
    /// Attendee page.
    pub attendee_url: String,
    /// Booth console.
    pub booth_url: String,
    /// Read-only transcript page (public once `transcript_public`).
    pub transcript_url: String,
}

/// `GET /v1/admin/events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventsBody<'a> {
    pub events: Vec<EventBody<'a>>,
}

/// A credential or admin token as listed (never its token).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialBody<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// Publish credentials: their event and channel (absent for admin tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    pub created_ms: i64,
    pub created_by: &'a str,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// `GET /v1/admin/credentials`, `GET /v1/admin/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialsBody<'a> {
    pub credentials: Vec<CredentialBody<'a>>,
}

/// The answer to issuing a credential or admin token: the only time its token is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssuedBody<'a> {
    pub id: &'a str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    /// Shown once; only its SHA-256 digest is kept.
    pub token: &'a str,
    /// Publish credentials: the WebSocket URL caption software connects to (token included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_url: Option<String>,
    /// Publish credentials: the booth console, signed in (the token after `#`, never sent to
    /// a server or written to a log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booth_url: Option<String>,
    /// The booth URL as a QR code (SVG), for the booth laptop or tablet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
}

/// `DELETE /v1/admin/events/{e}/transcripts`: what was deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeletedBody {
    /// Stored lines, edits and handovers deleted.
    pub deleted: u64,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditBody<'a> {
    pub id: i64,
    pub ts: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

/// `GET /v1/admin/audit`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditListBody<'a> {
    pub entries: Vec<AuditBody<'a>>,
}

/// `GET /v1/events/{e}/transcript`: what the read-only transcript page shows (each
/// channel's lines come from its own transcript URL, in any format).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventTranscriptBody<'a> {
    pub event: &'a str,
    pub title: &'a str,
    pub state: EventState,
    /// Published: readable by anyone, with no access code.
    pub transcript_public: bool,
    pub channels: Vec<TranscriptChannelBody<'a>>,
}

/// One channel of an [`EventTranscriptBody`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptChannelBody<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub lang: &'a str,
    pub source: Option<&'a str>,
    /// `/v1/events/{e}/channels/{c}/transcript` (add `?format=txt|vtt|srt|json`).
    pub transcript: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_tell_absent_from_null() {
        let p: EventPatch = parse_body(br#"{"access_code":null,"title":"T"}"#).unwrap();
        assert_eq!(p.access_code, Some(None));
        assert_eq!(p.starts_at, None);
        assert_eq!(p.title.as_deref(), Some("T"));
        let e = parse_body::<EventPatch>(br#"{"colour":"red"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadField);
        assert!(e.message.contains("colour"), "{}", e.message);
        let e = parse_body::<NewEvent>(b"{nope").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadJson);
        let e = parse_body::<NewEvent>(b"{}").unwrap_err();
        assert!(e.message.contains("id"), "{}", e.message);
    }
}
