//! How a node's sequencer decides a batch against the channel's last stream message: the
//! seqs, the dedupe of client ids, the edit rules, and who is on air (see [`air`](super::air)).
//! The decision is published with the expected last sequence of that message, so it is the
//! cluster's decision, or nothing (the node decides again from the message that got in first).

use std::collections::HashMap;
use std::sync::Arc;

use super::air;
use super::sequencer::Job;
use super::wire::{self, Air};
use super::{Applied, Link};
use crate::booth::Handover;
use crate::hub::Hub;
use crate::protocol::{ErrorCode, Refusal};
use crate::record::{Kind, Record};
use crate::store::{Append, Outcome, Store, StoreError};

/// The answer to one job of a batch.
#[derive(Debug)]
pub(super) enum Answer {
    Store(Outcome),
    /// A change of the air: whether the air changed, or why it was refused.
    Air(Result<bool, Refusal>),
}

/// A batch, decided.
#[derive(Debug)]
pub(super) struct Decision {
    /// Per job, in order.
    pub answers: Vec<Answer>,
    /// The events to store, numbered from the last message's seq.
    pub events: Vec<wire::Event>,
    /// Who is on air after the batch.
    pub air: Air,
}

/// [`decide`], off the async threads when it has to read the store.
pub(super) async fn decide_async(
    hub: &Arc<Hub>,
    link: &Arc<Link>,
    at: Applied,
    jobs: Vec<Job>,
) -> (Vec<Job>, Result<Decision, String>) {
    let reads = jobs.iter().any(|j| match j {
        Job::Store { req, .. } => match &req.append {
            Append::Line { client_id, .. } => client_id.is_some(),
            Append::Edit { .. } => true,
            Append::Handover(_) => false,
        },
        Job::Air { .. } => false,
    });
    if !reads {
        let decided = decide(&hub.store, link, &at, &jobs).map_err(|e| e.to_string());
        return (jobs, decided);
    }
    let (hub, link) = (hub.clone(), link.clone());
    match tokio::task::spawn_blocking(move || {
        let decided = decide(&hub.store, &link, &at, &jobs).map_err(|e| e.to_string());
        (jobs, decided)
    })
    .await
    {
        Ok(done) => done,
        // The jobs went down with the task: their publishers see `shutting_down`.
        Err(e) => (Vec::new(), Err(format!("sequencing task failed: {e}"))),
    }
}

/// The handover event at `seq`.
fn handover_record(seq: u64, ts: i64, h: Handover) -> Record {
    Append::Handover(h).record(seq, ts)
}

/// Numbers a batch from `at`, applying the rules of the single-node writer (a final whose
/// client id is stored is a duplicate; an edit needs a committed line, and from a booth
/// publisher the air or the line's authorship) and the booth's: a line is stored only if its
/// author holds the air at its place in the stream (a booth publisher takes a free channel by
/// speaking), and a change of the air applies only to the air it was asked against.
fn decide(store: &Store, link: &Link, at: &Applied, jobs: &[Job]) -> Result<Decision, StoreError> {
    let ch = &link.channel;
    let (ev, cid) = (&ch.info.event, &ch.info.id);
    let mut air = at.air.clone();
    let (mut seq, mut ts) = (at.seq, at.ts);
    let mut ids: HashMap<&str, u64> = HashMap::new();
    let mut lines: HashMap<u64, Option<&str>> = HashMap::new();
    let mut answers = Vec::with_capacity(jobs.len());
    let mut events = Vec::new();
    let mut push = |r: Record, pgen: Option<u64>, seq: &mut u64, ts: &mut i64| {
        (*seq, *ts) = (r.seq, r.ts);
        events.push(wire::Event::from_record(&r, pgen));
    };
    for job in jobs {
        let (req, by) = match job {
            Job::Air { claim, .. } => {
                let answer = air::apply(&mut air, claim).map(|(changed, handover)| {
                    if let Some(h) = handover {
                        let when = crate::clock::now_ms().max(ts);
                        push(handover_record(seq + 1, when, h), None, &mut seq, &mut ts);
                    }
                    changed
                });
                answers.push(Answer::Air(answer));
                continue;
            }
            Job::Store { req, by, .. } => (req, by.as_ref()),
        };
        let record = match &req.append {
            Append::Line {
                client_id, author, ..
            } => {
                let mut after = air.clone();
                let handover = match air::may_publish(&mut after, by) {
                    Ok((_, h)) => h,
                    Err(r) => {
                        answers.push(Answer::Store(Outcome::Refused(r)));
                        continue;
                    }
                };
                if let Some(id) = client_id {
                    let known = match ids.get(id.as_str()) {
                        Some(s) => Some(*s),
                        None => store.client_id_seq(ev, cid, id)?,
                    };
                    if let Some(s) = known {
                        answers.push(Answer::Store(Outcome::Duplicate(s)));
                        continue;
                    }
                }
                air = after;
                if let Some(h) = handover {
                    push(
                        handover_record(seq + 1, req.ts.max(ts), h),
                        None,
                        &mut seq,
                        &mut ts,
                    );
                }
                if let Some(id) = client_id {
                    ids.insert(id, seq + 1);
                }
                lines.insert(seq + 1, author.as_deref());
                req.append.record(seq + 1, req.ts.max(ts))
            }
            Append::Handover(_) => req.append.record(seq + 1, req.ts.max(ts)),
            Append::Edit { of, editor, .. } => {
                if by.is_none() && air.on.is_some() {
                    answers.push(Answer::Store(Outcome::Refused(Refusal::new(
                        ErrorCode::NotOnAir,
                        "a booth publisher is on air on this channel; publish from the booth",
                    ))));
                    continue;
                }
                // A booth publisher may correct while on air at this point of the stream.
                let editor = editor.clone().map(|mut e| {
                    if let Some(p) = by {
                        e.on_air = air.on.as_ref().is_some_and(|h| h.id == p.id);
                    }
                    e
                });
                let target: Option<Option<String>> = if *of > at.seq {
                    lines.get(of).map(|a| a.map(str::to_string))
                } else {
                    store
                        .event_author(ev, cid, *of)?
                        .filter(|(k, _)| *k == Kind::Line)
                        .map(|(_, a)| a)
                };
                if let Err(r) = crate::store::check_edit(*of, target, editor.as_ref()) {
                    answers.push(Answer::Store(Outcome::Refused(r)));
                    continue;
                }
                req.append.record(seq + 1, req.ts.max(ts))
            }
        };
        answers.push(Answer::Store(Outcome::Stored(record.clone())));
        push(record, req.partial_gen, &mut seq, &mut ts);
    }
    Ok(Decision {
        answers,
        events,
        air,
    })
}
