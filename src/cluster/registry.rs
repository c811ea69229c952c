//! Organisers' changes cluster-wide. Every event made in the dashboard, every credential and
//! admin token (issued or revoked) and every transcript deletion is one entry of the registry
//! key-value bucket ([`record`]); every node watches the bucket and applies what another node
//! wrote to its own store (with the same audit entry) and registry, in well under a second,
//! and links the channels it gains to the cluster at once. A credential revoked on one node
//! closes its publishers on every node.
//!
//! At start a node applies the bucket's entries (the cluster's state wins) and writes the
//! ones it holds and the bucket lacks (a store from before the cluster). A stream message
//! for a channel this node does not know yet makes it read that event's entry first, so no
//! line of a just-made channel is lost.

mod record;

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::{links, ClusterError, Link, Node};
use crate::catalog::Origin;
use crate::channel::Channel;
use crate::hub::Hub;
use crate::organiser::{Change, Mirror, Organiser};
use crate::store::audit::AuditEntry;
use record::Envelope;

/// Pause before watching the bucket again after an error.
const REWATCH: Duration = Duration::from_millis(500);

/// This node's side of the registry bucket.
pub struct Registry {
    node: Weak<Node>,
    hub: Arc<Hub>,
    /// Weak: the organiser holds this registry as its mirror.
    organiser: Weak<Organiser>,
    kv: kv::Store,
    id: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("node", &self.id).finish()
    }
}

fn decode(entry: &kv::Entry) -> Option<Envelope> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    match serde_json::from_slice::<Envelope>(&entry.value) {
        Ok(e) if e.v <= record::VERSION => Some(e),
        Ok(e) => {
            tracing::error!(version = e.v, key = %entry.key, "a registry entry from a newer babelcast; upgrade this node (skipped)");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, key = %entry.key, "unreadable registry entry (skipped)");
            None
        }
    }
}

/// Starts sharing organisers' changes with the other nodes: applies the bucket, writes what
/// only this node holds, links every channel, then watches the bucket.
pub async fn start(node: &Arc<Node>, org: &Arc<Organiser>) -> Result<(), ClusterError> {
    let js_err = |what: &str, e: &dyn std::fmt::Display| ClusterError::JetStream {
        what: format!("registry bucket {}: {what}", node.cfg.registry_bucket),
        message: e.to_string(),
    };
    let kv = super::join::bucket(&node.js, &node.cfg, &node.cfg.registry_bucket, None).await?;
    let reg = Arc::new(Registry {
        node: Arc::downgrade(node),
        hub: org.hub.clone(),
        organiser: Arc::downgrade(org),
        kv,
        id: node.id.clone(),
    });
    let _ = node.registry.set(reg.clone());
    let mut keys = Vec::new();
    match reg.kv.keys().await {
        Ok(mut k) => {
            while let Some(key) = k.next().await {
                keys.push(key.map_err(|e| js_err("listing", &e))?);
            }
        }
        Err(e) => return Err(js_err("listing", &e)),
    }
    for key in &keys {
        if let Some(entry) = reg.kv.entry(key).await.map_err(|e| js_err("reading", &e))? {
            reg.apply(&entry).await;
        }
    }
    reg.publish_missing(&keys).await;
    links::sync(node, &reg.hub).await;
    org.set_mirror(reg.clone());
    node.tracker.spawn(watch(
        reg,
        node.connections.subscribe(),
        node.shutdown.clone(),
    ));
    Ok(())
}

impl Registry {
    /// Applies an entry. Applying is idempotent (revisions, revocation state, audit entries
    /// seen before), so this node's own entries are applied too: a node whose store was
    /// replaced learns its own earlier changes back.
    async fn apply(&self, entry: &kv::Entry) {
        let Some(env) = decode(entry) else { return };
        let Some((change, audit)) = env.change(&self.id) else {
            tracing::warn!(key = %entry.key, "a registry entry that cannot be applied (skipped)");
            return;
        };
        let Some(organiser) = self.organiser.upgrade() else {
            return;
        };
        if let Err(r) = organiser.apply_remote(change, audit).await {
            tracing::warn!(key = %entry.key, error = %r.message, "a change from another node could not be applied here");
        }
        if let Some(node) = self.node.upgrade() {
            links::sync(&node, &self.hub).await;
        }
    }

    /// Writes the events and credentials this node holds that the bucket lacks (a store that
    /// was single-node before joining, or a change made while NATS was unreachable).
    async fn publish_missing(&self, keys: &[String]) {
        let audit = AuditEntry {
            id: 0,
            ts: crate::clock::now_ms(),
            actor: "cluster".into(),
            action: "registry.publish".into(),
            target: String::new(),
            detail: "held by this node, not yet in the cluster".into(),
        };
        let mut changes = Vec::new();
        for ev in self.hub.events().iter() {
            if ev.def.origin == Origin::Stored && !keys.contains(&format!("ev.{}", ev.id)) {
                changes.push(Change::Event(ev.def.clone()));
            }
        }
        for c in self.hub.auth.all() {
            if !keys.contains(&format!("cred.{}", c.id)) {
                changes.push(Change::Credential(c.to_row()));
            }
        }
        for change in changes {
            self.put(&change, &audit).await;
        }
    }

    async fn put(&self, change: &Change, audit: &AuditEntry) {
        let (key, env) = Envelope::of(&self.id, change, audit);
        let value = serde_json::to_vec(&env).expect("a registry entry serialises");
        if let Err(e) = self.kv.put(&key, value.into()).await {
            tracing::error!(error = %e, key, "cannot share an organiser's change with the cluster; the other nodes get it when this node writes it again");
        }
    }

    /// Removes what JetStream keeps of an event's lines, but each channel's last message
    /// (the sequencer numbers from it): see docs/cluster.md.
    async fn purge_stream(&self, node: &Node, event: &str) {
        let filter = format!("{}.ev.{event}.>", node.cfg.subject_prefix);
        if let Err(e) = node.stream.purge().filter(filter).keep(1).await {
            tracing::warn!(error = %e, event, "cannot purge the event's lines from the stream");
        }
    }
}

impl Mirror for Registry {
    fn share<'a>(
        &'a self,
        change: &'a Change,
        audit: &'a AuditEntry,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let node = self.node.upgrade();
            if let Some(node) = &node {
                // Linked before the other nodes hear of it: a line published here at once
                // goes through the stream.
                links::sync(node, &self.hub).await;
                if let Change::TranscriptsDeleted(e) | Change::EventDeleted(e) = change {
                    self.purge_stream(node, e).await;
                }
            }
            self.put(change, audit).await;
        })
    }
}

/// Applies every change another node writes, until shutdown.
async fn watch(
    reg: Arc<Registry>,
    mut connections: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    while !shutdown.is_cancelled() {
        connections.borrow_and_update();
        match reg.kv.watch_all().await {
            Ok(mut w) => loop {
                let e = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    // A watch may not survive a NATS restart: watch again at once.
                    _ = connections.changed() => break,
                    e = w.next() => e,
                };
                match e {
                    Some(Ok(entry)) => reg.apply(&entry).await,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watching the registry bucket failed; watching again");
                        break;
                    }
                    None => break,
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot watch the registry bucket"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REWATCH) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The link of a stream subject this node does not know yet: a channel made at run time on
/// another node, whose event entry is read now.
pub(super) async fn link_subject(node: &Arc<Node>, subject: &str) -> Option<Arc<Link>> {
    let reg = node.registry.get()?.clone();
    let rest = subject.strip_prefix(&format!("{}.ev.", node.cfg.subject_prefix))?;
    let (event, channel) = rest.split_once('.')?;
    if reg.hub.channel(event, channel).is_none() {
        if let Ok(Some(entry)) = reg.kv.entry(format!("ev.{event}")).await {
            reg.apply(&entry).await;
        }
    }
    let ch = reg.hub.channel(event, channel)?;
    links::link(node, &reg.hub, ch).await
}

/// The link of a channel of this node's registry that is not linked yet.
pub(super) async fn link_channel(node: &Arc<Node>, ch: &Arc<Channel>) -> Option<Arc<Link>> {
    let reg = node.registry.get()?.clone();
    if ch.life.is_deleted() {
        return None;
    }
    links::link(node, &reg.hub, ch.clone()).await
}
