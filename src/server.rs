//! The accept loop, HTTP serving and graceful shutdown.
//!
//! [`Server::start`] takes an already-bound listener (tests bind port 0) and a config, opens
//! the store, builds the hub and serves until [`Server::shutdown`]: stop accepting, send Close
//! 1001 on every socket, flush the store, all within `server.shutdown_grace_secs`.

mod admin_api;
mod conn;
mod error;
pub mod guard;
pub mod lan;
mod ops;
mod reclaim;
mod routes;
mod tls;
mod upgrade;

use std::net::SocketAddr;
use std::path::PathBuf;
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
use tokio_util::task::TaskTracker;

pub use conn::Conn;
pub use tls::TlsError;

use crate::cluster::Node;
use crate::config::Config;
use crate::forward::Forwarder;
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::limiter::{ConnLimiter, ConnPermit, Denied};
use crate::metrics::{Metrics, Refused};
use crate::organiser::Organiser;
use crate::protocol::Refusal;
use crate::store::{Store, StoreError};

/// Largest request head (request line and headers) a client may send; 431 above it.
const MAX_HEAD_BYTES: usize = 32 * 1024;
/// hyper's per-connection read buffer cap.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// Refused connections answered at once (503/429); beyond this they are simply closed, so a
/// flood cannot make the server hold sockets open to say no.
const MAX_REFUSING: usize = 256;
/// Time a refused connection gets to send its request head and read the answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// What every request on one connection knows about it (a request extension). Holding it
/// keeps the connection's slot in the connection limits: the WebSocket session takes a clone
/// over from the HTTP connection at upgrade.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The address the client reached (the interface's, not the listening `0.0.0.0`).
    pub local: Option<SocketAddr>,
    pub tls: bool,
    /// Time allowed to complete a WebSocket upgrade once answered.
    pub handshake_timeout: Duration,
    permit: Arc<ConnPermit>,
}

/// Options that are not part of the config file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve `web/` files from this directory instead of the embedded copies (development).
    pub web_dir: Option<PathBuf>,
}

/// State shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    /// Admission of every way of publishing.
    pub ingest: Arc<Ingest>,
    /// Egress forwarders (`[[events.channels.forward]]`), started by the server (or, in a
    /// cluster, by the node holding the forwarding lease).
    pub forwarders: Arc<[Arc<Forwarder>]>,
    /// Cluster mode: this node's link to NATS.
    pub cluster: Option<Arc<Node>>,
    /// Organisers' changes at run time (events, channels, credentials, deletions).
    pub organiser: Arc<Organiser>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub options: Arc<Options>,
    pub public_url: Arc<str>,
    /// `server.allowed_origins`.
    pub allowed_origins: Arc<[String]>,
    /// Connection limits per node and per address.
    pub limiter: Arc<ConnLimiter>,
    /// Present when serving TLS natively.
    pub tls: Option<tls::Acceptor>,
}

impl AppState {
    /// Prometheus text of every metric: the process and channels', the cluster's, the
    /// forwarders' and the ingest streams'.
    pub fn render_metrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.hub.render_metrics(&mut out);
        if let Some(node) = &self.cluster {
            node.render_metrics(&mut out);
        }
        crate::forward::render_metrics(&self.hub, &self.forwarders, &mut out);
        self.ingest.idle.stats.render(&mut out);
        out
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    local_addr: SocketAddr,
    /// How `public_url` was chosen (for the startup banner).
    url_origin: lan::Origin,
    grace: Duration,
    accept: tokio::task::JoinHandle<()>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the listening address: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// In a cluster, the part of the grace period (1/N of it) kept for leaving the cluster.
const CLUSTER_GRACE_SHARE: u32 = 4;
/// ...but no more than this.
const MAX_CLUSTER_GRACE: Duration = Duration::from_secs(3);

impl Server {
    /// Opens the store, restores every channel and starts serving on `listener`.
    pub async fn start(
        listener: TcpListener,
        config: Config,
        options: Options,
    ) -> Result<Server, StartError> {
        let local_addr = listener.local_addr()?;
        let tls = match (&config.server.tls_cert, &config.server.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        let metrics = Arc::new(Metrics::default());
        let limiter = Arc::new(ConnLimiter::new(&config.limits, metrics.clone()));
        let store = Store::open(
            &config.storage.dir,
            config.storage.sync,
            Duration::from_millis(config.storage.commit_delay_ms),
            metrics.clone(),
        )?;
        // Cluster mode: reach NATS first (fail fast); the cluster then sequences every event.
        let joining = match &config.cluster {
            Some(cluster) => Some(crate::cluster::Joining::connect(cluster, &config).await?),
            None => None,
        };
        let store = match &joining {
            Some(j) => store.with_sequencer(j.sequencer()),
            None => store,
        };
        let store = Arc::new(store);
        let hub = Arc::new(Hub::new(&config, store.clone(), metrics)?);
        let lookup = {
            let hub = hub.clone();
            Arc::new(move |e: &str, c: &str| hub.channel(e, c)) as crate::ingest::ChannelLookup
        };
        let ingest = Arc::new(Ingest::new(
            store,
            lookup,
            config.limits.max_caption_chars,
            config.ingest.idle_commit(),
        )?);
        let forwarders: Arc<[Arc<Forwarder>]> = crate::forward::from_config(&config).into();
        let cluster = match joining {
            Some(joining) => Some(joining.start(&hub, &ingest, forwarders.to_vec()).await?),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (public_url, url_origin) = lan::public_url(
            config.server.public_url.as_deref(),
            local_addr,
            tls.is_some(),
        );
        let public_url: Arc<str> = public_url.into();
        let organiser =
            Organiser::start(hub.clone(), public_url.clone(), &tracker, shutdown.clone());
        if let Some(node) = &cluster {
            crate::cluster::registry::start(node, &organiser).await?;
        }
        let state = AppState {
            hub: hub.clone(),
            ingest: ingest.clone(),
            forwarders: forwarders.clone(),
            cluster: cluster.clone(),
            organiser,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            options: Arc::new(options),
            public_url,
            allowed_origins: config.server.allowed_origins.clone().into(),
            limiter,
            tls,
        };
        tracker.spawn(hub.clone().run_status_ticker(shutdown.clone()));
        tracker.spawn(crate::ingest::idle::run(ingest.clone(), shutdown.clone()));
        tracker.spawn(reclaim::run(state.limiter.clone(), shutdown.clone()));
        if config.storage.retention_days > 0 {
            let days = config.storage.retention_days;
            tracker.spawn(crate::organiser::run_retention(
                hub.clone(),
                days,
                shutdown.clone(),
            ));
        }
        // In a cluster only the node holding the forwarding lease runs them (no double posts).
        if cluster.is_none() {
            crate::forward::spawn_all(&hub, &forwarders, None, &tracker, &shutdown);
        }
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Server {
            state,
            local_addr,
            url_origin,
            grace: Duration::from_secs(config.server.shutdown_grace_secs),
            accept,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared hub (channels, store, tokens).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.state.hub
    }

    /// Admission of every way of publishing (the demo publishes through it).
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.state.ingest
    }

    /// The egress forwarders.
    pub fn forwarders(&self) -> &[Arc<Forwarder>] {
        &self.state.forwarders
    }

    /// The base URL used in printed links and QR codes.
    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    /// How [`public_url`](Self::public_url) was chosen.
    pub fn public_url_origin(&self) -> &lan::Origin {
        &self.url_origin
    }

    /// The token that, once cancelled, shuts every task down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Graceful shutdown: stop accepting, close every socket with 1001, flush the store. In a
    /// cluster the whole of it fits in `shutdown_grace_secs`, even with NATS stalled: a share
    /// of the grace period is kept for leaving the cluster.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.grace;
        self.state.shutdown.cancel();
        let _ = self.accept.await;
        self.state.tracker.close();
        let node = self.state.cluster.clone();
        let sessions_until = match &node {
            Some(_) => deadline - (self.grace / CLUSTER_GRACE_SHARE).min(MAX_CLUSTER_GRACE),
            None => deadline,
        };
        if tokio::time::timeout_at(sessions_until, self.state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_secs = self.grace.as_secs(),
                "some connections did not close within the grace period"
            );
        }
        let hub = self.state.hub.clone();
        if let Some(node) = node {
            node.shutdown(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await;
        }
        let _ = tokio::task::spawn_blocking(move || hub.store.close()).await;
    }
}

/// Serves until `shutdown` resolves, then shuts down gracefully.
pub async fn run(
    listener: TcpListener,
    config: Config,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let server = Server::start(listener, config, options).await?;
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

async fn accept_loop(listener: TcpListener, state: AppState) {
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
