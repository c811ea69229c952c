//! Per channel, turns submissions into stream messages carrying the channel's next seqs.
//!
//! Mechanism: each channel has its own subject; a node publishes a batch of events numbered
//! from its view of the channel (the last message it applied: stream sequence S, seq N) with
//! `Nats-Expected-Last-Subject-Sequence: S`. JetStream stores the message only if the last
//! message on the subject is still S, so seqs N+1… are given out exactly once cluster-wide;
//! a node that lost the race gets "wrong last sequence", catches up from the stream and
//! numbers the batch again. `Nats-Msg-Id` (one per batch) makes a re-publish after a lost
//! ack harmless: JetStream answers "duplicate" with the original sequence.
//!
//! Within a node, one batch per channel is in flight at a time; everything that queues
//! meanwhile goes into the next message (group commit, as the single-node writer does).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use tokio::sync::mpsc;

use super::{wire, Applied, Link, Node};
use crate::hub::Hub;
use crate::protocol::{ErrorCode, Refusal};
use crate::record::Kind;
use crate::store::{Append, Outcome, Request, Store, StoreError};

/// Most events in one stream message.
const MAX_BATCH: usize = 256;
/// Largest stream message we build, in bytes (NATS' default max payload is 1 MiB).
const MAX_BATCH_BYTES: usize = 512 * 1024;
/// Longest pause between two attempts to publish while NATS is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long an ack may wait for this node to store what JetStream already stored.
const APPLY_WAIT: Duration = Duration::from_secs(10);

fn shutting_down() -> Refusal {
    Refusal::shutting_down()
}

/// Routes submissions to their channel's sequencer.
pub(super) async fn dispatch(node: Arc<Node>, mut rx: mpsc::Receiver<Request>) {
    loop {
        let req = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            r = rx.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
        match node.link_of(&req.channel) {
            Some(link) => {
                if let Err(mpsc::error::SendError(req)) = link.queue.send(req).await {
                    let _ = req.reply.send(Err(shutting_down()));
                }
            }
            None => {
                let _ = req.reply.send(Err(Refusal::new(
                    ErrorCode::StorageUnavailable,
                    "this channel is not part of the cluster; nothing was stored",
                )));
            }
        }
    }
    rx.close();
    while let Ok(req) = rx.try_recv() {
        let _ = req.reply.send(Err(shutting_down()));
    }
}

/// One channel's sequencer.
pub(super) async fn run(
    node: Arc<Node>,
    hub: Arc<Hub>,
    link: Arc<Link>,
    mut rx: mpsc::Receiver<Request>,
) {
    loop {
        let first = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            r = rx.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
        let mut bytes = size_of(&first);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += size_of(&r);
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        commit(&node, &hub, &link, batch).await;
    }
    rx.close();
    while let Ok(req) = rx.try_recv() {
        let _ = req.reply.send(Err(shutting_down()));
    }
}

fn size_of(r: &Request) -> usize {
    256 + match &r.append {
        Append::Line { text, .. } => text.len(),
        Append::Edit { text, .. } => text.len(),
        Append::Handover(_) => 64,
    }
}

/// Sequences and publishes one batch, then acknowledges every submission in it.
async fn commit(node: &Arc<Node>, hub: &Arc<Hub>, link: &Arc<Link>, mut reqs: Vec<Request>) {
    let started = Instant::now();
    let deadline = started + node.cfg.publish_timeout();
    let batch_id = node.next_batch_id();
    let mut backoff = Duration::from_millis(50);
    // Numbered against this node's view; numbered again only after JetStream said another
    // message got in first (then ours is certainly not stored).
    let mut numbered: Option<(Applied, Vec<Outcome>, bytes::Bytes)> = None;
    loop {
        let (at, payload) = match &numbered {
            Some((at, _, payload)) => (*at, payload.clone()),
            None => {
                let at = *link.applied.borrow();
                let (back, decided) = decide_async(hub, link, at, reqs).await;
                reqs = back;
                let outcomes = match decided {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::error!(error = %e, "sequencing a batch failed");
                        for req in reqs {
                            let _ = req.reply.send(Err(Refusal::new(
                                ErrorCode::StorageUnavailable,
                                "the transcript store could not be read; nothing was stored, retry later",
                            )));
                        }
                        return;
                    }
                };
                let events: Vec<wire::Event> = outcomes
                    .iter()
                    .zip(&reqs)
                    .filter_map(|(o, req)| match o {
                        Outcome::Stored(r) => Some(wire::Event::from_record(r, req.partial_gen)),
                        _ => None,
                    })
                    .collect();
                if events.is_empty() {
                    reply(reqs, outcomes);
                    return;
                }
                let batch = wire::Batch {
                    v: wire::VERSION,
                    node: node.id.clone(),
                    events,
                };
                let payload =
                    bytes::Bytes::from(serde_json::to_vec(&batch).expect("batch serialises"));
                numbered = Some((at, outcomes, payload.clone()));
                (at, payload)
            }
        };
        let publish = PublishMessage::build()
            .payload(payload)
            .message_id(&batch_id)
            .expected_last_subject_sequence(at.stream_seq);
        let result = match node.js.send_publish(link.subject.clone(), publish).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match result {
            Ok(ack) => {
                let mut applied = link.applied.subscribe();
                let stored = tokio::time::timeout(
                    APPLY_WAIT,
                    applied.wait_for(|a| a.stream_seq >= ack.sequence),
                )
                .await;
                if !matches!(stored, Ok(Ok(_))) {
                    tracing::warn!(stream_seq = ack.sequence, "JetStream stored a batch this node has not applied yet; acknowledging (it is durable in the stream)");
                }
                node.stats.published.fetch_add(1, Ordering::Relaxed);
                node.stats.commit_to_ack.observe(started.elapsed());
                let (_, outcomes, _) = numbered.take().expect("numbered before publishing");
                reply(reqs, outcomes);
                return;
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                node.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                numbered = None;
                catch_up(node, link, at, deadline).await;
            }
            Err(e) => {
                node.stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, channel = %link.key, "publishing to JetStream failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = node.shutdown.cancelled() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if Instant::now() >= deadline || node.shutdown.is_cancelled() {
            node.stats
                .failures
                .fetch_add(reqs.len() as u64, Ordering::Relaxed);
            let secs = node.cfg.publish_timeout().as_secs();
            tracing::error!(channel = %link.key, events = reqs.len(), "JetStream did not confirm a batch within {secs}s");
            for req in reqs {
                let _ = req.reply.send(Err(Refusal::new(
                    ErrorCode::StorageUnavailable,
                    format!("the cluster's stream did not confirm within {secs}s; the line may not be stored: send it again (with the same id, it is stored once)"),
                )));
            }
            return;
        }
    }
}

fn reply(reqs: Vec<Request>, outcomes: Vec<Outcome>) {
    for (req, outcome) in reqs.into_iter().zip(outcomes) {
        let _ = req.reply.send(outcome.into_ack());
    }
}

/// Waits until this node applied the channel's last message in the stream.
async fn catch_up(node: &Node, link: &Link, at: Applied, deadline: Instant) {
    let last = match node
        .stream
        .get_last_raw_message_by_subject(&link.subject)
        .await
    {
        Ok(m) => m.sequence,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the channel's last stream message");
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
    };
    if last < at.stream_seq {
        tracing::error!(channel = %link.key, stream_last = last, applied = at.stream_seq,
            "the stream holds less of this channel than this node stored: was the stream deleted? nothing can be published until it is restored");
        tokio::time::sleep(Duration::from_millis(500)).await;
        return;
    }
    let mut applied = link.applied.subscribe();
    let wait = deadline.saturating_duration_since(Instant::now());
    let _ = tokio::time::timeout(wait, applied.wait_for(|a| a.stream_seq >= last)).await;
}

/// [`decide`], off the async threads when it has to read the store.
async fn decide_async(
    hub: &Arc<Hub>,
    link: &Arc<Link>,
    at: Applied,
    reqs: Vec<Request>,
) -> (Vec<Request>, Result<Vec<Outcome>, String>) {
    let reads = reqs.iter().any(|r| match &r.append {
        Append::Line { client_id, .. } => client_id.is_some(),
        Append::Edit { .. } => true,
        Append::Handover(_) => false,
    });
    if !reads {
        let decided = decide(&hub.store, link, at, &reqs).map_err(|e| e.to_string());
        return (reqs, decided);
    }
    let (hub, link) = (hub.clone(), link.clone());
    match tokio::task::spawn_blocking(move || {
        let decided = decide(&hub.store, &link, at, &reqs).map_err(|e| e.to_string());
        (reqs, decided)
    })
    .await
    {
        Ok(done) => done,
        // The submissions went down with the task: their publishers see `shutting_down`.
        Err(e) => (Vec::new(), Err(format!("sequencing task failed: {e}"))),
    }
}

/// Numbers a batch from `at`, applying the same rules as the single-node writer: a final
/// whose client id is stored is a duplicate; an edit needs a committed line, and from a
/// booth publisher the air or the line's authorship.
fn decide(
    store: &Store,
    link: &Link,
    at: Applied,
    reqs: &[Request],
) -> Result<Vec<Outcome>, StoreError> {
    let ch = &link.channel;
    let (ev, cid) = (&ch.info.event, &ch.info.id);
    let (mut seq, mut ts) = (at.seq, at.ts);
    let mut ids: HashMap<&str, u64> = HashMap::new();
    let mut lines: HashMap<u64, Option<&str>> = HashMap::new();
    let mut out = Vec::with_capacity(reqs.len());
    for req in reqs {
        let record = match &req.append {
            Append::Line {
                client_id, author, ..
            } => {
                if let Some(id) = client_id {
                    let known = match ids.get(id.as_str()) {
                        Some(s) => Some(*s),
                        None => store.client_id_seq(ev, cid, id)?,
                    };
                    if let Some(s) = known {
                        out.push(Outcome::Duplicate(s));
                        continue;
                    }
                    ids.insert(id, seq + 1);
                }
                lines.insert(seq + 1, author.as_deref());
                req.append.record(seq + 1, req.ts.max(ts))
            }
            Append::Handover(_) => req.append.record(seq + 1, req.ts.max(ts)),
            Append::Edit { of, editor, .. } => {
                let target: Option<Option<String>> = if *of > at.seq {
                    lines.get(of).map(|a| a.map(str::to_string))
                } else {
                    store
                        .event_author(ev, cid, *of)?
                        .filter(|(k, _)| *k == Kind::Line)
                        .map(|(_, a)| a)
                };
                if let Err(r) = crate::store::check_edit(*of, target, editor.as_ref()) {
                    out.push(Outcome::Refused(r));
                    continue;
                }
                req.append.record(seq + 1, req.ts.max(ts))
            }
        };
        seq = record.seq;
        ts = record.ts;
        out.push(Outcome::Stored(record));
    }
    Ok(out)
}
