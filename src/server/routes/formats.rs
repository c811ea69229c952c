//! HTTP ingest in the caption formats captioners' software already speaks: Zoom's
//! closed-caption API, YouTube Live caption ingestion and StreamText's caption URL. Parsing is
//! in [`crate::formats`], the per-channel state and the pipeline in [`crate::ingest::formats`];
//! this module only maps requests and answers (see docs/integrations.md).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::{authorize, find, refusal_response, ApiError, AppState, Query_};
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::formats::{self, youtube, Format, FormatError};
use crate::ingest::formats::{Input, PostError};
use crate::metrics::Refused;
use crate::protocol::ErrorCode;

/// The format routes, merged into the main router.
pub(super) fn routes() -> Router<AppState> {
    let base = "/v1/events/{event}/channels/{channel}/captions";
    Router::new()
        .route(&format!("{base}/zoom"), post(zoom))
        .route(&format!("{base}/zoom/seq"), get(zoom_seq))
        .route(&format!("{base}/youtube"), post(youtube_route))
        .route(&format!("{base}/streamtext"), post(streamtext))
}

fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn format_api_error(app: &AppState, e: &FormatError) -> ApiError {
    app.hub.metrics.refuse(Refused::BadMessage);
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(status, e.code(), e.to_string())
}

fn format_error(app: &AppState, e: &FormatError) -> Response {
    format_api_error(app, e).into_response()
}

/// Channel (404), token (401, or 403 the way Zoom answers), body size (413) and UTF-8 (400).
fn admit_request<'b>(
    app: &AppState,
    (event, channel): (&str, &str),
    q: &std::collections::HashMap<String, String>,
    headers: &HeaderMap,
    body: &'b Bytes,
    format: Format,
) -> Result<(Arc<Channel>, &'b str), ApiError> {
    let ch = find(app, event, channel)?;
    if let Err(mut e) = authorize(app, &ch, headers, q) {
        if format == Format::Zoom {
            // Zoom answers a request without valid credentials with 403.
            e.status = StatusCode::FORBIDDEN;
            e.www_authenticate = false;
        }
        return Err(e);
    }
    if body.len() > app.hub.limits.max_body_bytes {
        app.hub.metrics.refuse(Refused::TooBig);
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!(
                "body is larger than {} bytes",
                app.hub.limits.max_body_bytes
            ),
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| format_api_error(app, &FormatError::NotUtf8))?;
    Ok((ch, text))
}

/// Applies a post and answers the way the service does: 200 with a timestamp.
async fn apply(
    app: &AppState,
    ch: &Arc<Channel>,
    (format, seq, body): (Format, u64, &str),
    input: Input<'_>,
) -> Response {
    match app
        .ingest
        .formats
        .post(&app.ingest, ch, (format, seq, body), input)
        .await
    {
        Ok(posted) => plain(StatusCode::OK, posted.reply),
        Err(PostError::Refused(r)) => {
            app.hub
                .metrics
                .refuse(if r.code == ErrorCode::StorageUnavailable {
                    Refused::Storage
                } else {
                    Refused::BadMessage
                });
            refusal_response(&r)
        }
    }
}

/// `POST …/captions/zoom?seq=N&lang=en-US`: text appended to the line in progress; a line
/// break commits it. A missing seq is a 403, as Zoom answers it.
async fn zoom(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ch, text) =
        match admit_request(&app, (&event, &channel), &q, &headers, &body, Format::Zoom) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
    let seq = match formats::parse_seq(q.get("seq").map(String::as_str)) {
        Ok(s) => s,
        Err(e @ FormatError::MissingSeq) => {
            app.hub.metrics.refuse(Refused::BadMessage);
            return ApiError::new(StatusCode::FORBIDDEN, e.code(), e.to_string()).into_response();
        }
        Err(e) => return format_error(&app, &e),
    };
    if let Err(e) = formats::parse_lang(q.get("lang").map(String::as_str)) {
        return format_error(&app, &e);
    }
    let input = Input::Text {
        text,
        corrections: false,
        chunks: true,
    };
    apply(&app, &ch, (Format::Zoom, seq, text), input).await
}

/// `GET …/captions/zoom/seq`: the last accepted Zoom seq of the channel, a plain integer.
async fn zoom_seq(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    headers: HeaderMap,
) -> Response {
    let empty = Bytes::new();
    match admit_request(&app, (&event, &channel), &q, &headers, &empty, Format::Zoom) {
        Ok((ch, _)) => plain(
            StatusCode::OK,
            app.ingest.formats.last_seq(&ch, Format::Zoom).to_string(),
        ),
        Err(e) => e.into_response(),
    }
}

/// `POST …/captions/youtube?seq=N`: timestamped cues, each committed as one line; an empty
/// body is a heartbeat. The answer is the server time.
async fn youtube_route(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ch, text) = match admit_request(
        &app,
        (&event, &channel),
        &q,
        &headers,
        &body,
        Format::YouTube,
    ) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if text.trim().is_empty() {
        return plain(StatusCode::OK, formats::timestamp::format(now_ms()));
    }
    let seq = match formats::parse_seq(q.get("seq").map(String::as_str)) {
        Ok(s) => s,
        Err(e) => return format_error(&app, &e),
    };
    let cues = match youtube::parse_body(text, app.hub.limits.max_caption_chars) {
        Ok(c) => c,
        Err(e) => return format_error(&app, &e),
    };
    apply(&app, &ch, (Format::YouTube, seq, text), Input::Cues(cues)).await
}

/// `POST …/captions/streamtext?seq=N&lang=en`: the text typed since the last post, with
/// backspace/delete corrections; CR/LF commits.
async fn streamtext(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ch, text) = match admit_request(
        &app,
        (&event, &channel),
        &q,
        &headers,
        &body,
        Format::StreamText,
    ) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let seq = match formats::parse_seq(q.get("seq").map(String::as_str)) {
        Ok(s) => s,
        Err(e) => return format_error(&app, &e),
    };
    if let Err(e) = formats::parse_lang(q.get("lang").map(String::as_str)) {
        return format_error(&app, &e);
    }
    // StreamText posts what was typed, split anywhere (even inside a word): no space added.
    let input = Input::Text {
        text,
        corrections: formats::streamtext::CORRECTIONS,
        chunks: false,
    };
    apply(&app, &ch, (Format::StreamText, seq, text), input).await
}
