//! HTTP routes: the v1 API, WebSocket endpoints, transcripts, health, metrics and pages.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tracing::Instrument;

pub use super::error::{api_error, refusal_response, refusal_response_for, ApiError};
use super::upgrade;
use super::AppState;
use crate::protocol::api::{ChannelSummary, EventList, EventSummary};
use crate::protocol::{ErrorCode, EventState};
use crate::session::{self, LISTENER_READ_BUFFER, PUBLISHER_READ_BUFFER};
use crate::web::WebState;

mod access;
mod audio;
mod captions;
mod channel_transcript;
mod event_transcript;
mod formats;

use access::{authorize, find, token};
use captions::captions;
use channel_transcript::transcript_route;

type Query_ = Query<HashMap<String, String>>;

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/events", get(events))
        .route("/v1/events/{event}/channels/{channel}/listen", get(listen))
        .route(
            "/v1/events/{event}/channels/{channel}/publish",
            get(publish),
        )
        .route(
            "/v1/events/{event}/channels/{channel}/ebu-tt/publish",
            get(publish_ebutt),
        )
        // The EBU-TT Live toolkit's own shape: its WebSocket client takes the whole URL path
        // as `{sequenceIdentifier}/publish`, so event and channel go in the query.
        .route("/{sequence}/publish", get(publish_ebutt_toolkit))
        .route(
            "/v1/events/{event}/channels/{channel}/captions",
            post(captions),
        )
        .route(
            "/v1/events/{event}/channels/{channel}/transcript",
            get(transcript_route),
        )
        .merge(formats::routes())
        .merge(super::admin_api::routes())
        .route(
            "/v1/events/{event}/transcript",
            get(event_transcript::event_transcript),
        )
        .merge(audio::routes())
        .merge(crate::web::routes().with_state(WebState {
            hub: state.hub.clone(),
            web_dir: state.options.web_dir.as_deref().map(Into::into),
            public_url: state.public_url.clone(),
        }))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.render_metrics(),
    )
        .into_response()
}

async fn events(State(app): State<AppState>) -> Response {
    let hub = &app.hub;
    // Archived events are gone from the list (their published transcript stays readable).
    let events: Vec<_> = hub
        .events()
        .iter()
        .filter(|e| e.signal.state() != EventState::Archived)
        .map(|e| (e.clone(), hub.channels_of(e)))
        .collect();
    let events = events
        .iter()
        .map(|(e, chans)| EventSummary {
            channels: chans
                .iter()
                .map(|c| {
                    let st = c.status();
                    ChannelSummary {
                        id: &c.info.id,
                        interpreted: e.def.channel(&c.info.id).is_some_and(|d| d.interpreted),
                        label: &c.info.label,
                        lang: &c.info.lang,
                        last_seq: c.last_seq(),
                        listen: format!("/v1/events/{}/channels/{}/listen", e.id, c.info.id),
                        listeners: st.listeners,
                        on_air: st.on_air,
                        publishers: st.publishers,
                        source: c.info.source.as_deref(),
                    }
                })
                .collect(),
            ends_at: e.def.ends_at,
            id: &e.id,
            needs_code: e.def.access_code.is_some(),
            rev: e.def.rev,
            starts_at: e.def.starts_at,
            state: e.signal.state(),
            title: &e.title,
            transcript_public: e.def.transcript_public,
            url: crate::web::qr::attendee_url(&app.public_url, &e.id, None),
        })
        .collect();
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(EventList { events }),
    )
        .into_response()
}

async fn listen(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    req: Request,
) -> Response {
    let ch = match find(&app, &event, &channel).and_then(|ch| {
        access::listening_open(&ch)?;
        Ok(ch)
    }) {
        Ok(ch) => ch,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = super::guard::attendee(&app, &event, &channel, req.headers(), &q) {
        return r.into_response();
    }
    let since = match q.get("since").map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadSince,
                "since must be a non-negative integer seq",
            )
        }
    };
    // A monitor (the booth console watching its own channel) is not counted as a listener;
    // only the channel's publishers and the admin may ask for that.
    let monitor = q.get("monitor").is_some_and(|v| v == "1" || v == "true");
    let audio = q.get("audio").is_some_and(|v| v == "1" || v == "true");
    if monitor
        && !token(req.headers(), &q)
            .is_some_and(|t| app.hub.is_admin(t) || app.hub.may_publish(&event, &channel, t))
    {
        return api_error(
            StatusCode::FORBIDDEN,
            ErrorCode::NotAllowed,
            "monitor=1 is for the channel's publishers and the admin: add their token",
        );
    }
    let config = session::ws_config(&app.hub.limits, LISTENER_READ_BUFFER);
    let listen = session::listener::Listen {
        hub: app.hub.clone(),
        ch,
        since,
        counted: !monitor,
        audio,
        shutdown: app.shutdown.clone(),
        tracker: app.tracker.clone(),
        // A parked listener has no task: it holds its connection's slot itself.
        permit: req
            .extensions()
            .get::<super::ConnInfo>()
            .map(|i| i.permit.clone()),
    };
    let write_timeout = app.hub.limits.write_timeout();
    upgrade::accept(
        req,
        config,
        write_timeout,
        &app.tracker,
        move |ws| async move {
            listen.hub.metrics.opened();
            // Sockets from our own accept loop (plain or TLS) can be written by the direct fan-out.
            let direct = ws.get_ref().get_ref().direct().cloned();
            session::listener::run(ws, direct, listen).await;
        },
    )
}

/// Which session a publish socket runs.
#[derive(Debug, Clone, Copy)]
enum Publishing {
    /// The JSON protocol (docs/protocol.md).
    Json,
    /// EBU-TT Live documents (docs/integrations.md).
    EbuTt,
    /// The same on the toolkit-shaped URL: nothing is sent back (EBU Tech 3370 carriage).
    EbuTtCarriage,
}

async fn publish(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    req: Request,
) -> Response {
    publish_socket(
        &app,
        &event,
        &channel,
        &q,
        req,
        Publishing::Json,
        "publisher",
    )
}

/// `GET …/ebu-tt/publish`: a publish socket taking EBU-TT Live documents.
async fn publish_ebutt(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    req: Request,
) -> Response {
    publish_socket(&app, &event, &channel, &q, req, Publishing::EbuTt, "ebu-tt")
}

/// `GET /{sequence}/publish?event=E&channel=C`: the same, in the URL shape of the EBU-TT Live
/// toolkit. The sequence segment names the publisher unless `name` does; it is not checked
/// against the documents.
async fn publish_ebutt_toolkit(
    State(app): State<AppState>,
    Path(sequence): Path<String>,
    Query(mut q): Query_,
    req: Request,
) -> Response {
    let (Some(event), Some(channel)) = (q.get("event").cloned(), q.get("channel").cloned()) else {
        return api_error(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownChannel,
            "EBU-TT Live publishing at /{sequenceIdentifier}/publish needs ?event=E&channel=C",
        );
    };
    if !q.contains_key("name") && crate::booth::check_name(&sequence).is_ok() {
        q.insert("name".to_string(), sequence);
    }
    let kind = Publishing::EbuTtCarriage;
    publish_socket(&app, &event, &channel, &q, req, kind, "ebu-tt")
}

/// A publisher socket: 404 for an unknown channel, 401 without its publish token and 409/410
/// outside the event's schedule before the upgrade, then the session of `kind`, named by the
/// person's credential, or for a config token `?name=` (or `{default_name}-xxxxxx`).
fn publish_socket(
    app: &AppState,
    event: &str,
    channel: &str,
    q: &HashMap<String, String>,
    req: Request,
    kind: Publishing,
    default_name: &str,
) -> Response {
    let ch = match find(app, event, channel) {
        Ok(ch) => ch,
        Err(r) => return r.into_response(),
    };
    let publisher = match authorize(app, &ch, req.headers(), q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = access::publishing_open(app, &ch) {
        return r.into_response();
    }
    let credential = publisher.credential();
    let (name, revoked) = match publisher {
        crate::hub::Publisher::Person(c) => (c.name.clone(), Some(c.revoked.clone())),
        crate::hub::Publisher::File(_) => match q.get("name") {
            Some(n) => match crate::booth::check_name(n) {
                // A person's name is theirs: a shared booth token cannot take it.
                Ok(()) if app.hub.auth.name_ever_given(event, channel, n.trim()) => {
                    return api_error(
                        StatusCode::CONFLICT,
                        ErrorCode::NameTaken,
                        "that name belongs to a person with their own publish credential",
                    )
                }
                Ok(()) => (n.trim().to_string(), None),
                Err(r) => return refusal_response(&r),
            },
            None => (
                format!("{default_name}-{}", &crate::secret::random_token()[..6]),
                None,
            ),
        },
    };
    let config = session::ws_config(&app.hub.limits, PUBLISHER_READ_BUFFER);
    let (hub, ingest, shutdown) = (app.hub.clone(), app.ingest.clone(), app.shutdown.clone());
    let span = tracing::info_span!("publisher", event = %ch.info.event, channel = %ch.info.id, name = %name, ?kind);
    let write_timeout = app.hub.limits.write_timeout();
    upgrade::accept(req, config, write_timeout, &app.tracker, move |ws| {
        async move {
            tracing::info!("publisher connected");
            hub.metrics.opened();
            let end = match kind {
                Publishing::Json => {
                    let who = session::publisher::Who { name, credential };
                    session::publisher::run(ws, hub.clone(), ingest, ch, who, shutdown, revoked)
                        .await
                }
                Publishing::EbuTt | Publishing::EbuTtCarriage => {
                    let replies = match kind {
                        Publishing::EbuTtCarriage => session::ebutt::Replies::Logged,
                        _ => session::ebutt::Replies::Sent,
                    };
                    let (h, i) = (hub.clone(), ingest);
                    session::ebutt::run(ws, h, i, ch, shutdown, replies, revoked).await
                }
            };
            hub.metrics.closed();
            session::count_end(&hub.metrics, end);
            tracing::info!(?end, "publisher left");
        }
        .instrument(span)
    })
}
