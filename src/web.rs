//! The web apps: pages and files of `web/` (see [`assets`] for embedding, compression and
//! caching), QR codes for the hall screen, and the organiser dashboard's admin API.
//!
//! Pages: `/` (events), `/e/{event}` (attendee), `/e/{event}/display` (hall screen and
//! livestream overlay), `/e/{event}/transcript` (the read-only transcript),
//! `/booth/{event}` (interpreter console), `/admin` (organiser dashboard). Every page is plain HTML with JavaScript modules and one
//! stylesheet, under a strict content security policy (no inline script or style).

pub mod admin;
pub mod assets;
pub mod qr;

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::hub::Hub;
use assets::Want;

/// What the pages, QR codes and the dashboard's data need: the registry, where the files
/// come from, and the public URL printed in QR codes.
#[derive(Debug, Clone)]
pub struct WebState {
    pub hub: Arc<Hub>,
    /// Serve `web/` files from this directory instead of the embedded copies (development).
    pub web_dir: Option<Arc<FsPath>>,
    /// The base URL attendee links point at (`server.public_url`).
    pub public_url: Arc<str>,
}

async fn page(app: &WebState, headers: &HeaderMap, name: &str) -> Response {
    assets::serve(app, headers, name, Want::Fresh).await
}

/// Routes for pages, static files, QR codes and the admin API.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route(
            "/",
            get(|State(s): State<WebState>, h: HeaderMap| async move {
                page(&s, &h, "index.html").await
            }),
        )
        .route(
            "/e/{event}",
            get(|State(s): State<WebState>, h: HeaderMap| async move {
                page(&s, &h, "attendee.html").await
            }),
        )
        .route(
            "/e/{event}/display",
            get(|State(s): State<WebState>, h: HeaderMap| async move {
                page(&s, &h, "display.html").await
            }),
        )
        .route(
            "/e/{event}/transcript",
            get(|State(s): State<WebState>, h: HeaderMap| async move {
                page(&s, &h, "transcript.html").await
            }),
        )
        .route(
            "/booth/{event}",
            get(|State(s): State<WebState>, h: HeaderMap| async move {
                page(&s, &h, "booth.html").await
            }),
        )
        .route(
            "/admin",
            get(|State(s): State<WebState>, h: HeaderMap| async move {
                page(&s, &h, "admin.html").await
            }),
        )
        .route(
            "/favicon.ico",
            get(|State(s): State<WebState>, h: HeaderMap| async move {
                page(&s, &h, "icon.svg").await
            }),
        )
        .route(
            "/static/{file}",
            get(
                |State(s): State<WebState>, h: HeaderMap, Path(f): Path<String>| async move {
                    assets::serve(&s, &h, &f, Want::Fresh).await
                },
            ),
        )
        .route(
            "/static/{version}/{file}",
            get(
                |State(s): State<WebState>,
                 h: HeaderMap,
                 Path((v, f)): Path<(String, String)>| async move {
                    assets::serve(&s, &h, &f, Want::Versioned(&v)).await
                },
            ),
        )
        // The string tables (web/i18n/), imported relative to i18n.js.
        .route(
            "/static/i18n/{file}",
            get(
                |State(s): State<WebState>, h: HeaderMap, Path(f): Path<String>| async move {
                    assets::serve(&s, &h, &format!("i18n/{f}"), Want::Fresh).await
                },
            ),
        )
        .route(
            "/static/{version}/i18n/{file}",
            get(
                |State(s): State<WebState>,
                 h: HeaderMap,
                 Path((v, f)): Path<(String, String)>| async move {
                    assets::serve(&s, &h, &format!("i18n/{f}"), Want::Versioned(&v)).await
                },
            ),
        )
        .route("/v1/events/{event}/qr.svg", get(qr_route))
        .route("/v1/admin/channels", get(admin::channels))
}

/// `GET /v1/events/{event}/qr.svg[?channel=ID]`: the attendee link of an event or channel.
async fn qr_route(
    State(app): State<WebState>,
    headers: HeaderMap,
    Path(event): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if app.hub.event(&event).is_none() {
        return assets::not_found();
    }
    let channel = q.get("channel").map(String::as_str);
    if channel.is_some_and(|c| app.hub.channel(&event, c).is_none()) {
        return assets::not_found();
    }
    let url = qr::attendee_url(&app.public_url, &event, channel);
    match qr::svg(&url) {
        Some(svg) => assets::dynamic(&headers, "qr.svg", svg.into_bytes()),
        None => assets::not_found(),
    }
}
