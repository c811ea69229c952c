//! Whether this node is in the cluster, told truthfully.
//!
//! A silent network drop leaves the NATS socket open with nothing flowing, and a stalled NATS
//! answers nothing: the connection state alone says "connected" for minutes. So the node
//! sends a heartbeat several times per `stale_after_secs` (a JetStream round trip: the stream's
//! info) with a deadline. When none succeeded for `stale_after_secs`, or the connection is
//! down, the node is **cut off**: `babelcast_cluster_connected` is 0, nobody is on air through
//! it, its publishers are refused at once (`cluster_unavailable`) and its listeners' status
//! says the feed is interrupted; the client is made to reconnect. It is back in the cluster
//! once a heartbeat succeeds and it has applied everything the stream held at that moment
//! (so its booths show the air as the cluster decided it meanwhile), after refreshing its
//! presence (so no node takes it for dead as it speaks again).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{lease, Node, NATS_TIMEOUT};

/// Heartbeats per `stale_after_secs`.
const BEATS_PER_STALE: u32 = 4;
/// Shortest time between two heartbeats.
const MIN_BEAT: Duration = Duration::from_millis(100);

/// Runs the heartbeats until shutdown. `link_up` follows the NATS client's connection events.
pub(super) async fn run(node: Arc<Node>, mut link_up: watch::Receiver<bool>) {
    let stale = node.cfg.stale_after();
    let every = (stale / BEATS_PER_STALE).max(MIN_BEAT);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            // A lost connection is acted on at once.
            r = link_up.changed() => if r.is_err() { return },
        }
        let up = *link_up.borrow_and_update() && node.connected();
        let mut last = None;
        if up {
            if let Ok(Ok(info)) = tokio::time::timeout(stale, node.stream.get_info()).await {
                heard = Instant::now();
                let l = info.state.last_sequence;
                node.stats.stream_last.store(l, Ordering::Relaxed);
                last = Some(l);
            }
        }
        match (node.in_cluster(), last) {
            (true, None) if !up || heard.elapsed() >= stale => {
                tracing::warn!(
                    silent_ms = heard.elapsed().as_millis() as u64,
                    connected = up,
                    "cut off from the cluster: nobody is on air through this node and its publishers are refused until NATS answers again"
                );
                set(&node, false);
                if node.connected() {
                    // A silent drop: the socket may never fail by itself.
                    let _ = node.client.force_reconnect().await;
                }
            }
            (false, Some(last)) if *node.cursor.borrow() >= last && back(&node).await => {
                tracing::info!("back in the cluster (caught up with the stream)");
                set(&node, true);
            }
            _ => {}
        }
    }
}

/// Refreshes this node's presence before it speaks again.
async fn back(node: &Node) -> bool {
    matches!(
        tokio::time::timeout(NATS_TIMEOUT, lease::announce(node)).await,
        Ok(Ok(_))
    )
}

/// Records whether this node is in the cluster and shows it in every booth and status. A
/// line in progress is cleared when the node is cut off: it will not be completed here.
fn set(node: &Node, up: bool) {
    if node.in_cluster.send_replace(up) != up {
        for link in node.links.all() {
            node.show(&link);
            if !up {
                link.channel.set_partial("");
            }
        }
    }
}
