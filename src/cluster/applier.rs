//! Reads the stream in order into this node's store and channels, and relays partials.
//!
//! An ordered consumer (ephemeral, flow-controlled, no acks) starts right after this node's
//! cursor — the last stream sequence its store holds — so a restarted node catches up with
//! exactly what it missed. On any consumer error the reader starts a new one from the
//! cursor; messages it already applied are skipped, so nothing is applied twice.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures_util::StreamExt;

use super::{wire, Link, Node};
use crate::record::{Kind, Record};
use crate::store::replica::Replicated;

/// Longest pause before re-creating a consumer after an error.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the reader checks that it is not stuck behind the stream.
const STALL_CHECK: Duration = Duration::from_secs(2);

/// Reads the stream from `cursor + 1` until shutdown.
pub(super) async fn run(node: Arc<Node>, cursor: u64) {
    let mut next = cursor + 1;
    let mut backoff = Duration::from_millis(100);
    while !node.shutdown.is_cancelled() {
        let before = next;
        match read(&node, &mut next).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, at = next, "reading the stream stopped; starting again from this node's cursor")
            }
        }
        if next > before {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = node.shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One ordered consumer's life; `Ok` only on shutdown.
async fn read(node: &Arc<Node>, next: &mut u64) -> Result<(), String> {
    let deliver_policy = if *next <= 1 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: *next,
        }
    };
    let consumer = node
        .stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{}.ev.>", node.cfg.subject_prefix),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("creating the consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("reading the consumer: {e}"))?;
    let mut connections = node.connections.subscribe();
    connections.borrow_and_update();
    let mut check =
        tokio::time::interval_at(tokio::time::Instant::now() + STALL_CHECK, STALL_CHECK);
    let mut checked_at = *next;
    loop {
        let m = tokio::select! {
            _ = node.shutdown.cancelled() => return Ok(()),
            m = messages.next() => m,
            // A consumer may not survive a NATS restart: start a new one at once.
            _ = connections.changed() => return Err("reconnected to NATS".into()),
            _ = check.tick() => {
                let behind = node.stats.stream_last.load(Ordering::Relaxed) >= *next;
                if behind && checked_at == *next {
                    return Err("no progress while the stream is ahead".into());
                }
                checked_at = *next;
                continue;
            }
        };
        let m = match m {
            None => return Err("the consumer ended".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(m)) => m,
        };
        let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
        if seq < *next {
            continue;
        }
        if seq > *next {
            tracing::warn!(missing = seq - *next, from = *next, "stream messages were removed before this node read them (stream limits?): their events are missing here");
        }
        apply(node, m.message.subject.as_str(), &m.message.payload, seq).await?;
        *next = seq + 1;
    }
}

/// Hands one stream message to the replica writer.
async fn apply(node: &Arc<Node>, subject: &str, payload: &[u8], seq: u64) -> Result<(), String> {
    let link = match node.links.subject(subject) {
        Some(l) => Some(l),
        // A channel made at run time whose definition has not reached this node yet.
        None => super::registry::link_subject(node, subject).await,
    };
    let batch = match serde_json::from_slice::<wire::Batch>(payload) {
        Ok(b) if b.v <= wire::VERSION => Some(b),
        Ok(b) => {
            tracing::error!(
                version = b.v,
                seq,
                "stream message from a newer babelcast; upgrade this node (skipped)"
            );
            None
        }
        Err(e) => {
            tracing::error!(error = %e, seq, subject, "unreadable stream message (skipped)");
            None
        }
    };
    let (channel, records, air) = match (&link, batch) {
        (Some(link), Some(batch)) => {
            let remote = batch.node != node.id;
            let records: Vec<(Record, Option<u64>)> = batch
                .events
                .iter()
                .filter_map(|e| {
                    let r = e.to_record()?;
                    let gen = partial_to_clear(node, link, &batch.node, &r, e.pgen);
                    Some((r, gen))
                })
                .collect();
            if remote && records.iter().any(|(r, _)| r.kind == Kind::Line) {
                link.channel.booth.mark_active();
            }
            (Some(link.channel.clone()), records, batch.air)
        }
        _ => (None, Vec::new(), None),
    };
    let last_seq = records.iter().map(|(r, _)| r.seq).max();
    let (node2, link2) = (node.clone(), link.clone());
    let done = Box::new(move || {
        if let Some(link) = link2 {
            let mut moved = false;
            link.applied.send_modify(|a| {
                a.stream_seq = a.stream_seq.max(seq);
                a.seq = a
                    .seq
                    .max(last_seq.unwrap_or(0))
                    .max(link.channel.last_seq());
                a.ts = a.ts.max(link.channel.last_ts());
                if let Some(air) = air {
                    moved = a.air != air;
                    a.air = air;
                }
            });
            if moved {
                node2.show(&link);
            }
        }
        node2.cursor.send_modify(|c| *c = (*c).max(seq));
    });
    node.replica
        .apply(Replicated {
            channel,
            records,
            stream_seq: seq,
            done,
        })
        .await
        .map_err(|_| "the replica writer stopped".to_string())
}

/// The local partial generation a committed line clears, if the partial it completes is
/// still the one on show (see [`Channel::commit`](crate::channel::Channel::commit)).
fn partial_to_clear(
    node: &Node,
    link: &Link,
    origin: &str,
    r: &Record,
    pgen: Option<u64>,
) -> Option<u64> {
    if r.kind != Kind::Line {
        return None;
    }
    let gen = pgen?;
    if origin == node.id {
        return Some(gen);
    }
    let mut p = link.partials.lock().unwrap_or_else(|e| e.into_inner());
    let cleared = p.cleared.entry(origin.to_string()).or_insert(0);
    *cleared = (*cleared).max(gen);
    match &p.current {
        Some((n, g, local)) if n == origin && *g == gen => Some(*local),
        _ => None,
    }
}

/// Shows partials relayed by the other nodes.
pub(super) async fn partials(node: Arc<Node>, mut sub: async_nats::Subscriber) {
    loop {
        let m = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            m = sub.next() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let Some(link) = node.links.partial(m.subject.as_str()) else {
            continue;
        };
        let Ok(p) = serde_json::from_slice::<wire::Partial>(&m.payload) else {
            continue;
        };
        if p.node == node.id || !node.in_cluster() {
            continue;
        }
        // A partial of a publisher who lost the air (it crossed the change) is dropped.
        let from_air = match &link.applied.borrow().air.on {
            Some(h) => h.node == p.node,
            None => true,
        };
        if !from_air {
            continue;
        }
        let ch = &link.channel;
        {
            let mut st = link.partials.lock().unwrap_or_else(|e| e.into_inner());
            // A partial that arrives after the line completing it was committed is stale.
            if st.cleared.get(&p.node).is_some_and(|c| p.gen <= *c) {
                continue;
            }
            if st
                .current
                .as_ref()
                .is_some_and(|(n, g, _)| *n == p.node && p.gen <= *g)
            {
                continue;
            }
            ch.set_partial(&p.text);
            st.current = Some((p.node, p.gen, ch.partial_gen()));
        }
        ch.booth.mark_active();
        node.stats.partials_in.fetch_add(1, Ordering::Relaxed);
    }
    let _ = sub.unsubscribe().await;
}
