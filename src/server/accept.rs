//! The accept loop: admission by the connection limits before a byte is read, the TLS
//! handshake, HTTP/1.1 (and upgrades) on each admitted connection, and the minimal answers
//! (503/429, and on a full node the operations reserve) to refused ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{guard, ops, routes, AppState, Conn, ConnInfo};
use crate::limiter::Denied;
use crate::metrics::Refused;
use crate::protocol::Refusal;

/// Largest request head (request line and headers) a client may send; 431 above it.
const MAX_HEAD_BYTES: usize = 32 * 1024;
/// hyper's per-connection read buffer cap.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// Refused connections answered at once (503/429); beyond this they are simply closed, so a
/// flood cannot make the server hold sockets open to say no.
const MAX_REFUSING: usize = 256;
/// Time a refused connection gets to send its request head and read the answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn accept_loop(listener: TcpListener, state: AppState) {
    let limits = &state.hub.limits;
    let router = routes::router(state.clone())
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::layer,
        ));
    let service = TowerToHyperService::new(router);
    let handshake_timeout = limits.handshake_timeout();
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match state.limiter.permit(peer.ip()) {
            Ok(p) => Arc::new(p),
            Err(denied) => {
                // Over TLS a plain-text answer would be garbage to the client, and a TLS
                // handshake is what a flood should not get: just close.
                if state.tls.is_none() {
                    refuse(stream, denied, &refusing, state.clone());
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let info = ConnInfo {
            peer,
            local: stream.local_addr().ok(),
            tls: state.tls.is_some(),
            handshake_timeout,
            permit,
        };
        let (service, shutdown, tls) = (service.clone(), state.shutdown.clone(), state.tls.clone());
        let metrics = state.hub.metrics.clone();
        state.tracker.spawn(async move {
            // A silent socket holds only the socket and this small task until its first bytes:
            // the connection's state (hyper's, a TLS session's) is allocated then.
            tokio::select! {
                r = tokio::time::timeout(handshake_timeout, stream.readable()) => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        metrics.refuse(Refused::Timeout);
                        return;
                    }
                },
                _ = shutdown.cancelled() => return,
            }
            // Boxed: the task itself stays small while the socket is silent.
            Box::pin(async move {
                let conn = match tls {
                    None => Conn::Plain(stream),
                    Some(acceptor) => {
                        match tokio::time::timeout(handshake_timeout, acceptor.0.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => Conn::Tls(Box::new(s)),
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                metrics.refuse(Refused::Timeout);
                                return;
                            }
                        }
                    }
                };
                serve_connection(conn, info, service, handshake_timeout, shutdown).await;
            })
            .await;
        });
    }
}

/// Serves HTTP/1.1 (and upgrades) on one admitted connection until it ends or shutdown.
async fn serve_connection(
    conn: Conn,
    info: ConnInfo,
    service: TowerToHyperService<axum::Router>,
    handshake_timeout: Duration,
    shutdown: CancellationToken,
) {
    let peer = info.peer;
    let permit = info.permit.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        service.call(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_BUF_BYTES);
    let conn = builder
        .serve_connection(TokioIo::new(conn), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                if e.is_timeout() {
                    // A request head slower than limits.handshake_timeout_secs (slowloris).
                    permit.metrics().refuse(Refused::Timeout);
                }
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// Answers a connection the limits refused with 503 or 429 (JSON, `Retry-After`), then
/// closes it; on a full node `/healthz` and `/metrics` are answered for real (the operations
/// reserve, see [`ops`]). Beyond [`MAX_REFUSING`] refusals in progress the socket is just closed.
fn refuse(stream: TcpStream, denied: Denied, refusing: &Arc<AtomicUsize>, app: AppState) {
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = refusing.clone();
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            // Only a full node: an address over its own share gets no exception.
            let ops = match denied {
                Denied::NodeFull => ops::answer(&req, &app),
                _ => None,
            };
            async move {
                if let Some(r) = ops {
                    return Ok(r);
                }
                let body = Refusal::new(denied.code(), denied.message())
                    .to_frame()
                    .to_string();
                Response::builder()
                    .status(
                        StatusCode::from_u16(denied.http_status())
                            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    )
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::RETRY_AFTER, denied.retry_after_secs())
                    .header(header::CONNECTION, "close")
                    .body(Body::from(body))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .keep_alive(false)
            .header_read_timeout(REFUSAL_TIMEOUT)
            .max_header_size(MAX_HEAD_BYTES)
            .max_buf_size(MAX_BUF_BYTES);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT * 2, conn).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}
