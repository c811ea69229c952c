//! The channels this node links to the cluster (a [`Link`]: its stream subject, partial
//! subject, booth key and sequencer queue), found by channel, subject or key. Channels made
//! at run time are linked while the node runs ([`link`]) and deleted ones forgotten, so the
//! maps are concurrent; lookups clone the `Arc` out and hold no guard.

use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{booth, sequencer, Applied, Link, Node};
use crate::channel::Channel;
use crate::hub::Hub;

/// Submissions waiting for a channel linked at run time (as `join`'s channels).
const CHANNEL_QUEUE: usize = 1024;

/// Every linked channel, by each of its names.
#[derive(Debug, Default)]
pub(super) struct Links {
    by_channel: DashMap<usize, Arc<Link>>,
    by_subject: DashMap<String, Arc<Link>>,
    by_partial: DashMap<String, Arc<Link>>,
    by_key: DashMap<String, Arc<Link>>,
    /// Stops the tasks of a channel linked at run time once it is deleted.
    stops: DashMap<usize, CancellationToken>,
}

fn ptr(ch: &Arc<Channel>) -> usize {
    Arc::as_ptr(ch) as usize
}

impl Links {
    pub(super) fn new(links: &[Arc<Link>]) -> Links {
        let l = Links::default();
        for link in links {
            l.insert(link.clone());
        }
        l
    }

    pub(super) fn insert(&self, link: Arc<Link>) {
        self.by_subject.insert(link.subject.clone(), link.clone());
        self.by_partial
            .insert(link.partial_subject.clone(), link.clone());
        self.by_key.insert(link.key.clone(), link.clone());
        self.by_channel.insert(ptr(&link.channel), link);
    }

    /// Forgets a deleted channel's link and stops its tasks.
    pub(super) fn remove(&self, ch: &Arc<Channel>) {
        if let Some((_, link)) = self.by_channel.remove(&ptr(ch)) {
            self.by_subject
                .remove_if(&link.subject, |_, l| Arc::ptr_eq(l, &link));
            self.by_partial
                .remove_if(&link.partial_subject, |_, l| Arc::ptr_eq(l, &link));
            self.by_key
                .remove_if(&link.key, |_, l| Arc::ptr_eq(l, &link));
        }
        if let Some((_, stop)) = self.stops.remove(&ptr(ch)) {
            stop.cancel();
        }
    }

    pub(super) fn channel(&self, ch: &Arc<Channel>) -> Option<Arc<Link>> {
        self.by_channel.get(&ptr(ch)).map(|l| l.clone())
    }

    pub(super) fn subject(&self, s: &str) -> Option<Arc<Link>> {
        self.by_subject.get(s).map(|l| l.clone())
    }

    pub(super) fn partial(&self, s: &str) -> Option<Arc<Link>> {
        self.by_partial.get(s).map(|l| l.clone())
    }

    pub(super) fn key(&self, k: &str) -> Option<Arc<Link>> {
        self.by_key.get(k).map(|l| l.clone())
    }

    /// Every linked channel now.
    pub(super) fn all(&self) -> Vec<Arc<Link>> {
        self.by_channel.iter().map(|l| l.clone()).collect()
    }
}

/// Links a channel made at run time (here or on another node) and starts its sequencer and
/// booth tasks; its link if it was not linked already.
pub(super) async fn link(node: &Arc<Node>, hub: &Arc<Hub>, ch: Arc<Channel>) -> Option<Arc<Link>> {
    if let Some(l) = node.links.channel(&ch) {
        return Some(l);
    }
    let (event, id) = (ch.info.event.clone(), ch.info.id.clone());
    let cfg = &node.cfg;
    let (store, stream, e, c) = (
        hub.store.clone(),
        cfg.stream.clone(),
        event.clone(),
        id.clone(),
    );
    let cursor = tokio::task::spawn_blocking(move || store.replica_channel(&stream, &e, &c))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let subject = format!("{}.ev.{event}.{id}", cfg.subject_prefix);
    let air = match super::join::last_air(&node.stream, &subject).await {
        Ok(air) => air,
        Err(e) => {
            tracing::warn!(error = %e, channel = %subject, "cannot read who is on air; not linked yet");
            return None;
        }
    };
    let applied = Applied {
        stream_seq: cursor.map_or(0, |c| c.stream_seq),
        seq: cursor.map_or(0, |c| c.seq).max(ch.last_seq()),
        ts: ch.last_ts(),
        air,
    };
    // Booth ids unique across nodes and runs, below 2^53 (as `join` gives them).
    ch.booth
        .start_ids_at(((rand::random::<u64>() % (1 << 20) + 1) << 32) + 1);
    let key = format!("{event}.{id}");
    let entry = match booth::fetch(&node.booth_kv, &key).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, channel = %key, "cannot read the channel's booth entry; not linked yet");
            return None;
        }
    };
    let (queue, rx) = mpsc::channel(CHANNEL_QUEUE);
    let link = Arc::new(Link {
        subject,
        partial_subject: format!("{}.partial.{event}.{id}", cfg.subject_prefix),
        key,
        applied: watch::Sender::new(applied),
        partials: Mutex::default(),
        booth_entry: watch::Sender::new(entry),
        queue,
        channel: ch.clone(),
    });
    if let Some(l) = node.links.channel(&ch) {
        return Some(l); // linked meanwhile
    }
    node.links.insert(link.clone());
    let stop = CancellationToken::new();
    node.links.stops.insert(ptr(&ch), stop.clone());
    let (n, h, l) = (node.clone(), hub.clone(), link.clone());
    let s = stop.clone();
    node.tracker.spawn(async move {
        tokio::select! {
            _ = s.cancelled() => {}
            _ = sequencer::run(n, h, l, rx) => {}
        }
    });
    let (n, l) = (node.clone(), link.clone());
    node.tracker.spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = booth::reconcile(n, l) => {}
        }
    });
    tracing::info!(channel = %link.key, "channel linked to the cluster");
    Some(link)
}

/// Links every channel of the registry not linked yet and forgets the ones it no longer has.
pub(super) async fn sync(node: &Arc<Node>, hub: &Arc<Hub>) {
    for ch in hub.all_channels() {
        link(node, hub, ch).await;
    }
    for l in node.links.all() {
        if l.channel.life.is_deleted() {
            node.links.remove(&l.channel);
        }
    }
}
