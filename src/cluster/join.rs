//! Joining the cluster: connecting to NATS, making sure the stream and the key-value buckets
//! exist ([`Joining::connect`]), then opening the replica, linking every channel to its
//! subjects and booth key and starting the node's tasks ([`Joining::start`]).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{applier, audience, booth, health, lease, sequencer, wire};
use super::{Applied, ClusterConfig, ClusterError, Link, Node, Stats, NATS_TIMEOUT};
use crate::config::{Config, SyncMode};
use crate::forward::Forwarder;
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::store::Request;

/// Submissions waiting for the dispatcher (publishers wait beyond this: backpressure).
const SUBMIT_QUEUE: usize = 8192;
/// Submissions waiting for one channel's sequencer.
const CHANNEL_QUEUE: usize = 1024;
/// How long connecting to NATS may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The stream's duplicate window: a batch re-published within it is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

fn js_err(what: impl Into<String>) -> impl FnOnce(&dyn std::fmt::Display) -> ClusterError {
    let what = what.into();
    move |e| ClusterError::JetStream {
        what,
        message: e.to_string(),
    }
}

/// A node that reached NATS and is about to start.
#[derive(Debug)]
pub struct Joining {
    cfg: ClusterConfig,
    id: String,
    sync: SyncMode,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    booth_kv: kv::Store,
    nodes_kv: kv::Store,
    tx: mpsc::Sender<Request>,
    rx: mpsc::Receiver<Request>,
    connections: watch::Sender<u64>,
    /// Whether the NATS client is connected, from its connection events.
    link_up: watch::Sender<bool>,
}

impl Joining {
    /// Connects to NATS and makes sure the stream and buckets exist.
    pub async fn connect(cfg: &ClusterConfig, config: &Config) -> Result<Joining, ClusterError> {
        let id = cfg.resolved_node_id();
        let addrs = cfg
            .nats_url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.parse::<async_nats::ServerAddr>()
                    .map_err(|e| ClusterError::Url(format!("{u:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let connections = watch::Sender::new(0u64);
        let link_up = watch::Sender::new(true);
        let (events, up) = (connections.clone(), link_up.clone());
        let client = async_nats::ConnectOptions::new()
            .name(format!("babelcast {id}"))
            .event_callback(move |event| {
                let (events, up) = (events.clone(), up.clone());
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            up.send_replace(true);
                            events.send_modify(|n| *n += 1);
                        }
                        async_nats::Event::Disconnected => {
                            up.send_replace(false);
                            tracing::warn!("lost the NATS connection; reconnecting")
                        }
                        other => tracing::info!(event = %other, "NATS"),
                    }
                }
            })
            .connection_timeout(CONNECT_TIMEOUT)
            // The client's own pings find a dead connection within a few of these.
            .ping_interval(cfg.stale_after())
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100 * (1 << attempts.min(4) as u64))
                    .min(Duration::from_secs(2))
            })
            .connect(addrs)
            .await
            .map_err(|e| ClusterError::Connect {
                url: redact(&cfg.nats_url),
                message: e.to_string(),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(NATS_TIMEOUT);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: cfg.stream.clone(),
                description: Some(
                    "babelcast: committed caption events, one subject per channel".into(),
                ),
                subjects: vec![format!("{}.ev.>", cfg.subject_prefix)],
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                duplicate_window: DUPLICATE_WINDOW,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| js_err(format!("stream {}", cfg.stream))(&e))?;
        let booth_kv = bucket(&js, cfg, &cfg.booth_bucket, None).await?;
        let nodes_kv = bucket(&js, cfg, &cfg.nodes_bucket, Some(cfg.presence_ttl())).await?;
        let (tx, rx) = mpsc::channel(SUBMIT_QUEUE);
        tracing::info!(node = %id, nats = %redact(&cfg.nats_url), stream = %cfg.stream, "joined the cluster's NATS");
        Ok(Joining {
            cfg: cfg.clone(),
            id,
            sync: config.storage.sync,
            client,
            js,
            stream,
            booth_kv,
            nodes_kv,
            tx,
            rx,
            connections,
            link_up,
        })
    }

    /// Where the store sends submissions (see [`Store::with_sequencer`](crate::store::Store::with_sequencer)).
    pub fn sequencer(&self) -> mpsc::Sender<Request> {
        self.tx.clone()
    }

    /// Starts the node's tasks, catches up from the stream, then returns (the server then
    /// accepts connections).
    /// Partials are relayed through `ingest`; `forwarders` run on the node holding the
    /// forwarding lease.
    pub async fn start(
        self,
        hub: &Arc<Hub>,
        ingest: &Arc<Ingest>,
        forwarders: Vec<Arc<Forwarder>>,
    ) -> Result<Arc<Node>, ClusterError> {
        let cfg = self.cfg;
        let replica = hub
            .store
            .open_replica(&cfg.stream, self.sync, hub.metrics.clone())?;
        let cursor = hub.store.replica_cursor(&cfg.stream)?;
        // Booth ids unique across nodes and runs, and below 2^53 (JavaScript numbers).
        let id_base = (rand::random::<u64>() % (1 << 20) + 1) << 32;
        let mut links = Vec::new();
        let mut queues = Vec::new();
        for ch in hub.all_channels() {
            let (event, id) = (&ch.info.event, &ch.info.id);
            let subject = format!("{}.ev.{event}.{id}", cfg.subject_prefix);
            let applied = match hub.store.replica_channel(&cfg.stream, event, id)? {
                Some(c) => Applied {
                    stream_seq: c.stream_seq,
                    seq: c.seq.max(ch.last_seq()),
                    ts: ch.last_ts(),
                    air: last_air(&self.stream, &subject).await?,
                },
                None if ch.last_seq() == 0 => Applied::default(),
                None => {
                    return Err(ClusterError::Foreign {
                        event: event.clone(),
                        channel: id.clone(),
                    })
                }
            };
            ch.booth.start_ids_at(id_base + 1);
            let key = format!("{event}.{id}");
            let entry = booth::fetch(&self.booth_kv, &key)
                .await
                .map_err(|e| js_err(format!("booth bucket {}", cfg.booth_bucket))(&e))?;
            let (queue, rx) = mpsc::channel(CHANNEL_QUEUE);
            let link = Arc::new(Link {
                subject,
                partial_subject: format!("{}.partial.{event}.{id}", cfg.subject_prefix),
                key,
                applied: watch::Sender::new(applied),
                partials: Mutex::default(),
                booth_entry: watch::Sender::new(entry),
                queue,
                channel: ch,
            });
            queues.push((link.clone(), rx));
            links.push(link);
        }
        let partials = self
            .client
            .subscribe(format!("{}.partial.>", cfg.subject_prefix))
            .await
            .map_err(|e| js_err("subscribing to partials")(&e))?;
        let audiences = self
            .client
            .subscribe(format!("{}.audience.*", cfg.subject_prefix))
            .await
            .map_err(|e| js_err("subscribing to listener counts")(&e))?;
        let node = Arc::new(Node {
            id: self.id,
            client: self.client,
            js: self.js,
            stream: self.stream,
            booth_kv: self.booth_kv,
            nodes_kv: self.nodes_kv,
            links: super::links::Links::new(&links),
            registry: std::sync::OnceLock::new(),
            replica,
            cursor: watch::Sender::new(cursor),
            connections: self.connections,
            in_cluster: watch::Sender::new(true),
            boot: format!("{:08x}", rand::random::<u32>()),
            batches: AtomicU64::new(0),
            stats: Stats::default(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            cfg,
        });
        lease::announce(&node)
            .await
            .map_err(|e| js_err(format!("nodes bucket {}", node.cfg.nodes_bucket))(&e))?;
        ingest.set_arbiter(node.clone());
        super::audio::start(&node, ingest).await?;
        let t = &node.tracker;
        t.spawn(sequencer::dispatch(node.clone(), self.rx));
        for (link, rx) in queues {
            t.spawn(sequencer::run(node.clone(), hub.clone(), link.clone(), rx));
            t.spawn(booth::reconcile(node.clone(), link));
        }
        t.spawn(applier::run(node.clone(), cursor));
        t.spawn(applier::partials(node.clone(), partials));
        t.spawn(audience::run(node.clone(), audiences));
        t.spawn(booth::watch(node.clone()));
        t.spawn(lease::heartbeat(node.clone(), hub.clone(), forwarders));
        node.catch_up().await;
        t.spawn(health::run(node.clone(), self.link_up.subscribe()));
        Ok(node)
    }
}

/// Who is on air on a channel as of its last stream message (nobody when it has none). The
/// stream reader brings it up to date from there if this node is behind.
pub(super) async fn last_air(
    stream: &stream::Stream,
    subject: &str,
) -> Result<wire::Air, ClusterError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => Ok(serde_json::from_slice::<wire::Batch>(&m.payload)
            .ok()
            .and_then(|b| b.air)
            .unwrap_or_default()),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(wire::Air::default()),
        Err(e) => Err(js_err(format!("reading the last message of {subject}"))(&e)),
    }
}

/// Ensures a key-value bucket exists (created as a plain stream: works with nats-server 2.9).
pub(super) async fn bucket(
    js: &jetstream::Context,
    cfg: &ClusterConfig,
    name: &str,
    ttl: Option<Duration>,
) -> Result<kv::Store, ClusterError> {
    let err = || js_err(format!("key-value bucket {name}"));
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        description: Some("babelcast cluster state".into()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: ttl.unwrap_or_default(),
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| err()(&e))?;
    js.get_key_value(name).await.map_err(|e| err()(&e))
}

/// The URL without credentials, for logs and errors.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &u[..s + 3], &u[at..]),
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_log() {
        assert_eq!(
            redact("nats://user:secret@h1:4222,nats://h2:4222"),
            "nats://***@h1:4222,nats://h2:4222"
        );
    }
}
