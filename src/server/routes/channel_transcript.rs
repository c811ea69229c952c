//! `GET …/transcript`: a channel's transcript in one of the export formats (txt, vtt, srt,
//! json), corrected or as shown, read from the store up to the channel's last seq.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access::find;
use super::{api_error, AppState, Query_};
use crate::protocol::ErrorCode;
use crate::transcript;

/// The transcript of one channel (`?format=`, `?version=`).
pub(super) async fn transcript_route(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    headers: HeaderMap,
) -> Response {
    let ch = match find(&app, &event, &channel) {
        Ok(ch) => ch,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = crate::server::guard::transcript_reader(&app, &event, &channel, &headers, &q) {
        return r.into_response();
    }
    let format =
        match transcript::Format::parse(q.get("format").map(String::as_str).unwrap_or("txt")) {
            Some(f) => f,
            None => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadFormat,
                    "format must be txt, vtt, srt or json",
                )
            }
        };
    let version = match transcript::Version::parse(
        q.get("version").map(String::as_str).unwrap_or("corrected"),
    ) {
        Some(v) => v,
        None => {
            return api_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadVersion,
                "version must be corrected or as-shown",
            )
        }
    };
    let upto = ch.last_seq();
    let records = match app.hub.store.read_range(&event, &channel, 0, upto).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reading a transcript failed");
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "the transcript could not be read",
            );
        }
    };
    let body = transcript::render(format, version, &ch.info, &records);
    let filename = format!("{event}-{channel}.{}", format.extension());
    Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{filename}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .expect("valid response")
}
