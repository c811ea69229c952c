//! Per channel, turns submissions and changes of the air into stream messages carrying the
//! channel's next seqs and who is on air after them.
//!
//! Mechanism: each channel has its own subject; a node decides a batch against its view of
//! the channel (the last message it applied: stream sequence S, seq N, the air) and publishes
//! it with `Nats-Expected-Last-Subject-Sequence: S`. JetStream stores the message only if the
//! last message on the subject is still S, so seqs N+1… and the air are decided exactly once
//! cluster-wide; a node that lost the race gets "wrong last sequence", catches up from the
//! stream and decides the batch again (a line whose author lost the air is then refused).
//! `Nats-Msg-Id` (one per batch) makes a re-publish after a lost ack harmless: JetStream
//! answers "duplicate" with the original sequence.
//!
//! Within a node, one batch per channel is in flight at a time; everything that queues
//! meanwhile goes into the next message (group commit, as the single-node writer does).
//!
//! **Bounded waits:** every job is answered within `publish_timeout_secs` of its arrival
//! (a job that waited that long behind a slow batch is refused at once), a node cut off from
//! the cluster refuses at once, and shutdown ends every wait.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::air::Claim;
use super::decide::{decide_async, Answer, Decision};
use super::wire::{self, Holder};
use super::{Link, Node};
use crate::hub::Hub;
use crate::protocol::{ErrorCode, Refusal};
use crate::store::{Append, Request};

/// Most jobs in one stream message.
const MAX_BATCH: usize = 256;
/// Largest stream message we build, in bytes (NATS' default max payload is 1 MiB).
const MAX_BATCH_BYTES: usize = 512 * 1024;
/// Longest pause between two attempts to publish while NATS is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Something a channel's sequencer orders.
#[derive(Debug)]
pub(super) enum Job {
    /// A line, edit or handover to store. `by`: the booth publisher who sent it (`None`: an
    /// anonymous publisher, HTTP or a caption format).
    Store {
        req: Request,
        by: Option<Holder>,
        at: Instant,
    },
    /// A change of who is on air, answered with whether the air changed.
    Air {
        claim: Claim,
        reply: Option<oneshot::Sender<Result<bool, Refusal>>>,
        at: Instant,
    },
}

impl Job {
    fn arrived(&self) -> Instant {
        match self {
            Job::Store { at, .. } | Job::Air { at, .. } => *at,
        }
    }

    fn size(&self) -> usize {
        256 + match self {
            Job::Store { req, .. } => match &req.append {
                Append::Line { text, .. } | Append::Edit { text, .. } => text.len(),
                Append::Handover(_) => 64,
            },
            Job::Air { .. } => 64,
        }
    }

    fn answer(self, answer: Answer) {
        match (self, answer) {
            (Job::Store { req, .. }, Answer::Store(o)) => {
                let _ = req.reply.send(o.into_ack());
            }
            (Job::Air { reply, .. }, Answer::Air(a)) => {
                if let Some(reply) = reply {
                    let _ = reply.send(a);
                }
            }
            (job, _) => job.refuse(Refusal::new(
                ErrorCode::StorageUnavailable,
                "internal error: mismatched answer",
            )),
        }
    }

    pub(super) fn refuse(self, r: Refusal) {
        match self {
            Job::Store { req, .. } => {
                let _ = req.reply.send(Err(r));
            }
            Job::Air { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(r));
                }
            }
        }
    }
}

/// Routes submissions from [`Store::submit`](crate::store::Store::submit) (anonymous
/// publishers) to their channel's sequencer.
pub(super) async fn dispatch(node: Arc<Node>, mut rx: mpsc::Receiver<Request>) {
    loop {
        let req = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            r = rx.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
        if req.channel.life.is_deleted() {
            let _ = req
                .reply
                .send(Err(crate::channel::Lifecycle::gone_refusal()));
            continue;
        }
        let link = match node.link_of(&req.channel) {
            Some(l) => Some(l),
            // A channel made at run time, before the registry linked it.
            None => super::registry::link_channel(&node, &req.channel).await,
        };
        match link {
            Some(link) => {
                let job = Job::Store {
                    req,
                    by: None,
                    at: Instant::now(),
                };
                if let Err(mpsc::error::SendError(job)) = link.queue.send(job).await {
                    job.refuse(Refusal::shutting_down());
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
        let _ = req.reply.send(Err(Refusal::shutting_down()));
    }
}

/// One channel's sequencer.
pub(super) async fn run(
    node: Arc<Node>,
    hub: Arc<Hub>,
    link: Arc<Link>,
    mut rx: mpsc::Receiver<Job>,
) {
    loop {
        let first = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            r = rx.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
        let mut bytes = first.size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(j) => {
                    bytes += j.size();
                    batch.push(j);
                }
                Err(_) => break,
            }
        }
        commit(&node, &hub, &link, batch).await;
    }
    rx.close();
    while let Ok(job) = rx.try_recv() {
        job.refuse(Refusal::shutting_down());
    }
}

/// The refusal of jobs JetStream did not confirm in time, or that a cut stopped in flight:
/// they may or may not be stored.
fn unconfirmed(code: ErrorCode, why: &str) -> Refusal {
    Refusal::new(
        code,
        format!("{why}; the line may not be stored: send it again (with the same id, it is stored once)"),
    )
}

/// Why a batch gives up.
enum GiveUp {
    Deadline,
    Cut,
    Shutdown,
}

/// Decides and publishes one batch, then answers every job in it.
async fn commit(node: &Arc<Node>, hub: &Arc<Hub>, link: &Arc<Link>, jobs: Vec<Job>) {
    let timeout = node.cfg.publish_timeout();
    let secs = timeout.as_secs();
    let now = Instant::now();
    // Jobs that waited their whole time behind a slow batch are answered now.
    let (mut jobs, late): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| j.arrived() + timeout > now);
    if !late.is_empty() {
        node.stats
            .failures
            .fetch_add(late.len() as u64, Ordering::Relaxed);
        for job in late {
            job.refuse(Refusal::new(
                ErrorCode::StorageUnavailable,
                format!("the cluster's stream could not take it within {secs}s; nothing was stored: send it again"),
            ));
        }
    }
    let Some(first) = jobs.iter().map(Job::arrived).min() else {
        return;
    };
    if !node.in_cluster() {
        for job in jobs {
            job.refuse(Refusal::cluster_unavailable());
        }
        return;
    }
    let deadline = first + timeout;
    let started = std::time::Instant::now();
    let batch_id = node.next_batch_id();
    let mut backoff = Duration::from_millis(50);
    // Decided against this node's view; decided again only after JetStream said another
    // message got in first (then ours is certainly not stored).
    let mut numbered: Option<(u64, Decision, bytes::Bytes)> = None;
    let give_up = loop {
        let (expected, payload) = match &numbered {
            Some((expected, _, payload)) => (*expected, payload.clone()),
            None => {
                let at = link.applied.borrow().clone();
                let (back, decided) = decide_async(hub, link, at.clone(), jobs).await;
                jobs = back;
                let decision = match decided {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(error = %e, "sequencing a batch failed");
                        for job in jobs {
                            job.refuse(Refusal::new(
                                ErrorCode::StorageUnavailable,
                                "the transcript store could not be read; nothing was stored, retry later",
                            ));
                        }
                        return;
                    }
                };
                if decision.events.is_empty() && decision.air == at.air {
                    answer(node, jobs, decision);
                    return;
                }
                let batch = wire::Batch {
                    v: wire::VERSION,
                    node: node.id.clone(),
                    events: decision.events.clone(),
                    air: Some(decision.air.clone()),
                };
                let payload =
                    bytes::Bytes::from(serde_json::to_vec(&batch).expect("batch serialises"));
                numbered = Some((at.stream_seq, decision, payload.clone()));
                (at.stream_seq, payload)
            }
        };
        let publish = async {
            let msg = PublishMessage::build()
                .payload(payload)
                .message_id(&batch_id)
                .expected_last_subject_sequence(expected);
            match node.js.send_publish(link.subject.clone(), msg).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            }
        };
        let result = tokio::select! {
            r = tokio::time::timeout_at(deadline, publish) => match r {
                Ok(r) => r,
                Err(_) => break GiveUp::Deadline,
            },
            _ = node.cut() => break GiveUp::Cut,
            _ = node.shutdown.cancelled() => break GiveUp::Shutdown,
        };
        match result {
            Ok(ack) => {
                let mut applied = link.applied.subscribe();
                let wait = applied.wait_for(|a| a.stream_seq >= ack.sequence);
                if !matches!(tokio::time::timeout_at(deadline, wait).await, Ok(Ok(_))) {
                    tracing::warn!(stream_seq = ack.sequence, "JetStream stored a batch this node has not applied yet; acknowledging (it is durable in the stream)");
                }
                node.stats.published.fetch_add(1, Ordering::Relaxed);
                node.stats.commit_to_ack.observe(started.elapsed());
                let (_, decision, _) = numbered.take().expect("decided before publishing");
                answer(node, jobs, decision);
                return;
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                node.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                numbered = None;
                catch_up(node, link, expected, deadline).await;
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
        if Instant::now() >= deadline {
            break GiveUp::Deadline;
        }
        if node.shutdown.is_cancelled() {
            break GiveUp::Shutdown;
        }
    };
    let refusal = match give_up {
        GiveUp::Deadline => {
            tracing::error!(channel = %link.key, jobs = jobs.len(), "JetStream did not confirm a batch within {secs}s");
            unconfirmed(
                ErrorCode::StorageUnavailable,
                &format!("the cluster's stream did not confirm within {secs}s"),
            )
        }
        GiveUp::Cut => unconfirmed(
            ErrorCode::ClusterUnavailable,
            "this server lost contact with the cluster before the stream confirmed",
        ),
        GiveUp::Shutdown => Refusal::shutting_down(),
    };
    node.stats
        .failures
        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
    for job in jobs {
        job.refuse(refusal.clone());
    }
}

fn answer(node: &Node, jobs: Vec<Job>, decision: Decision) {
    // Changes of the air asked against an air that had moved: lost races.
    let lost = decision
        .answers
        .iter()
        .filter(|a| matches!(a, Answer::Air(Err(_))))
        .count();
    node.stats
        .booth_conflicts
        .fetch_add(lost as u64, Ordering::Relaxed);
    for (job, answer) in jobs.into_iter().zip(decision.answers) {
        job.answer(answer);
    }
}

/// Waits (until `deadline`) for this node to apply the channel's last message in the stream.
async fn catch_up(node: &Node, link: &Link, expected: u64, deadline: Instant) {
    let last = match tokio::time::timeout_at(
        deadline,
        node.stream.get_last_raw_message_by_subject(&link.subject),
    )
    .await
    {
        Err(_) => return,
        Ok(Ok(m)) => m.sequence,
        Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the channel's last stream message");
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
    };
    if last < expected {
        tracing::error!(channel = %link.key, stream_last = last, applied = expected,
            "the stream holds less of this channel than this node stored: was the stream deleted? nothing can be published until it is restored");
        tokio::time::sleep(Duration::from_millis(500)).await;
        return;
    }
    let mut applied = link.applied.subscribe();
    let _ = tokio::time::timeout_at(deadline, applied.wait_for(|a| a.stream_seq >= last)).await;
}
