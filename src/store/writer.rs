//! The writer thread: the single-node sequencer. It takes everything queued (plus an optional
//! `commit_delay`), assigns each event its channel's next seq inside one transaction, commits,
//! and only then makes the events visible ([`Channel::commit`]) and acknowledges them. Caption
//! stream states ([`Saved`]: HTTP caption formats, EBU-TT Live sequences) queued in the same
//! batch are written in the same transaction, after the events queued before them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::{
    check_edit, Append, Outcome, Request, Saved, MAX_BATCH, PAGE_LIMIT_LIFT, PAGE_LIMIT_UNCHANGED,
};
use crate::channel::Channel;
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, Refusal};
use crate::record::Kind;

/// What the writer thread is asked to do.
pub(super) enum Msg {
    Append(Request),
    /// Save a caption stream's state; answered once it is durable.
    Save(Saved, oneshot::Sender<Result<(), Refusal>>),
    /// An organiser's change (definitions, credentials, audit, deletions), run on the
    /// writer's connection after everything queued before it; it answers for itself.
    Run(Job),
    Shutdown,
}

/// A change run by the writer thread (see [`Store::write`](super::Store::write)).
pub(super) type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Everything one transaction writes.
#[derive(Default)]
struct Batch {
    events: Vec<Request>,
    states: Vec<(Saved, oneshot::Sender<Result<(), Refusal>>)>,
    /// Run after the lines and states, each in its own transaction.
    jobs: Vec<Job>,
}

impl Batch {
    fn len(&self) -> usize {
        self.events.len() + self.states.len() + self.jobs.len()
    }

    /// Adds a message; `false` for a shutdown request.
    fn take(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Append(r) => self.events.push(r),
            Msg::Save(s, reply) => self.states.push((s, reply)),
            Msg::Run(job) => self.jobs.push(job),
            Msg::Shutdown => return false,
        }
        true
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) metrics: Arc<Metrics>,
    pub(super) page_limit: Arc<AtomicU64>,
    /// SQLite's `max_page_count` when the store opened (what lifting a cap restores).
    pub(super) default_max_pages: i64,
}

impl Writer {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Msg>, commit_delay: Duration) {
        let mut batch = Batch::default();
        let mut stop = false;
        while !stop {
            if !rx.blocking_recv().is_some_and(|m| batch.take(m)) {
                break;
            }
            if !commit_delay.is_zero() {
                std::thread::sleep(commit_delay);
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => {
                        if !batch.take(m) {
                            stop = true;
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut batch);
        }
        // Drain what was queued before the shutdown request.
        while let Ok(m) = rx.try_recv() {
            batch.take(m);
            if batch.len() >= MAX_BATCH {
                self.commit_batch(&mut batch);
            }
        }
        self.commit_batch(&mut batch);
        rx.close();
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Append(r) => {
                    let _ = r.reply.send(Err(Refusal::shutting_down()));
                }
                Msg::Save(_, reply) => {
                    let _ = reply.send(Err(Refusal::shutting_down()));
                }
                // Dropped: its caller hears that the store stopped.
                Msg::Run(_) | Msg::Shutdown => {}
            }
        }
    }

    fn commit_batch(&mut self, batch: &mut Batch) {
        let jobs = std::mem::take(&mut batch.jobs);
        self.commit_lines(batch);
        for job in jobs {
            job(&mut self.conn);
        }
    }

    fn commit_lines(&mut self, batch: &mut Batch) {
        if batch.len() == 0 {
            return;
        }
        let limit = self.page_limit.swap(PAGE_LIMIT_UNCHANGED, Ordering::SeqCst);
        if limit != PAGE_LIMIT_UNCHANGED {
            let pages = match limit {
                PAGE_LIMIT_LIFT => self.default_max_pages,
                n => n as i64,
            };
            let set = self
                .conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get::<_, i64>(0)
                });
            tracing::info!(requested = pages, now = ?set, "store page cap changed");
        }
        let started = Instant::now();
        let result = self.write(&batch.events, &batch.states);
        self.metrics.store_commit.observe(started.elapsed());
        match result {
            Ok(outcomes) => {
                for (_, reply) in batch.states.drain(..) {
                    let _ = reply.send(Ok(()));
                }
                for (req, outcome) in batch.events.drain(..).zip(outcomes) {
                    // Visible only now, after the commit.
                    if let Outcome::Stored(record) = &outcome {
                        req.channel.commit(record, req.partial_gen);
                    }
                    let _ = req.reply.send(outcome.into_ack());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.events.len(), "transcript commit failed; nothing in this batch was stored");
                self.metrics
                    .store_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let refusal = || {
                    Refusal::new(
                        ErrorCode::StorageUnavailable,
                        "the transcript store could not write; nothing was stored, retry later",
                    )
                };
                for req in batch.events.drain(..) {
                    let _ = req.reply.send(Err(refusal()));
                }
                for (_, reply) in batch.states.drain(..) {
                    let _ = reply.send(Err(refusal()));
                }
            }
        }
    }

    fn write(
        &mut self,
        batch: &[Request],
        states: &[(Saved, oneshot::Sender<Result<(), Refusal>>)],
    ) -> rusqlite::Result<Vec<Outcome>> {
        let tx = self.conn.transaction()?;
        let mut next: HashMap<*const Channel, (u64, i64)> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (event, channel, seq, kind, ts, text, lang, of_seq, client_id, expected_lang, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut by_id = tx.prepare_cached(
                "SELECT seq FROM events WHERE event = ?1 AND channel = ?2 AND client_id = ?3",
            )?;
            let mut kind_of = tx.prepare_cached(
                "SELECT kind, author FROM events WHERE event = ?1 AND channel = ?2 AND seq = ?3",
            )?;
            for req in batch {
                let ch = &req.channel;
                // A channel the organiser replaced or deleted takes nothing more: its
                // replacement, restored from the store after this batch, numbers the lines.
                if ch.life.is_deleted() {
                    outcomes.push(Outcome::Refused(crate::channel::Lifecycle::gone_refusal()));
                    continue;
                }
                let (ev, cid) = (&ch.info.event, &ch.info.id);
                let counter = next
                    .entry(Arc::as_ptr(ch))
                    .or_insert_with(|| (ch.last_seq(), ch.last_ts()));
                let record = match &req.append {
                    Append::Line { client_id, .. } => {
                        if let Some(id) = client_id {
                            let existing: Option<i64> = by_id
                                .query_row(params![ev, cid, id], |r| r.get(0))
                                .optional()?;
                            if let Some(seq) = existing {
                                outcomes.push(Outcome::Duplicate(seq as u64));
                                continue;
                            }
                        }
                        req.append.record(counter.0 + 1, req.ts.max(counter.1))
                    }
                    Append::Handover(_) => req.append.record(counter.0 + 1, req.ts.max(counter.1)),
                    Append::Edit { of, editor, .. } => {
                        let target: Option<(String, Option<String>)> = kind_of
                            .query_row(params![ev, cid, *of as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()?;
                        let target = target
                            .filter(|(k, _)| k == Kind::Line.as_str())
                            .map(|(_, author)| author);
                        if let Err(r) = check_edit(*of, target, editor.as_ref()) {
                            outcomes.push(Outcome::Refused(r));
                            continue;
                        }
                        req.append.record(counter.0 + 1, req.ts.max(counter.1))
                    }
                };
                insert.execute(params![
                    ev,
                    cid,
                    record.seq as i64,
                    record.kind.as_str(),
                    record.ts,
                    record.text,
                    record.lang,
                    record.of.map(|v| v as i64),
                    record.client_id,
                    record.expected_lang,
                    record.author,
                ])?;
                *counter = (record.seq, record.ts);
                outcomes.push(Outcome::Stored(record));
            }
        }
        {
            // A state only ever moves forward (a late save of an older post is ignored).
            let mut save = tx.prepare_cached(
                "INSERT INTO format_state (event, channel, format, last_seq, epoch, line, reply, body_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (event, channel, format) DO UPDATE SET
                    last_seq = excluded.last_seq, epoch = excluded.epoch,
                    line = excluded.line, reply = excluded.reply, body_hash = excluded.body_hash
                 WHERE excluded.epoch > format_state.epoch
                    OR (excluded.epoch = format_state.epoch AND excluded.last_seq >= format_state.last_seq)",
            )?;
            let mut save_seq = tx.prepare_cached(
                "INSERT INTO ebutt_state (event, channel, ident, last_seq, epoch, screen, finals, saved_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (event, channel, ident) DO UPDATE SET
                    last_seq = excluded.last_seq, epoch = excluded.epoch, screen = excluded.screen,
                    finals = excluded.finals, saved_ms = excluded.saved_ms
                 WHERE excluded.epoch > ebutt_state.epoch
                    OR (excluded.epoch = ebutt_state.epoch AND excluded.last_seq >= ebutt_state.last_seq)",
            )?;
            // The sequences a channel remembers in memory, and no more, survive a restart.
            let mut prune = tx.prepare_cached(
                "DELETE FROM ebutt_state WHERE event = ?1 AND channel = ?2 AND ident NOT IN
                 (SELECT ident FROM ebutt_state WHERE event = ?1 AND channel = ?2
                  ORDER BY saved_ms DESC LIMIT ?3)",
            )?;
            for (state, _) in states {
                match state {
                    Saved::Format(s) => {
                        save.execute(params![
                            s.event,
                            s.channel,
                            s.format,
                            s.last_seq as i64,
                            s.epoch,
                            s.line,
                            s.reply,
                            i64::from(s.body_hash)
                        ])?;
                    }
                    Saved::Ebutt(s) => {
                        save_seq.execute(params![
                            s.event,
                            s.channel,
                            s.ident,
                            s.last_seq as i64,
                            s.epoch,
                            s.screen,
                            s.finals,
                            s.saved_ms
                        ])?;
                        prune.execute(params![s.event, s.channel, s.keep as i64])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(outcomes)
    }
}
