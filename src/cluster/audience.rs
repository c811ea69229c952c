//! The whole audience on every node: each node sends its listener count per channel every
//! [`INTERVAL`] over core NATS (`{prefix}.audience.{node}`), and sums what the other nodes
//! reported into [`Channel::set_remote_listeners`](crate::channel::Channel::set_remote_listeners).
//! A node that stops reporting (gone, cut off) drops out after [`STALE`]. Status frames, the
//! booth and the dashboard then count listeners cluster-wide; `/metrics` stays per node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use super::{wire, Node};

/// How often a node reports its listeners.
pub(super) const INTERVAL: Duration = Duration::from_secs(2);
/// A report older than this no longer counts.
pub(super) const STALE: Duration = Duration::from_secs(7);

pub(super) async fn run(node: Arc<Node>, mut sub: async_nats::Subscriber) {
    let subject = format!("{}.audience.{}", node.cfg.subject_prefix, node.id);
    let mut tick = tokio::time::interval(INTERVAL);
    // Per other node: when it last reported, and its listeners per booth key.
    let mut others: HashMap<String, (Instant, HashMap<String, u64>)> = HashMap::new();
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tick.tick() => {
                let report = wire::Audience {
                    node: node.id.clone(),
                    channels: node
                        .by_channel
                        .values()
                        .map(|l| (l.key.clone(), l.channel.listeners()))
                        .filter(|(_, n)| *n > 0)
                        .collect(),
                };
                let payload = serde_json::to_vec(&report).expect("a report serialises");
                if let Err(e) = node.client.publish(subject.clone(), payload.into()).await {
                    tracing::debug!(error = %e, "listener count not sent");
                }
            }
            m = sub.next() => {
                let Some(m) = m else { break };
                let Ok(a) = serde_json::from_slice::<wire::Audience>(&m.payload) else {
                    continue;
                };
                if a.node == node.id {
                    continue;
                }
                others.insert(a.node, (Instant::now(), a.channels.into_iter().collect()));
            }
        }
        others.retain(|_, (at, _)| at.elapsed() < STALE);
        for link in node.by_channel.values() {
            let remote = others
                .values()
                .filter_map(|(_, counts)| counts.get(&link.key))
                .sum();
            if link.channel.set_remote_listeners(remote) {
                link.channel.refresh_status();
            }
        }
    }
    let _ = sub.unsubscribe().await;
}
