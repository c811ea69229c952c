//! The whole audience on every node: each node sends its listener count and its listeners'
//! feedback (last minute) per channel every [`INTERVAL`] over core NATS
//! (`{prefix}.audience.{node}`), and adds what the other nodes reported to its own
//! ([`Channel::set_remote_listeners`](crate::channel::Channel::set_remote_listeners),
//! [`Booth::set_remote_feedback`](crate::booth::Booth::set_remote_feedback)). A node that
//! stops reporting (gone, cut off) drops out after [`STALE`]. Status frames, booths and the
//! dashboard then count listeners and feedback cluster-wide; `/metrics` stays per node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use super::wire::{self, ChannelAudience};
use super::Node;
use crate::booth::FeedbackCounts;

/// How often a node reports its listeners.
pub(super) const INTERVAL: Duration = Duration::from_secs(2);
/// A report older than this no longer counts.
pub(super) const STALE: Duration = Duration::from_secs(7);

pub(super) async fn run(node: Arc<Node>, mut sub: async_nats::Subscriber) {
    let subject = format!("{}.audience.{}", node.cfg.subject_prefix, node.id);
    let mut tick = tokio::time::interval(INTERVAL);
    // Per other node: when it last reported, and its audience per booth key.
    let mut others: HashMap<String, (Instant, HashMap<String, ChannelAudience>)> = HashMap::new();
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tick.tick() => {
                let report = wire::Audience {
                    node: node.id.clone(),
                    channels: node
                        .links
                        .all()
                        .iter()
                        .map(|l| {
                            let f = l.channel.booth.local_feedback_counts();
                            ChannelAudience {
                                key: l.key.clone(),
                                listeners: l.channel.listeners(),
                                feedback: [f.slower, f.unclear, f.lost],
                            }
                        })
                        .filter(|c| c.listeners > 0 || c.feedback != [0; 3])
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
                let counts = a.channels.into_iter().map(|c| (c.key.clone(), c)).collect();
                others.insert(a.node, (Instant::now(), counts));
            }
        }
        others.retain(|_, (at, _)| at.elapsed() < STALE);
        for link in node.links.all() {
            let (mut listeners, mut f) = (0, [0u32; 3]);
            for c in others
                .values()
                .filter_map(|(_, counts)| counts.get(&link.key))
            {
                // Saturating: these numbers come from the network.
                listeners = c.listeners.saturating_add(listeners);
                for (sum, n) in f.iter_mut().zip(c.feedback) {
                    *sum = sum.saturating_add(n);
                }
            }
            let feedback = FeedbackCounts {
                slower: f[0],
                unclear: f[1],
                lost: f[2],
            };
            let listeners_changed = link.channel.set_remote_listeners(listeners);
            if link.channel.booth.set_remote_feedback(feedback) | listeners_changed {
                link.channel.refresh_status();
            }
        }
    }
    let _ = sub.unsubscribe().await;
}
