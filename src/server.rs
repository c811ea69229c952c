//! The accept loop, HTTP serving and graceful shutdown.
//!
//! [`Server::start`] takes an already-bound listener (tests bind port 0) and a config, opens
//! the store, builds the hub and serves until [`Server::shutdown`]: stop accepting, send Close
//! 1001 on every socket, flush the store, all within `server.shutdown_grace_secs`.

mod accept;
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
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use conn::Conn;
pub use tls::TlsError;

use crate::cluster::Node;
use crate::config::Config;
use crate::forward::Forwarder;
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::limiter::{ConnLimiter, ConnPermit};
use crate::metrics::Metrics;
use crate::organiser::Organiser;
use crate::store::{Store, StoreError};

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
        self.ingest.recorder().inspect(|r| r.render(&mut out));
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
    #[error("audio.record: cannot write recordings under {0}: {1}")]
    Recording(PathBuf, std::io::Error),
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
        let ingest = Arc::new(
            Ingest::new(
                store,
                lookup,
                config.limits.max_caption_chars,
                config.ingest.idle_commit(),
            )?
            .with_audio(config.audio.clone()),
        );
        if config.audio.record {
            let dir = config.storage.dir.join("audio");
            let recorder = crate::recording::Recorder::start(dir.clone())
                .map_err(|e| StartError::Recording(dir, e))?;
            ingest.set_recorder(Arc::new(recorder));
        }
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
        let organiser = Organiser::start(
            hub.clone(),
            ingest.clone(),
            public_url.clone(),
            &tracker,
            shutdown.clone(),
        );
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
        tracker.spawn(
            hub.clone()
                .run_status_ticker(ingest.clone(), shutdown.clone()),
        );
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
        let accept = tokio::spawn(accept::accept_loop(listener, state.clone()));
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
        // Every session has ended: no packet comes any more; recordings end properly.
        let ingest = self.state.ingest.clone();
        let _ = tokio::task::spawn_blocking(move || ingest.close_recordings()).await;
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
