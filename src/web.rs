//! The pages in `web/`, embedded in the binary (or read from `--web-dir` during development),
//! served with cache validators and security headers.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::server::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset { name: $name, bytes: include_bytes!(concat!("../web/", $name)) }),*]
    };
}

/// Every file in `web/`. A new file must be listed here to be served.
static ASSETS: &[Asset] = assets![
    "index.html",
    "attendee.html",
    "app.css",
    "index.js",
    "attendee.js"
];

/// Content security policy for every page: no inline script, same-origin everything.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'none'";

/// The name of a language in itself, for pickers and default channel labels.
pub fn native_name(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "auto" => "Floor",
        "en" => "English",
        "zh" => "中文",
        "fr" => "Français",
        "es" => "Español",
        "ar" => "العربية",
        "ru" => "Русский",
        "de" => "Deutsch",
        "it" => "Italiano",
        "pt" => "Português",
        "ja" => "日本語",
        "ko" => "한국어",
        "hi" => "हिन्दी",
        "tr" => "Türkçe",
        "pl" => "Polski",
        "nl" => "Nederlands",
        "uk" => "Українська",
        _ => return None,
    })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Routes for pages and static files.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|s: State<AppState>, h: HeaderMap| page(s, h, "index.html")),
        )
        .route(
            "/e/{event}",
            get(|s: State<AppState>, h: HeaderMap, Path(_e): Path<String>| {
                page(s, h, "attendee.html")
            }),
        )
        .route(
            "/static/{file}",
            get(
                |s: State<AppState>, h: HeaderMap, Path(f): Path<String>| async move {
                    page(s, h, &f).await
                },
            ),
        )
}

fn etag(bytes: &[u8]) -> String {
    // FNV-1a: stable across builds of the same content, cheap, no extra dependency.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016x}\"")
}

async fn page(State(app): State<AppState>, headers: HeaderMap, name: &str) -> Response {
    // Only names from the embedded table are served, so no path can escape `web/`.
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return not_found();
    };
    let bytes: Vec<u8> = match &app.options.web_dir {
        Some(dir) => match tokio::fs::read(dir.join(asset.name)).await {
            Ok(b) => b,
            Err(_) => return not_found(),
        },
        None => asset.bytes.to_vec(),
    };
    let tag = etag(&bytes);
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type(asset.name))
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::ETAG, &tag)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CONTENT_SECURITY_POLICY, CSP);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("valid response");
    }
    builder.body(Body::from(bytes)).expect("valid response")
}

fn not_found() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from("not found\n"))
        .expect("valid response")
}
