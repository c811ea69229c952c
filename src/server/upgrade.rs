//! The WebSocket handshake on top of hyper, handing the raw socket to tokio-tungstenite with
//! our own buffer sizes (so idle phones cost a few KiB, not tungstenite's 128 KiB default).

use std::future::Future;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::task::TaskTracker;

use super::{Conn, ConnInfo};
use crate::metrics::Refused;
use crate::session::WriteDeadline;

/// A socket after the handshake (plain TCP or TLS), whose writes time out when the client
/// stops reading.
pub type Ws = WebSocketStream<WriteDeadline<Conn>>;

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

/// Whether the request asks for a WebSocket upgrade.
pub fn is_upgrade(req: &Request<Body>) -> bool {
    header_has(req.headers(), header::CONNECTION, "upgrade")
        && header_has(req.headers(), header::UPGRADE, "websocket")
}

/// Completes the handshake: answers 101 now and runs `session` on the socket once hyper
/// hands it over. The session task is tracked so shutdown waits for its Close frame.
pub fn accept<F, Fut>(
    mut req: Request<Body>,
    config: WebSocketConfig,
    write_timeout: std::time::Duration,
    tracker: &TaskTracker,
    session: F,
) -> Response<Body>
where
    F: FnOnce(Ws) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let headers = req.headers();
    if !is_upgrade(&req) {
        return plain(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket; send an Upgrade: websocket request",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut r = plain(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13");
        r.headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, "13".parse().expect("static"));
        return r;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept_key = derive_accept_key(key.as_bytes());
    // The session inherits the connection's slot in the connection limits.
    let info = req.extensions().get::<ConnInfo>().cloned();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tracker.spawn(async move {
        let timeout = info
            .as_ref()
            .map_or(std::time::Duration::from_secs(10), |i| i.handshake_timeout);
        let upgraded = match tokio::time::timeout(timeout, on_upgrade).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
            Err(_) => {
                if let Some(i) = &info {
                    i.permit.metrics().refuse(Refused::Timeout);
                }
                tracing::debug!("websocket upgrade timed out");
                return;
            }
        };
        // Our accept loop always serves a Conn; get it back to drop hyper's wrapper.
        let ws = match upgraded.downcast::<TokioIo<Conn>>() {
            Ok(parts) => {
                let stream = WriteDeadline::new(parts.io.into_inner().upgraded(), write_timeout);
                if let (Some(direct), false) =
                    (stream.get_ref().direct(), parts.read_buf.is_empty())
                {
                    // Frames sent right behind the request were read before anything could
                    // track where they end: this connection never parks.
                    direct.pin();
                }
                if parts.read_buf.is_empty() {
                    WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await
                } else {
                    WebSocketStream::from_partially_read(
                        stream,
                        parts.read_buf.to_vec(),
                        Role::Server,
                        Some(config),
                    )
                    .await
                }
            }
            Err(_) => {
                tracing::error!("upgraded connection is not a server Conn");
                return;
            }
        };
        session(ws).await;
        drop(info);
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key)
        .body(Body::empty())
        .expect("valid response")
}

/// A plain-text response.
pub fn plain(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{text}\n")))
        .expect("valid response")
}
