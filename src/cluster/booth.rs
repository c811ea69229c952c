//! Each channel's local booth kept in step with the cluster.
//!
//! Who is on air lives in the stream ([`wire::Air`](super::wire::Air), decided by the
//! sequencer, see [`air`](super::air)); the pending handover request lives in the booth
//! bucket, entry `{event}.{channel}` = [`BoothRecord`], written with compare-and-set on its
//! revision. One task per channel ([`reconcile`]):
//! - shows both in the local [`Booth`](crate::booth::Booth) (publishers' booth frames,
//!   listeners' status) whenever either changes;
//! - asks the stream to release the air of a publisher who left this node (or who held it
//!   before this node restarted), and clears their request;
//! - asks the stream to release the air of a publisher whose node stopped refreshing its
//!   presence (any node may; the stream orders it once), and clears such a request.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::air::Claim;
use super::wire::{BoothRecord, Holder};
use super::{Link, Node, NATS_TIMEOUT};
use crate::protocol::Refusal;

/// Attempts of a request write that keeps losing compare-and-set races.
const REQUEST_ATTEMPTS: usize = 5;

fn decode(entry: &kv::Entry) -> BoothRecord {
    match entry.operation {
        kv::Operation::Put => serde_json::from_slice(&entry.value).unwrap_or_default(),
        _ => BoothRecord::default(),
    }
}

/// The current entry for `key`: `(revision, record)`, revision 0 when there is none.
pub(super) async fn fetch(kv: &kv::Store, key: &str) -> Result<(u64, BoothRecord), kv::EntryError> {
    Ok(match kv.entry(key).await? {
        Some(e) => (e.revision, decode(&e)),
        None => (0, BoothRecord::default()),
    })
}

/// Takes a newer entry of the channel (from the watch, a read, or this node's own write).
fn take_entry(link: &Link, entry: (u64, BoothRecord)) -> bool {
    link.booth_entry.send_if_modified(|cur| {
        let newer = entry.0 > cur.0;
        if newer {
            *cur = entry;
        }
        newer
    })
}

/// Feeds every change of the booth bucket to its channel.
pub(super) async fn watch(node: Arc<Node>) {
    let mut connections = node.connections.subscribe();
    while !node.shutdown.is_cancelled() {
        connections.borrow_and_update();
        match node.booth_kv.watch_all().await {
            Ok(mut w) => loop {
                let e = tokio::select! {
                    _ = node.shutdown.cancelled() => return,
                    // A watch may not survive a NATS restart: watch again at once.
                    _ = connections.changed() => break,
                    e = w.next() => e,
                };
                match e {
                    Some(Ok(entry)) => {
                        if let Some(link) = node.links.key(entry.key.as_str()) {
                            take_entry(&link, (entry.revision, decode(&entry)));
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watching the booth bucket failed; watching again");
                        break;
                    }
                    None => break,
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot watch the booth bucket"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = node.shutdown.cancelled() => return,
        }
    }
}

/// Keeps one channel's local booth in step with the cluster (see the module doc).
pub(super) async fn reconcile(node: Arc<Node>, link: Arc<Link>) {
    let booth = &link.channel.booth;
    let mut frames = booth.subscribe();
    let mut entries = link.booth_entry.subscribe();
    let mut tick = tokio::time::interval(node.cfg.presence_ttl() / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    node.show(&link);
    // The publisher whose air this node asked the stream to release (not asked twice per tick).
    let mut releasing = None;
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            r = entries.changed() => {
                if r.is_err() {
                    return;
                }
                entries.borrow_and_update();
                node.show(&link);
            }
            r = frames.changed() => {
                if r.is_err() {
                    return;
                }
                frames.borrow_and_update();
            }
            _ = tick.tick() => {
                releasing = None;
                if node.in_cluster() {
                    // The watch is the fast path; this catches anything it missed (a NATS restart).
                    if let Ok(Ok(latest)) = tokio::time::timeout(NATS_TIMEOUT, fetch(&node.booth_kv, &link.key)).await {
                        take_entry(&link, latest);
                    }
                    drop_dead(&node, &link).await;
                }
            }
        }
        if node.in_cluster() {
            departed(&node, &link, &mut releasing).await;
        }
    }
}

/// Releases the air and clears the request of this node's publishers who are gone.
async fn departed(node: &Node, link: &Link, releasing: &mut Option<u64>) {
    let booth = &link.channel.booth;
    let gone = |h: &Option<Holder>| {
        h.as_ref()
            .filter(|h| h.node == node.id && !booth.is_member(h.id))
            .map(|h| h.id)
    };
    let on_air = link.applied.borrow().air.on.clone();
    if let Some(id) = gone(&on_air) {
        if *releasing != Some(id) {
            *releasing = Some(id);
            drop(node.claim(link, Claim::Release { id }).await);
        }
    }
    let request = link.booth_entry.borrow().1.request.clone();
    if let Some(id) = gone(&request) {
        let _ = set_request(node, link, |r| r.as_ref().is_some_and(|r| r.id == id), None).await;
    }
}

/// Whether a node stopped refreshing its presence.
async fn is_gone(node: &Node, id: &str) -> bool {
    let get = node.nodes_kv.get(id);
    matches!(tokio::time::timeout(NATS_TIMEOUT, get).await, Ok(Ok(None)))
}

/// Releases the air and clears the request of publishers whose node is gone.
async fn drop_dead(node: &Node, link: &Link) {
    let on_air = link.applied.borrow().air.on.clone();
    if let Some(h) = on_air.filter(|h| h.node != node.id) {
        if is_gone(node, &h.node).await {
            tracing::warn!(channel = %link.key, node = %h.node, publisher = %h.name, "the on-air publisher's node is gone; the channel goes off air");
            drop(node.claim(link, Claim::Release { id: h.id }).await);
        }
    }
    let request = link.booth_entry.borrow().1.request.clone();
    if let Some(r) = request.filter(|r| r.node != node.id) {
        if is_gone(node, &r.node).await {
            let _ = set_request(node, link, |cur| cur.as_ref() == Some(&r), None).await;
        }
    }
}

/// Sets the channel's handover request to `to` if `when` holds for the current one, by
/// compare-and-set on the booth bucket entry (against the newest entry after a lost race).
pub(super) async fn set_request(
    node: &Node,
    link: &Link,
    when: impl Fn(&Option<Holder>) -> bool,
    to: Option<Holder>,
) -> Result<(), Refusal> {
    for _ in 0..REQUEST_ATTEMPTS {
        let (rev, current) = link.booth_entry.borrow().clone();
        if !when(&current.request) || current.request == to {
            return Ok(());
        }
        let record = BoothRecord {
            request: to.clone(),
            ..BoothRecord::default()
        };
        let value: bytes::Bytes = serde_json::to_vec(&record)
            .expect("booth record serialises")
            .into();
        let write = async {
            if rev == 0 {
                node.booth_kv.create(&link.key, value).await.map_err(|e| {
                    let lost = e.kind() == kv::CreateErrorKind::AlreadyExists;
                    (lost, e.to_string())
                })
            } else {
                node.booth_kv
                    .update(&link.key, value, rev)
                    .await
                    .map_err(|e| {
                        let lost = e.kind() == kv::UpdateErrorKind::WrongLastRevision;
                        (lost, e.to_string())
                    })
            }
        };
        match tokio::time::timeout(NATS_TIMEOUT, write).await {
            Ok(Ok(rev)) => {
                take_entry(link, (rev, record));
                return Ok(());
            }
            Ok(Err((true, _))) => {
                // Another node wrote first: try again against its entry.
                node.stats.booth_conflicts.fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(NATS_TIMEOUT, fetch(&node.booth_kv, &link.key)).await {
                    Ok(Ok(latest)) => {
                        take_entry(link, latest);
                    }
                    _ => return Err(Refusal::cluster_unavailable()),
                }
            }
            Ok(Err((false, e))) => {
                tracing::warn!(error = %e, channel = %link.key, "cannot write the handover request to NATS");
                return Err(Refusal::cluster_unavailable());
            }
            Err(_) => return Err(Refusal::cluster_unavailable()),
        }
    }
    Err(Refusal::cluster_unavailable())
}

/// At shutdown: takes this node's publishers off air at once (rather than after the presence
/// TTL) and clears their requests.
pub(super) async fn release_all(node: &Node) {
    let links = node.links.all();
    let mine = |h: &Option<Holder>| h.as_ref().filter(|h| h.node == node.id).map(|h| h.id);
    let releases = links.iter().filter_map(|link| {
        let id = mine(&link.applied.borrow().air.on)?;
        Some(async move {
            let _ = node.claim(link, Claim::Release { id }).await.await;
        })
    });
    futures_util::future::join_all(releases).await;
    let requests = links.iter().filter_map(|link| {
        let id = mine(&link.booth_entry.borrow().1.request)?;
        Some(async move {
            let _ = set_request(node, link, |r| r.as_ref().is_some_and(|r| r.id == id), None).await;
        })
    });
    futures_util::future::join_all(requests).await;
}
