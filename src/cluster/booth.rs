//! The on-air state of every channel, shared through a JetStream key-value bucket.
//!
//! Each node keeps its local [`Booth`](crate::booth::Booth) (its own publishers, the rules,
//! the frames) and one task per channel keeps it in step with the bucket entry
//! `{event}.{channel}` = [`BoothRecord`]:
//! - a change the local booth made (a publisher came on air, accepted a handover, asked for
//!   one, released, left) is written with the entry's revision as the expected one
//!   (compare-and-set); if another node wrote first, the local booth takes the bucket's
//!   state instead (its publisher is back on standby), so exactly one publisher is on air
//!   cluster-wide;
//! - a change another node wrote is mirrored into the local booth (not a handover: the
//!   deciding node stores that event);
//! - a publisher whose node stopped refreshing its presence (see [`super::lease`]) goes off
//!   air.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::wire::{BoothRecord, Holder};
use super::{Link, Node};
use crate::booth::SharedBooth;

/// The booth's shared part as the local booth understands it.
pub(super) fn shared_of(r: &BoothRecord) -> SharedBooth {
    SharedBooth {
        on_air: r.on_air.as_ref().map(|h| (h.id, h.name.clone())),
        request: r.request.as_ref().map(|h| (h.id, h.name.clone())),
        last_on_air: r.last.clone(),
    }
}

/// Shows the cluster's booth state on this node (publishers' booth frames, listeners' status).
fn mirror(link: &Link, record: &BoothRecord) {
    link.channel
        .booth
        .mirror(&shared_of(record), link.channel.audience());
    link.channel.refresh_status();
}

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

/// Feeds every change of the booth bucket to its channel's task.
pub(super) async fn watch(node: Arc<Node>) {
    let by_key: std::collections::HashMap<&str, &Arc<Link>> = node
        .by_channel
        .values()
        .map(|l| (l.key.as_str(), l))
        .collect();
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
                        if let Some(link) = by_key.get(entry.key.as_str()) {
                            let record = decode(&entry);
                            link.booth_entry.send_if_modified(|cur| {
                                let newer = entry.revision > cur.0;
                                if newer {
                                    *cur = (entry.revision, record);
                                }
                                newer
                            });
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

/// Keeps one channel's local booth and its bucket entry in step.
pub(super) async fn reconcile(node: Arc<Node>, link: Arc<Link>) {
    let booth = &link.channel.booth;
    let mut frames = booth.subscribe();
    let mut entries = link.booth_entry.subscribe();
    let mut known = entries.borrow_and_update().clone();
    // A restarted node may find its previous run's publishers in the entry.
    take_remote(&node, &link, &mut known).await;
    let mut tick = tokio::time::interval(node.cfg.presence_ttl() / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = true;
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            r = entries.changed() => {
                if r.is_err() {
                    return;
                }
                let e = entries.borrow_and_update().clone();
                if e.0 > known.0 {
                    known = e;
                    take_remote(&node, &link, &mut known).await;
                }
            }
            r = frames.changed() => {
                if r.is_err() {
                    return;
                }
                frames.borrow_and_update();
                dirty = true;
            }
            _ = tick.tick() => {
                // The watch is the fast path; this catches anything it missed (a NATS restart).
                if let Ok(latest) = fetch(&node.booth_kv, &link.key).await {
                    if latest.0 > known.0 {
                        known = latest;
                        take_remote(&node, &link, &mut known).await;
                    }
                }
                drop_dead(&node, &link, &mut known).await;
            }
        }
        if dirty {
            dirty = !push_local(&node, &link, &mut known).await;
        }
    }
}

/// Applies an entry another node wrote: clears this node's own stale holders (publishers
/// that are gone, say from before a restart), then mirrors it.
async fn take_remote(node: &Node, link: &Link, known: &mut (u64, BoothRecord)) {
    let booth = &link.channel.booth;
    let stale = |h: &Option<Holder>| {
        h.as_ref()
            .is_some_and(|h| h.node == node.id && !booth.is_member(h.id))
    };
    let (air, req) = (stale(&known.1.on_air), stale(&known.1.request));
    if air || req {
        let mut fixed = known.1.clone();
        if air {
            fixed.last = fixed.on_air.take().map(|h| h.name).or(fixed.last);
        }
        if req {
            fixed.request = None;
        }
        let _ = write(node, link, known, fixed).await;
    }
    mirror(link, &known.1);
}

/// Takes holders whose node stopped refreshing its presence off air.
async fn drop_dead(node: &Node, link: &Link, known: &mut (u64, BoothRecord)) {
    let dead = |h: &Option<Holder>| {
        let h = h.clone();
        async move {
            match h {
                Some(h) if h.node != node.id => {
                    matches!(node.nodes_kv.get(&h.node).await, Ok(None))
                }
                _ => false,
            }
        }
    };
    let (air, req) = (dead(&known.1.on_air).await, dead(&known.1.request).await);
    if !(air || req) {
        return;
    }
    let mut fixed = known.1.clone();
    if air {
        let h = fixed.on_air.take().expect("holder checked above");
        tracing::warn!(channel = %link.key, node = %h.node, publisher = %h.name, "the on-air publisher's node is gone; the channel is off air");
        fixed.last = Some(h.name);
    }
    if req {
        fixed.request = None;
    }
    if write(node, link, known, fixed).await.is_ok() {
        mirror(link, &known.1);
    }
}

/// Writes what the local booth decided, if it differs from the bucket. Returns false when
/// NATS could not be reached (try again later).
async fn push_local(node: &Node, link: &Link, known: &mut (u64, BoothRecord)) -> bool {
    let booth = &link.channel.booth;
    let local = booth.shared();
    let id = |p: &Option<(u64, String)>| p.as_ref().map(|(id, _)| *id);
    let cluster = &known.1;
    if id(&local.on_air) == cluster.on_air.as_ref().map(|h| h.id)
        && id(&local.request) == cluster.request.as_ref().map(|h| h.id)
    {
        return true;
    }
    let holder = |p: &Option<(u64, String)>| {
        let (id, name) = p.as_ref()?;
        let node_of = if booth.is_member(*id) {
            Some(node.id.clone())
        } else {
            [&cluster.on_air, &cluster.request]
                .into_iter()
                .flatten()
                .find(|h| h.id == *id)
                .map(|h| h.node.clone())
        };
        node_of.map(|n| Holder {
            node: n,
            id: *id,
            name: name.clone(),
        })
    };
    let wanted = BoothRecord {
        on_air: holder(&local.on_air),
        request: holder(&local.request),
        last: local.last_on_air.clone().or_else(|| cluster.last.clone()),
    };
    match write(node, link, known, wanted).await {
        Ok(true) => true,
        Ok(false) => {
            // Another node decided first: this booth takes the cluster's state.
            mirror(link, &known.1);
            true
        }
        Err(()) => false,
    }
}

/// Compare-and-set of the entry: `Ok(true)` written, `Ok(false)` lost the race (`known`
/// then holds the winner), `Err` NATS unreachable.
async fn write(
    node: &Node,
    link: &Link,
    known: &mut (u64, BoothRecord),
    record: BoothRecord,
) -> Result<bool, ()> {
    let value = serde_json::to_vec(&record).expect("booth record serialises");
    match node.booth_kv.update(&link.key, value.into(), known.0).await {
        Ok(rev) => {
            *known = (rev, record);
            Ok(true)
        }
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
            node.stats.booth_conflicts.fetch_add(1, Ordering::Relaxed);
            match fetch(&node.booth_kv, &link.key).await {
                Ok(latest) => {
                    *known = latest;
                    Ok(false)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the booth bucket");
                    Err(())
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, channel = %link.key, "cannot write the on-air state to NATS; retrying");
            Err(())
        }
    }
}

/// At shutdown: takes this node's publishers off air in the bucket at once (rather than
/// after the presence TTL).
pub(super) async fn release_all(node: &Node) {
    for link in node.by_channel.values() {
        let mut known = link.booth_entry.borrow().clone();
        if let Ok(latest) = fetch(&node.booth_kv, &link.key).await {
            known = latest;
        }
        let mine = |h: &Option<Holder>| h.as_ref().is_some_and(|h| h.node == node.id);
        if mine(&known.1.on_air) || mine(&known.1.request) {
            let mut fixed = known.1.clone();
            if mine(&fixed.on_air) {
                fixed.last = fixed.on_air.take().map(|h| h.name).or(fixed.last);
            }
            if mine(&fixed.request) {
                fixed.request = None;
            }
            let _ = write(node, link, &mut known, fixed).await;
        }
    }
}
