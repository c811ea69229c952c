//! Who may reach a channel, answered before any upgrade: the event and channel exist (404),
//! the event's state allows it (409 before its start or after its end, 410 once archived),
//! and the publish token is the channel's (401), naming who publishes: a person's
//! credential gives their name, a config file token leaves it to `?name=`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};

use super::{ApiError, AppState};
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::hub::{Denied, Publisher};
use crate::metrics::Refused;
use crate::protocol::{ErrorCode, EventState};

/// Finds the channel or answers 404.
pub(super) fn find(app: &AppState, event: &str, channel: &str) -> Result<Arc<Channel>, ApiError> {
    if app.hub.event(event).is_none() {
        app.hub.metrics.refuse(Refused::NotFound);
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownEvent,
            format!("no event {event:?}"),
        ));
    }
    app.hub.channel(event, channel).ok_or_else(|| {
        app.hub.metrics.refuse(Refused::NotFound);
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownChannel,
            format!("no channel {channel:?} in event {event:?}"),
        )
    })
}

/// The publish token from `Authorization: Bearer` or `?token=`.
pub(super) fn token<'a>(headers: &'a HeaderMap, q: &'a HashMap<String, String>) -> Option<&'a str> {
    crate::secret::bearer(headers).or_else(|| q.get("token").map(String::as_str))
}

/// Answers 401 unless the request carries a publish token for the channel; who it names.
/// A credential's use is noted (and written to the store at most once a minute).
pub(super) fn authorize(
    app: &AppState,
    ch: &Channel,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<Publisher, ApiError> {
    let found = token(headers, q);
    let result = found.map(|t| app.hub.auth.publisher(&ch.info.event, &ch.info.id, t));
    let (code, message) = match result {
        Some(Ok(publisher)) => {
            if let Publisher::Person(c) = &publisher {
                let now = now_ms();
                if c.used(now) {
                    let (store, id) = (app.hub.store.clone(), c.id.clone());
                    tokio::spawn(async move {
                        let touch = move |conn: &mut rusqlite::Connection| {
                            crate::store::catalog::touch_credential(conn, &id, now)
                        };
                        if let Err(e) = store.write(touch).await {
                            tracing::warn!(error = %e, "cannot note a credential's last use");
                        }
                    });
                }
            }
            return Ok(publisher);
        }
        Some(Err(Denied::Revoked)) => (
            ErrorCode::CredentialRevoked,
            "this publish credential was revoked by the organiser; ask them for a new one",
        ),
        Some(Err(Denied::Wrong)) => (
            ErrorCode::Unauthorized,
            "wrong publish token for this channel",
        ),
        None => (
            ErrorCode::Unauthorized,
            "a publish token is required (Authorization: Bearer T or ?token=T)",
        ),
    };
    app.hub.metrics.refuse(Refused::Unauthorized);
    let mut e = ApiError::new(StatusCode::UNAUTHORIZED, code, message);
    e.www_authenticate = true;
    Err(e)
}

/// Answers 409 or 410 when the channel's event takes no publisher now: not started yet,
/// ended, or archived (the message says which, and when it starts).
pub(super) fn publishing_open(app: &AppState, ch: &Channel) -> Result<(), ApiError> {
    let state = ch.life.state();
    let Some(mut r) = state.refusal() else {
        return Ok(());
    };
    if state == EventState::Scheduled {
        if let Some(at) = app.hub.event(&ch.info.event).and_then(|e| e.def.starts_at) {
            r.message = format!(
                "{} (it starts in {} min)",
                r.message,
                ((at - now_ms()).max(0) + 59_999) / 60_000
            );
        }
    }
    let status = StatusCode::from_u16(r.code.http_status()).unwrap_or(StatusCode::CONFLICT);
    Err(ApiError::new(status, r.code, r.message))
}

/// Answers 410 when the channel's event is archived (nothing to listen to any more).
pub(super) fn listening_open(ch: &Channel) -> Result<(), ApiError> {
    if ch.life.state() == EventState::Archived {
        let r = EventState::Archived.refusal().expect("archived refuses");
        return Err(ApiError::new(StatusCode::GONE, r.code, r.message));
    }
    Ok(())
}
