//! Several nodes on NATS JetStream (`[cluster]`): the stream orders every committed event and
//! every change of who is on air and fixes their seqs, every node stores and fans out what the
//! stream holds.
//!
//! The seam is narrow: [`Store::submit`](crate::store::Store::submit) sends events to this
//! module's sequencer instead of the single-node writer thread, the store's
//! [`Replica`](crate::store::replica::Replica) writes what the stream ordered, the node is the
//! ingest's [`Arbiter`] (every publisher message is admitted here), and the server holds the
//! [`Node`] (metrics, shutdown). Without `[cluster]` none of this runs.
//!
//! - [`sequencer`]: per channel, turns submissions and changes of the air into one stream
//!   message with the next seqs and who is on air, decided ([`decide`], [`air`]) against the
//!   channel's last message and published with `Nats-Expected-Last-Subject-Sequence`
//!   (compare-and-set on the channel's subject): no two nodes can ever give out the same seq,
//!   and who is on air at each point of a channel's stream is one decision for the cluster.
//! - [`admit`]: publisher messages in cluster mode (the air is asked of the stream, not
//!   decided by this node's booth).
//! - [`applier`]: reads the stream in order (an ordered consumer from this node's cursor)
//!   into the local store and [`Channel::commit`]; relays partials over core NATS.
//! - [`booth`]: keeps each local booth in step with the stream's air and the handover
//!   request (a key-value bucket); a publisher who left, or whose node is gone, goes off air.
//! - [`lease`]: node presence with a TTL, the forwarding lease.
//! - [`health`]: heartbeats with a deadline; a node that cannot reach the cluster counts
//!   itself cut off (nobody on air through it, its publishers refused at once, its listeners
//!   told the feed is interrupted) until it is back and caught up.
//! - [`audience`]: every node's listener counts over core NATS, so every node shows the
//!   channel's whole audience.
//! - [`audio`]: the sound every node heard, over core NATS (no persistence).
//! - [`join`]: connecting to NATS, the stream and buckets, and starting a node's tasks.
//! - [`wire`]: what nodes send each other.
//!
//! **Invariant:** a seq reaches listeners only after the stream has stored the event, and a
//! publisher's ack only after this node has stored and shown it as well.
//! See docs/cluster.md for the design and what "stored" means here.

mod admit;
mod air;
mod applier;
mod audience;
mod audio;
mod booth;
mod decide;
mod health;
mod join;
mod lease;
mod links;
pub mod registry;
mod sequencer;
pub mod wire;

pub use crate::config::ClusterConfig;
pub use join::Joining;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::channel::Channel;
use crate::ingest::{Admitted, Arbiter, Ingest, Publisher};
use crate::metrics::Histogram;
use crate::protocol::{ClientMsg, Refusal};
use crate::store::replica::Replica;
use crate::store::StoreError;

/// How long a NATS request (publish ack, stream lookup, key-value write) may take.
const NATS_TIMEOUT: Duration = Duration::from_secs(3);
/// What shutdown leaves the replica writer to store what it holds, even past the budget
/// (local SQLite: milliseconds).
const MIN_REPLICA_CLOSE: Duration = Duration::from_millis(200);

/// Why a node could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster.nats_url: {0}")]
    Url(String),
    #[error("cluster.nats_url: cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cluster: JetStream {what}: {message}")]
    JetStream { what: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "storage.dir holds transcripts of channel {event}/{channel} that are not in the cluster's stream \
         (a single-node store?); give every cluster node its own empty storage.dir, or the one it used in this cluster"
    )]
    Foreign { event: String, channel: String },
}

/// Where the stream left a channel on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Applied {
    /// Stream sequence of the channel's last applied message (0: none).
    stream_seq: u64,
    /// The channel's last seq in the stream.
    seq: u64,
    /// The channel's last timestamp.
    ts: i64,
    /// Who is on air after that message.
    air: wire::Air,
}

/// Partials received from other nodes, ordered against the finals that clear them.
#[derive(Debug, Default)]
struct Partials {
    /// The partial on show: `(node, its generation there, local generation)`.
    current: Option<(String, u64, u64)>,
    /// Per node, the highest partial generation a committed line has cleared.
    cleared: HashMap<String, u64>,
}

/// One channel as the cluster sees it.
#[derive(Debug)]
struct Link {
    channel: Arc<Channel>,
    /// `{prefix}.ev.{event}.{channel}`.
    subject: String,
    /// `{prefix}.partial.{event}.{channel}`.
    partial_subject: String,
    /// The booth bucket key, `{event}.{channel}`.
    key: String,
    applied: watch::Sender<Applied>,
    partials: Mutex<Partials>,
    /// The booth bucket's latest entry for this channel: `(revision, record)`.
    booth_entry: watch::Sender<(u64, wire::BoothRecord)>,
    queue: mpsc::Sender<sequencer::Job>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    published: AtomicU64,
    conflicts: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    booth_conflicts: AtomicU64,
    partials_in: AtomicU64,
    stream_last: AtomicU64,
    commit_to_ack: Histogram,
}

/// This process as a node of the cluster.
#[derive(Debug)]
pub struct Node {
    /// This node's id (`cluster.node_id`).
    pub id: String,
    cfg: ClusterConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    booth_kv: kv::Store,
    nodes_kv: kv::Store,
    /// Every channel linked to the cluster (channels made at run time too).
    links: links::Links,
    /// Organisers' changes shared with the other nodes (set once the organiser exists).
    registry: std::sync::OnceLock<Arc<registry::Registry>>,
    replica: Replica,
    /// The last stream sequence stored here.
    cursor: watch::Sender<u64>,
    /// Bumped on every (re)connection to NATS: readers start over from their cursor.
    connections: watch::Sender<u64>,
    /// Whether this node is in the cluster: NATS answers its heartbeats and it has caught up
    /// (see [`health`]). While not, nobody is on air through it and it refuses publishing.
    in_cluster: watch::Sender<bool>,
    /// Distinguishes this run's batch ids from a previous run's.
    boot: String,
    batches: AtomicU64,
    stats: Stats,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Arbiter for Node {
    fn admit<'a>(
        &'a self,
        ingest: &'a Ingest,
        channel: &'a Arc<Channel>,
        msg: ClientMsg,
        from: Option<Publisher<'a>>,
    ) -> Pin<Box<dyn Future<Output = Result<Admitted, Refusal>> + Send + 'a>> {
        Box::pin(self.admit(ingest, channel, msg, from))
    }

    fn joined<'a>(
        &'a self,
        channel: &'a Arc<Channel>,
        p: Publisher<'a>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.joined(channel, p))
    }

    fn relay<'a>(
        &'a self,
        channel: &'a Arc<Channel>,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.relay_partial(channel, text))
    }
}

impl Node {
    /// Relays a partial to the other nodes (ephemeral: core NATS, not the stream).
    async fn relay_partial(&self, channel: &Arc<Channel>, text: &str) {
        let Some(link) = self.link_of(channel) else {
            return;
        };
        let msg = wire::Partial {
            node: self.id.clone(),
            gen: channel.partial_gen(),
            text: text.to_string(),
        };
        let payload = serde_json::to_vec(&msg).expect("partial serialises");
        if let Err(e) = self
            .client
            .publish(link.partial_subject.clone(), payload.into())
            .await
        {
            tracing::debug!(error = %e, "partial not relayed");
        }
    }
}

impl Node {
    fn link_of(&self, channel: &Arc<Channel>) -> Option<Arc<Link>> {
        self.links.channel(channel)
    }

    /// A batch id for `Nats-Msg-Id`, unique across nodes and runs.
    fn next_batch_id(&self) -> String {
        let n = self.batches.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}.{n}", self.id, self.boot)
    }

    /// Waits (at most `catch_up_timeout_secs`) until this node stored everything the stream
    /// held when it started.
    async fn catch_up(&self) {
        let last = match self.stream.get_info().await {
            Ok(info) => info.state.last_sequence,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stream's length; serving without waiting to catch up");
                return;
            }
        };
        self.stats.stream_last.store(last, Ordering::Relaxed);
        let mut cursor = self.cursor.subscribe();
        let from = *cursor.borrow();
        if from >= last {
            return;
        }
        tracing::info!(from, to = last, "catching up from the stream");
        let wait = self.cfg.catch_up_timeout();
        if tokio::time::timeout(wait, cursor.wait_for(|c| *c >= last))
            .await
            .is_err()
        {
            tracing::warn!(
                at = *cursor.borrow(),
                to = last,
                "still catching up after {}s; serving anyway (resumes may wait for the store)",
                wait.as_secs()
            );
        }
    }

    /// Whether the NATS connection is up.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether this node is in the cluster (connected, heard from NATS within
    /// `stale_after_secs`, caught up). While not, it cannot order anything.
    pub fn in_cluster(&self) -> bool {
        *self.in_cluster.borrow()
    }

    /// Resolves when this node is cut off from the cluster.
    async fn cut(&self) {
        let mut rx = self.in_cluster.subscribe();
        let _ = rx.wait_for(|up| !*up).await;
    }

    /// Shows a channel's air and handover request as the cluster decided them in its local
    /// booth (publishers' booth frames, listeners' status); nobody on air and the feed
    /// interrupted while this node is cut off.
    fn show(&self, link: &Link) {
        let cut = !self.in_cluster();
        let air = link.applied.borrow().air.clone();
        let request = link.booth_entry.borrow().1.request.clone();
        let on_air = if cut { None } else { air.on };
        let shared = crate::booth::SharedBooth {
            request: request
                .filter(|r| on_air.as_ref().is_none_or(|h| h.id != r.id))
                .map(|h| (h.id, h.name)),
            on_air: on_air.map(|h| (h.id, h.name)),
            last_on_air: air.last,
        };
        let ch = &link.channel;
        ch.booth.set_interrupted(cut);
        ch.booth.mirror(&shared, ch.audience());
        ch.refresh_status();
    }

    /// Cluster series for `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        let s = &self.stats;
        let cursor = *self.cursor.borrow();
        let last = s.stream_last.load(Ordering::Relaxed).max(cursor);
        let node = &self.id;
        for (name, kind, help, v) in [
            ("babelcast_cluster_connected", "gauge", "1 while this node is in the cluster: NATS answers its heartbeats within cluster.stale_after_secs and it has caught up with the stream.", u64::from(self.in_cluster())),
            ("babelcast_cluster_applied_seq", "gauge", "Last stream sequence stored on this node.", cursor),
            ("babelcast_cluster_stream_lag", "gauge", "Stream messages not yet stored on this node (refreshed every few seconds).", last - cursor),
            ("babelcast_cluster_published_total", "counter", "Stream messages this node published (each carries one or more events).", s.published.load(Ordering::Relaxed)),
            ("babelcast_cluster_seq_conflicts_total", "counter", "Publishes refused because another node took the channel's next seq first (then retried).", s.conflicts.load(Ordering::Relaxed)),
            ("babelcast_cluster_publish_retries_total", "counter", "Publishes retried after a NATS error or timeout.", s.retries.load(Ordering::Relaxed)),
            ("babelcast_cluster_publish_failures_total", "counter", "Events refused with storage_unavailable because JetStream did not confirm in time.", s.failures.load(Ordering::Relaxed)),
            ("babelcast_cluster_booth_conflicts_total", "counter", "Changes of the air (take, handover) refused because the air had moved in the stream, and handover requests that lost a compare-and-set race.", s.booth_conflicts.load(Ordering::Relaxed)),
            ("babelcast_cluster_partials_in_total", "counter", "Partials received from other nodes.", s.partials_in.load(Ordering::Relaxed)),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{node}\"}} {v}");
        }
        s.commit_to_ack.render(
            out,
            "babelcast_cluster_commit_seconds",
            "From a batch leaving the sequencer to JetStream storing it and this node applying it.",
        );
    }

    /// Stops the node within `budget`: hands its publishers' air back, stops every task,
    /// stores what the stream already delivered. Called after every connection closed. Never
    /// waits longer, even with NATS stalled: what is not done by then the presence TTL (the
    /// air) and the next start (the stream) take care of.
    pub async fn shutdown(self: &Arc<Self>, budget: Duration) {
        let start = tokio::time::Instant::now();
        let deadline = start + budget;
        if tokio::time::timeout_at(start + budget / 2, booth::release_all(self))
            .await
            .is_err()
        {
            tracing::warn!(
                "could not hand this node's publishers' air back in time; the presence TTL will"
            );
        }
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("cluster tasks did not stop in time");
        }
        let farewell = async {
            let _ = self.nodes_kv.delete(&self.id).await;
            let _ = self.client.flush().await;
        };
        let _ = tokio::time::timeout_at(deadline, farewell).await;
        let node = self.clone();
        let close = tokio::task::spawn_blocking(move || node.replica.close());
        let until = deadline.max(tokio::time::Instant::now() + MIN_REPLICA_CLOSE);
        if tokio::time::timeout_at(until, close).await.is_err() {
            tracing::warn!("the replica store did not close in time; the next start applies the rest from the stream");
        }
    }
}
