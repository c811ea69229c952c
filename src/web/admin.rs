//! The organiser dashboard's data: `GET /v1/admin/channels` with the admin token, every channel
//! with its on-air state, counts, line rate, last-line age and alerts.
//!
//! Everything is read from counters the channels already keep; a poll costs a few atomic loads
//! per channel and touches no listener's path.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::protocol::api::{AdminChannel, AdminChannels, Alert, AlertKind};
use crate::protocol::{ErrorCode, Refusal};

/// A source with a line this recent counts as live.
pub const SOURCE_LIVE_MS: i64 = 30_000;
/// A channel with no line for this long while its source is live is a silent booth.
pub const SILENT_AFTER_MS: i64 = 30_000;
/// A language mismatch this recent raises an alert.
pub const MISMATCH_RECENT_MS: i64 = 120_000;

use crate::secret::bearer;

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::WWW_AUTHENTICATE, "Bearer realm=\"babelcast admin\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Refusal::new(
            ErrorCode::Unauthorized,
            "the admin token is required (Authorization: Bearer T)",
        )
        .to_frame()
        .to_string(),
    )
        .into_response()
}

/// Milliseconds since `ts` (None when there never was a line).
fn age(now: i64, ts: i64) -> Option<i64> {
    (ts > 0).then(|| (now - ts).max(0))
}

/// `GET /v1/admin/channels`.
pub async fn channels(State(app): State<WebState>, headers: HeaderMap) -> Response {
    if !bearer(&headers).is_some_and(|t| app.hub.is_admin(t)) {
        return unauthorized();
    }
    let now = now_ms();
    let hub = &app.hub;
    let all = hub.events();
    let events: Vec<_> = all.iter().map(|ev| (ev, hub.channels_of(ev))).collect();
    let mut channels = Vec::new();
    for (ev, chans) in &events {
        for c in chans {
            let source = c
                .info
                .source
                .as_deref()
                .and_then(|s| chans.iter().find(|x| x.info.id == s));
            channels.push(admin_channel(
                &ev.id,
                &ev.title,
                c,
                source.map(|s| &**s),
                now,
            ));
        }
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(AdminChannels { channels, now }),
    )
        .into_response()
}

fn admin_channel<'a>(
    event: &'a str,
    title: &'a str,
    c: &'a Channel,
    source: Option<&Channel>,
    now: i64,
) -> AdminChannel<'a> {
    let st = c.status();
    let last = c.stats.last_line_ts.load(Ordering::Relaxed);
    let last_age = age(now, last);
    let mut alerts = Vec::new();
    // A channel expects an interpreter while its source speaks another language: the English
    // booth is rightly silent while the floor speaks English.
    let expects_interpreter = |src: &Channel| src.last_lang().is_none_or(|l| l != c.info.lang);
    if let Some(src) = source.filter(|s| expects_interpreter(s)) {
        let src_age = age(now, src.stats.last_line_ts.load(Ordering::Relaxed));
        let source_live = src_age.is_some_and(|a| a <= SOURCE_LIVE_MS);
        let silent = last_age.is_none_or(|a| a > SILENT_AFTER_MS);
        if source_live && silent {
            let message = if st.on_air {
                format!("on air but silent while {} is live", src.info.label)
            } else {
                format!("nobody on air while {} is live", src.info.label)
            };
            alerts.push(Alert {
                kind: AlertKind::SilentBooth,
                message,
            });
        }
    }
    let booth = c.booth.view();
    let mismatch_age = age(now, c.stats.last_mismatch_ts.load(Ordering::Relaxed));
    if let Some(lang) = &booth.language_alert {
        alerts.push(Alert {
            kind: AlertKind::LangMismatch,
            message: format!("lines keep arriving in {lang}, not {}", c.info.lang),
        });
    } else if mismatch_age.is_some_and(|a| a <= MISMATCH_RECENT_MS) {
        alerts.push(Alert {
            kind: AlertKind::LangMismatch,
            message: format!("a recent line was not in {}", c.info.lang),
        });
    }
    AdminChannel {
        alerts,
        event,
        event_title: title,
        feedback: booth.feedback,
        id: &c.info.id,
        label: &c.info.label,
        lang: &c.info.lang,
        lang_mismatches: c.stats.lang_mismatches.load(Ordering::Relaxed),
        last_line_age_ms: last_age,
        last_line_ts: (last > 0).then_some(last),
        last_seq: c.last_seq(),
        lines_per_minute: c.stats.line_rate.per_minute(now),
        listeners: st.listeners,
        on_air: st.on_air,
        on_air_name: booth.on_air.map(|(_, name)| name),
        publishers: st.publishers,
        source: c.info.source.as_deref(),
    }
}
