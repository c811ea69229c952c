//! The organisers' admin API (docs/organisers.md#admin-api): events, channels and their
//! lifecycle here, credentials, admin tokens and the audit log in [`people`]. Every route
//! needs an admin token (`Authorization: Bearer`, the actor of the audit entry), a browser
//! page must be of an allowed origin (the guard checks it for every `/v1/admin` path), and a
//! refusal is the protocol's `error` body with its status.

mod people;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::{refusal_response, ApiError};
use super::AppState;
use crate::catalog::Origin;
use crate::hub::{Actor, EventInfo};
use crate::organiser::Step;
use crate::protocol::admin::{
    parse_body, ChannelDefBody, ChannelPatch, DeletedBody, EventBody, EventPatch, EventsBody,
    NewChannel, NewEvent,
};
use crate::protocol::{ErrorCode, Refusal};

type Q = Query<HashMap<String, String>>;

/// The admin API's routes, merged into the main router.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/events", get(list).post(create))
        .route(
            "/v1/admin/events/{e}",
            get(show).patch(patch).delete(delete),
        )
        .route("/v1/admin/events/{e}/channels", post(add_channel))
        .route(
            "/v1/admin/events/{e}/channels/{c}",
            axum::routing::delete(delete_channel).patch(patch_channel),
        )
        .route("/v1/admin/events/{e}/start", post(start))
        .route("/v1/admin/events/{e}/end", post(end))
        .route("/v1/admin/events/{e}/archive", post(archive))
        .route(
            "/v1/admin/events/{e}/transcripts",
            axum::routing::delete(delete_transcripts),
        )
        .merge(people::routes())
}

/// The admin behind the request's bearer token, or the 401 answer.
pub(super) fn actor(app: &AppState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    crate::secret::bearer(headers)
        .and_then(|t| app.hub.auth.admin(t))
        .ok_or_else(|| {
            app.hub
                .metrics
                .refuse(crate::metrics::Refused::Unauthorized);
            let mut e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "an admin token is required (Authorization: Bearer T)",
            );
            e.www_authenticate = true;
            e
        })
}

/// The admin behind the request and its JSON body, or the refusal to answer.
pub(super) fn admin_with<T: serde::de::DeserializeOwned>(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Actor, T), ApiError> {
    let who = actor(app, headers)?;
    let req = parse_body(body).map_err(|r| {
        let status = StatusCode::from_u16(r.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, r.code, r.message)
    })?;
    Ok((who, req))
}

/// A JSON answer that is never cached.
pub(super) fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

fn forced(q: &HashMap<String, String>) -> bool {
    q.get("force").is_some_and(|v| v == "1" || v == "true")
}

fn event_body<'a>(app: &AppState, ev: &'a EventInfo) -> EventBody<'a> {
    let d = &ev.def;
    let base = &app.public_url;
    EventBody {
        id: &d.id,
        title: &d.title,
        origin: match d.origin {
            Origin::File => "file",
            Origin::Stored => "stored",
        },
        access_code: d.access_code.as_deref(),
        starts_at: d.starts_at,
        ends_at: d.ends_at,
        state: ev.signal.state(),
        transcript_public: d.transcript_public,
        rev: d.rev,
        channels: d
            .channels
            .iter()
            .map(|c| ChannelDefBody {
                id: &c.id,
                lang: &c.lang,
                label: &c.label,
                source: c.source.as_deref(),
                interpreted: c.interpreted,
                takeover_after_secs: c.takeover_after_secs,
            })
            .collect(),
        attendee_url: crate::web::qr::attendee_url(base, &d.id, None),
        booth_url: format!("{base}/booth/{}", d.id),
        transcript_url: format!("{base}/e/{}/transcript", d.id),
    }
}

/// An event's answer after a change (or the refusal).
fn answer(
    app: &AppState,
    status: StatusCode,
    r: Result<std::sync::Arc<EventInfo>, Refusal>,
) -> Response {
    match r {
        Ok(ev) => json(status, &event_body(app, &ev)),
        Err(r) => refusal_response(&r),
    }
}

async fn list(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = actor(&app, &headers) {
        return r.into_response();
    }
    let events = app.hub.events();
    let body = EventsBody {
        events: events.iter().map(|e| event_body(&app, e)).collect(),
    };
    json(StatusCode::OK, &body)
}

async fn show(State(app): State<AppState>, headers: HeaderMap, Path(e): Path<String>) -> Response {
    if let Err(r) = actor(&app, &headers) {
        return r.into_response();
    }
    match app.hub.event(&e) {
        Some(ev) => json(StatusCode::OK, &event_body(&app, &ev)),
        None => refusal_response(&Refusal::new(
            ErrorCode::UnknownEvent,
            format!("no event {e:?}"),
        )),
    }
}

async fn create(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (who, req): (_, NewEvent) = match admin_with(&app, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    answer(
        &app,
        StatusCode::CREATED,
        app.organiser.create_event(who, req).await,
    )
}

async fn patch(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
    body: Bytes,
) -> Response {
    let (who, p): (_, EventPatch) = match admin_with(&app, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    answer(
        &app,
        StatusCode::OK,
        app.organiser.patch_event(who, e, p).await,
    )
}

async fn delete(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
    Query(q): Q,
) -> Response {
    let who = match actor(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    match app.organiser.delete_event(who, e, forced(&q)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => refusal_response(&r),
    }
}

async fn add_channel(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
    body: Bytes,
) -> Response {
    let (who, req): (_, NewChannel) = match admin_with(&app, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    answer(
        &app,
        StatusCode::CREATED,
        app.organiser.add_channel(who, e, req).await,
    )
}

async fn delete_channel(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((e, c)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    let who = match actor(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    answer(
        &app,
        StatusCode::OK,
        app.organiser.delete_channel(who, e, c, forced(&q)).await,
    )
}

async fn patch_channel(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((e, c)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (who, p): (_, ChannelPatch) = match admin_with(&app, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    answer(
        &app,
        StatusCode::OK,
        app.organiser.patch_channel(who, e, c, p).await,
    )
}

async fn step(app: AppState, headers: HeaderMap, e: String, step: Step) -> Response {
    let who = match actor(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    answer(&app, StatusCode::OK, app.organiser.step(who, e, step).await)
}

async fn start(State(app): State<AppState>, headers: HeaderMap, Path(e): Path<String>) -> Response {
    step(app, headers, e, Step::Start).await
}

async fn end(State(app): State<AppState>, headers: HeaderMap, Path(e): Path<String>) -> Response {
    step(app, headers, e, Step::End).await
}

async fn archive(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
) -> Response {
    step(app, headers, e, Step::Archive).await
}

async fn delete_transcripts(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
) -> Response {
    let who = match actor(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    match app.organiser.delete_transcripts(who, e).await {
        Ok(deleted) => json(StatusCode::OK, &DeletedBody { deleted }),
        Err(r) => refusal_response(&r),
    }
}
