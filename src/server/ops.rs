//! The operations reserve: `/healthz` and `/metrics` keep answering on connections refused
//! because the node is at `limits.max_connections`, so monitoring does not go blind exactly
//! when a flood arrives. Everything else on those connections gets the 503 (and an address over
//! its own share gets its 429 for everything).

use axum::body::Body;
use axum::http::{header, Method, Request, Response, StatusCode};

use super::AppState;

/// The answer to an operations request (`GET` or `HEAD` of `/healthz` or `/metrics`), or
/// `None` for any other request.
pub fn answer<B>(req: &Request<B>, app: &AppState) -> Option<Response<Body>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let (content_type, body) = match req.uri().path() {
        "/healthz" => ("text/plain; charset=utf-8", "ok\n".to_string()),
        "/metrics" => ("text/plain; version=0.0.4", app.render_metrics()),
        _ => return None,
    };
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONNECTION, "close")
        .body(Body::from(body))
        .expect("valid response");
    Some(response)
}
