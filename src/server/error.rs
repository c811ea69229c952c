//! HTTP refusals: [`ApiError`], a status with the protocol's `error` body, as every route and
//! guard answers them.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::protocol::{ErrorCode, Refusal};

/// A refused HTTP request: a status and the protocol's `error` body (a code clients branch on
/// and a message for people).
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    refusal: Refusal,
    pub(super) www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            refusal: Refusal::new(code, message),
            www_authenticate: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.refusal.to_frame().to_string(),
        )
            .into_response();
        if self.www_authenticate {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"babelcast\"".parse().expect("static"),
            );
        }
        r
    }
}

/// A JSON error body in the protocol's `error` shape, with an HTTP status.
pub fn api_error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// A refusal as an HTTP answer: its code's status and the `error` body.
pub fn refusal_response(r: &Refusal) -> Response {
    refusal_response_for(r, None, None)
}

/// A refusal naming the final's client `id` or the edit's `of`.
pub fn refusal_response_for(r: &Refusal, id: Option<&str>, of: Option<u64>) -> Response {
    let status = StatusCode::from_u16(r.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        r.to_frame_for(id, of).to_string(),
    )
        .into_response()
}
