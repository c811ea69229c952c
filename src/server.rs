//! The accept loop, HTTP serving and graceful shutdown.
//!
//! [`Server::start`] takes an already-bound listener (tests bind port 0) and a config, opens
//! the store, builds the hub and serves until [`Server::shutdown`]: stop accepting, send Close
//! 1001 on every socket, flush the store, all within `server.shutdown_grace_secs`.

mod routes;
mod upgrade;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Time a client has to send its request head (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub options: Arc<Options>,
    pub public_url: Arc<str>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    local_addr: SocketAddr,
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
}

impl Server {
    /// Opens the store, restores every channel and starts serving on `listener`.
    pub async fn start(
        listener: TcpListener,
        config: Config,
        options: Options,
    ) -> Result<Server, StartError> {
        let local_addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::default());
        let store = Store::open(
            &config.storage.dir,
            config.storage.sync,
            Duration::from_millis(config.storage.commit_delay_ms),
            metrics.clone(),
        )?;
        let hub = Arc::new(Hub::new(&config, store, metrics)?);
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let public_url: Arc<str> = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"))
            .trim_end_matches('/')
            .into();
        let state = AppState {
            hub: hub.clone(),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            options: Arc::new(options),
            public_url,
        };
        tracker.spawn(hub.clone().run_status_ticker(shutdown.clone()));
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Server {
            state,
            local_addr,
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

    /// The base URL used in printed links.
    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    /// The token that, once cancelled, shuts every task down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Graceful shutdown: stop accepting, close every socket with 1001, flush the store.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        let _ = self.accept.await;
        self.state.tracker.close();
        if tokio::time::timeout(self.grace, self.state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_secs = self.grace.as_secs(),
                "some connections did not close within the grace period"
            );
        }
        let hub = self.state.hub.clone();
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
    let router = routes::router(state.clone());
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
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let shutdown = state.shutdown.clone();
        state.tracker.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(64 * 1024);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "http connection ended with an error");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
}
