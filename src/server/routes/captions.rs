//! `POST …/captions`: publishing over plain HTTP, one JSON message (partial, final, edit) or a
//! `text/plain` final line per request, answered with the ack or the refusal.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access::{authorize, find};
use super::{api_error, refusal_response, refusal_response_for, AppState, Query_};
use crate::ingest::{self, Admitted};
use crate::metrics::Refused;
use crate::protocol::{parse_client, ClientMsg, ErrorCode, Refusal, ServerMsg};

/// `POST …/captions`: a JSON message (partial, final, edit) or `text/plain` (one final line).
pub(super) async fn captions(
    State(app): State<AppState>,
    Path((event, channel)): Path<(String, String)>,
    Query(q): Query_,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ch = match find(&app, &event, &channel) {
        Ok(ch) => ch,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = authorize(&app, &ch, &headers, &q) {
        return r.into_response();
    }
    if body.len() > app.hub.limits.max_body_bytes {
        app.hub.metrics.refuse(Refused::TooBig);
        return api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            &format!(
                "body is larger than {} bytes",
                app.hub.limits.max_body_bytes
            ),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return refusal_response(&Refusal::new(ErrorCode::BadMessage, "body is not UTF-8"));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let msg = if content_type.starts_with("application/json") {
        match parse_client(text) {
            Ok(m) => m,
            Err(r) => {
                app.hub.metrics.refuse(Refused::BadMessage);
                return refusal_response(&r);
            }
        }
    } else {
        ClientMsg::Final {
            text: text.trim_end_matches(['\r', '\n']).to_string(),
            id: q.get("id").cloned(),
        }
    };
    let (id, of) = match &msg {
        ClientMsg::Final { id, .. } => (id.clone(), None),
        ClientMsg::Edit { of, .. } => (None, Some(*of)),
        _ => (None, None),
    };
    match app.ingest.admit(&ch, msg, None).await {
        Ok(Admitted::Partial | Admitted::Control) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            ServerMsg::Accepted.to_frame().to_string(),
        )
            .into_response(),
        Ok(Admitted::Pending(rx)) => match ingest::resolve(rx).await {
            Ok(ack) => (
                [(header::CONTENT_TYPE, "application/json")],
                ServerMsg::Ack {
                    seq: ack.seq,
                    id: id.as_deref().map(Into::into),
                    duplicate: ack.duplicate,
                }
                .to_frame()
                .to_string(),
            )
                .into_response(),
            Err(r) => {
                if r.code == ErrorCode::StorageUnavailable {
                    app.hub.metrics.refuse(Refused::Storage);
                }
                refusal_response_for(&r, id.as_deref(), of)
            }
        },
        Err(r) => {
            app.hub.metrics.refuse_message(r.code);
            refusal_response_for(&r, id.as_deref(), of)
        }
    }
}
