//! `GET /v1/events/{event}/transcript`: what the read-only transcript page of an event shows
//! (its channels and their transcript URLs), under the transcripts' access rule: anyone once
//! published, else attendees (access code) or, once archived, only the admin.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::protocol::admin::{EventTranscriptBody, TranscriptChannelBody};
use crate::protocol::{ErrorCode, Refusal};

pub(super) async fn event_transcript(
    State(app): State<AppState>,
    Path(event): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(ev) = app.hub.event(&event) else {
        let r = Refusal::new(ErrorCode::UnknownEvent, format!("no event {event:?}"));
        return super::refusal_response(&r);
    };
    let first = ev.channels.first().map(String::as_str).unwrap_or("");
    if let Err(r) = super::super::guard::transcript_reader(&app, &event, first, &headers, &q) {
        return r.into_response();
    }
    let chans = app.hub.channels_of(&ev);
    let body = EventTranscriptBody {
        event: &ev.id,
        title: &ev.title,
        state: ev.signal.state(),
        transcript_public: ev.def.transcript_public,
        channels: chans
            .iter()
            .map(|c| TranscriptChannelBody {
                id: &c.info.id,
                label: &c.info.label,
                lang: &c.info.lang,
                source: c.info.source.as_deref(),
                transcript: format!("/v1/events/{}/channels/{}/transcript", ev.id, c.info.id),
            })
            .collect(),
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}
