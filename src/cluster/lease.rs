//! This node's presence in the cluster and the forwarding lease: nodes refresh a presence
//! entry (`nodes_bucket`, expiring after `presence_ttl_secs`), and exactly one node holds the
//! lease that runs the egress forwarders, with their positions kept in the booth bucket so the
//! next holder continues where the last one stopped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_nats::jetstream::kv;

use super::wire::Presence;
use super::{Node, NATS_TIMEOUT};
use crate::forward::{self, Forwarder, PositionMirror};
use crate::hub::Hub;

/// Writes this node's presence once (before serving).
pub(super) async fn announce(node: &Node) -> Result<u64, kv::PutError> {
    let value = serde_json::to_string(&Presence {
        boot: node.boot.clone(),
    })
    .expect("presence serialises");
    node.nodes_kv.put(&node.id, value.into()).await
}

impl PositionMirror for Node {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(self.forward_position(name))
    }

    fn save<'a>(
        &'a self,
        name: &'a str,
        cursor: u64,
        value: String,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.save_forward_position(name, cursor, value))
    }
}

impl Node {
    /// A forwarder's position as the cluster last saw it, if any: `fwd={name}` in the booth
    /// bucket, which does not expire (no channel key has a `=`).
    async fn forward_position(&self, name: &str) -> Option<String> {
        let get = self.booth_kv.get(format!("fwd={name}"));
        match tokio::time::timeout(NATS_TIMEOUT, get).await {
            Ok(Ok(Some(v))) => String::from_utf8(v.to_vec()).ok(),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the forwarder position from the cluster");
                None
            }
            Err(_) => None,
        }
    }

    /// Saves a forwarder's position (`value`, whose first number is the channel seq handled,
    /// `cursor`) in the cluster, for the next holder of the lease. Never moves a saved position
    /// back: a node that lost the lease and saves late cannot undo the new holder's progress
    /// (compare-and-set on the entry's revision).
    async fn save_forward_position(&self, name: &str, cursor: u64, value: String) {
        let key = format!("fwd={name}");
        let save = async {
            for _ in 0..3 {
                let written = match self.booth_kv.entry(&key).await {
                    Ok(Some(e)) if e.operation == kv::Operation::Put => {
                        let saved = std::str::from_utf8(&e.value)
                            .ok()
                            .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok());
                        if saved.is_some_and(|s| s > cursor) {
                            return true;
                        }
                        self.booth_kv
                            .update(&key, value.clone().into(), e.revision)
                            .await
                            .is_ok()
                    }
                    Ok(_) => self
                        .booth_kv
                        .create(&key, value.clone().into())
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if written {
                    return true;
                }
            }
            false
        };
        if !matches!(tokio::time::timeout(NATS_TIMEOUT, save).await, Ok(true)) {
            tracing::warn!("cannot save the forwarder position in the cluster");
        }
    }
}

/// The nodes-bucket key of the forwarding lease (node ids cannot contain a dot).
const FORWARD_LEASE: &str = "lease.forward";

/// Refreshes this node's presence and the stream length (for the lag gauge), and holds or
/// seeks the forwarding lease: exactly one node runs the egress forwarders
/// (`[[events.channels.forward]]`), so Zoom or YouTube get every line once. The lease
/// expires with the presence TTL; another node takes it over then.
pub(super) async fn heartbeat(node: Arc<Node>, hub: Arc<Hub>, forwarders: Vec<Arc<Forwarder>>) {
    let every = node.cfg.presence_ttl() / 3;
    let mut lease: Option<(u64, tokio_util::sync::CancellationToken)> = None;
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = node.shutdown.cancelled() => break,
            }
            if let Err(e) = announce(&node).await {
                tracing::warn!(error = %e, "cannot refresh this node's presence in NATS");
            }
        }
        first = false;
        if let Ok(info) = node.stream.get_info().await {
            node.stats
                .stream_last
                .store(info.state.last_sequence, Ordering::Relaxed);
        }
        if forwarders.is_empty() {
            continue;
        }
        let value = bytes::Bytes::from(node.id.clone());
        lease = match lease.take() {
            Some((rev, stop)) => match node.nodes_kv.update(FORWARD_LEASE, value, rev).await {
                Ok(rev) => Some((rev, stop)),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the forwarding lease; this node's forwarders stop");
                    stop.cancel();
                    None
                }
            },
            None => match node.nodes_kv.create(FORWARD_LEASE, value).await {
                Ok(rev) => {
                    tracing::info!("this node holds the forwarding lease; starting the forwarders");
                    let stop = node.shutdown.child_token();
                    let mirror: Arc<dyn PositionMirror> = node.clone();
                    forward::spawn_all(&hub, &forwarders, Some(mirror), &node.tracker, &stop);
                    Some((rev, stop))
                }
                Err(_) => None,
            },
        };
    }
    if let Some((rev, stop)) = lease {
        stop.cancel();
        let _ = node
            .nodes_kv
            .delete_expect_revision(FORWARD_LEASE, Some(rev))
            .await;
    }
}
