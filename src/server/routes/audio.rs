//! The sound feed's route: `GET /v1/events/{event}/channels/{channel}/audio/publish` (token as
//! for publishing) upgrades to a socket taking Opus packets (`session::feed`). Listening to
//! sound is the listen socket's `?audio=1` (docs/protocol.md#sound).

use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::Instrument;

use super::{authorize, find, upgrade, AppState, Query_};
use crate::session::{self, PUBLISHER_READ_BUFFER};

/// The sound routes, merged into the main router.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/events/{event}/channels/{channel}/audio/publish",
        get(feed),
    )
}

async fn feed(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    req: Request,
) -> Response {
    let ch = match find(&app, &event, &channel) {
        Ok(ch) => ch,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = authorize(&app, &ch, req.headers(), &q) {
        return r.into_response();
    }
    let config = session::ws_config(&app.hub.limits, PUBLISHER_READ_BUFFER);
    let (hub, ingest, shutdown) = (app.hub.clone(), app.ingest.clone(), app.shutdown.clone());
    let span = tracing::info_span!("feed", event = %ch.info.event, channel = %ch.info.id);
    let write_timeout = app.hub.limits.write_timeout();
    upgrade::accept(req, config, write_timeout, &app.tracker, move |ws| {
        async move {
            tracing::info!("sound feed connected");
            hub.metrics.opened();
            let end = session::feed::run(ws, hub.clone(), ingest, ch, shutdown).await;
            hub.metrics.closed();
            session::count_end(&hub.metrics, end);
            tracing::info!(?end, "sound feed left");
        }
        .instrument(span)
    })
}
