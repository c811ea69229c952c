//! Cluster mode: the writer thread that stores events the JetStream stream already ordered.
//!
//! In a cluster the stream, not this node, fixes every event's seq (see `crate::cluster`).
//! Each node reads the stream in order and hands every message to its [`Replica`], which
//! writes the message's events into the same `events` table the single-node writer uses (so
//! transcripts, exports and `since=` resumes read the local store as before), records how far
//! it got in the same transaction (`cluster_cursor`, `cluster_channels`), and only then makes
//! the events visible with [`Channel::commit`], in seq order.
//!
//! Applying is idempotent: an event whose seq the channel already has is skipped, so a node
//! that restarts (or re-reads a message after a reconnect) never stores anything twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::mpsc;

use super::{open_conn, Store, StoreError};
use crate::channel::Channel;
use crate::config::SyncMode;
use crate::metrics::Metrics;
use crate::record::{Kind, Record};

/// Stream messages that may wait for the replica writer; the stream reader waits beyond this.
const QUEUE: usize = 4096;
/// Most stream messages in one transaction.
const MAX_BATCH: usize = 1024;
/// Longest pause between two attempts to write a batch that failed (disk full, I/O error).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cluster_cursor (
    stream TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cluster_channels (
    stream TEXT NOT NULL,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    stream_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (stream, event, channel)
) WITHOUT ROWID;
";

/// One stream message, ready to store.
pub struct Replicated {
    /// The channel the message belongs to; `None` for a channel this node does not serve
    /// (only the cursor moves).
    pub channel: Option<Arc<Channel>>,
    /// The message's events in seq order, each with the partial generation to clear (see
    /// [`Channel::commit`]).
    pub records: Vec<(Record, Option<u64>)>,
    /// The message's sequence in the stream.
    pub stream_seq: u64,
    /// Called once the message is durable here and visible to listeners.
    pub done: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for Replicated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicated")
            .field("stream_seq", &self.stream_seq)
            .field("events", &self.records.len())
            .finish()
    }
}

/// Where the stream left a channel on this node: the stream sequence of the last message
/// applied for it and the channel's seq after that message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCursor {
    pub stream_seq: u64,
    pub seq: u64,
}

/// Handle to the replica writer thread.
#[derive(Debug)]
pub struct Replica {
    tx: Mutex<Option<mpsc::Sender<Replicated>>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Store {
    /// Starts the replica writer for `stream` (creating its bookkeeping tables).
    pub fn open_replica(
        &self,
        stream: &str,
        sync: SyncMode,
        metrics: Arc<Metrics>,
    ) -> Result<Replica, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let conn = open_conn(&self.path, sync).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = ReplicaWriter {
            conn,
            metrics,
            stream: stream.to_string(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("babelcast-replica".into())
            .spawn(move || writer.run(rx))
            .expect("spawn replica writer thread");
        Ok(Replica {
            tx: Mutex::new(Some(tx)),
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The last stream sequence this node stored (0: none). Call after [`Store::open_replica`].
    pub fn replica_cursor(&self, stream: &str) -> Result<u64, StoreError> {
        self.with_reader(|c| {
            let seq: Option<i64> = c
                .query_row(
                    "SELECT seq FROM cluster_cursor WHERE stream = ?1",
                    params![stream],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(seq.unwrap_or(0) as u64)
        })
    }

    /// Where the stream left a channel on this node (`None`: no message of it applied yet).
    pub fn replica_channel(
        &self,
        stream: &str,
        event: &str,
        channel: &str,
    ) -> Result<Option<ChannelCursor>, StoreError> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT stream_seq, seq FROM cluster_channels
                 WHERE stream = ?1 AND event = ?2 AND channel = ?3",
                params![stream, event, channel],
                |r| {
                    Ok(ChannelCursor {
                        stream_seq: r.get::<_, i64>(0)? as u64,
                        seq: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
        })
    }

    /// The seq of the stored final with this client id, if any.
    pub fn client_id_seq(
        &self,
        event: &str,
        channel: &str,
        id: &str,
    ) -> Result<Option<u64>, StoreError> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT seq FROM events WHERE event = ?1 AND channel = ?2 AND client_id = ?3",
                params![event, channel, id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.map(|s| s as u64))
        })
    }

    /// The kind and author of the stored event `seq`, if any.
    pub fn event_author(
        &self,
        event: &str,
        channel: &str,
        seq: u64,
    ) -> Result<Option<(Kind, Option<String>)>, StoreError> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT kind, author FROM events WHERE event = ?1 AND channel = ?2 AND seq = ?3",
                params![event, channel, seq as i64],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .map(|v| v.map(|(k, a)| (Kind::parse(&k).unwrap_or(Kind::Line), a)))
        })
    }
}

impl Replica {
    /// Queues a stream message; waits when the writer is behind (backpressure to the reader).
    /// Gives the message back if the replica is closed.
    pub async fn apply(&self, msg: Replicated) -> Result<(), Replicated> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match tx {
            Some(tx) => tx.send(msg).await.map_err(|e| e.0),
            None => Err(msg),
        }
    }

    /// Stores what is queued and stops the writer (blocking: call from `spawn_blocking`).
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            // A batch that keeps failing is abandoned rather than blocking shutdown: the
            // stream still holds it and the next start applies it.
            let stopper = self.stop.clone();
            let watchdog = std::thread::spawn(move || {
                std::thread::sleep(MAX_RETRY_DELAY);
                stopper.store(true, Ordering::SeqCst);
            });
            let _ = handle.join();
            drop(watchdog);
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take();
    }
}

struct ReplicaWriter {
    conn: Connection,
    metrics: Arc<Metrics>,
    stream: String,
    stop: Arc<AtomicBool>,
}

impl ReplicaWriter {
    fn run(mut self, mut rx: mpsc::Receiver<Replicated>) {
        let mut batch = Vec::with_capacity(64);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut delay = Duration::from_millis(50);
            let applied = loop {
                let started = Instant::now();
                let result = self.write(&batch);
                self.metrics.store_commit.observe(started.elapsed());
                match result {
                    Ok(applied) => break Some(applied),
                    Err(e) => {
                        tracing::error!(error = %e, messages = batch.len(), "storing replicated events failed; retrying (the stream keeps them)");
                        self.metrics
                            .store_failures
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if self.stop.load(Ordering::SeqCst) {
                            break None;
                        }
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(MAX_RETRY_DELAY);
                    }
                }
            };
            let Some(applied) = applied else {
                return;
            };
            for (msg, fresh) in batch.drain(..).zip(applied) {
                if let Some(ch) = &msg.channel {
                    for i in fresh {
                        let (record, gen) = &msg.records[i];
                        ch.commit(record, *gen);
                    }
                }
                (msg.done)();
            }
        }
    }

    /// Writes a batch in one transaction; returns, per message, the indexes of its events that
    /// were new (the others were already stored).
    fn write(&mut self, batch: &[Replicated]) -> rusqlite::Result<Vec<Vec<usize>>> {
        let tx = self.conn.transaction()?;
        let mut applied = Vec::with_capacity(batch.len());
        let mut next: HashMap<*const Channel, u64> = HashMap::new();
        let mut cursor = 0u64;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (event, channel, seq, kind, ts, text, lang, of_seq, client_id, expected_lang, author)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut by_id = tx.prepare_cached(
                "SELECT seq FROM events WHERE event = ?1 AND channel = ?2 AND client_id = ?3",
            )?;
            let mut channel_cursor = tx.prepare_cached(
                "INSERT INTO cluster_channels (stream, event, channel, stream_seq, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (stream, event, channel)
                 DO UPDATE SET stream_seq = excluded.stream_seq, seq = excluded.seq",
            )?;
            for msg in batch {
                cursor = cursor.max(msg.stream_seq);
                let Some(ch) = &msg.channel else {
                    applied.push(Vec::new());
                    continue;
                };
                let (ev, cid) = (&ch.info.event, &ch.info.id);
                let last = next.entry(Arc::as_ptr(ch)).or_insert_with(|| ch.last_seq());
                let mut fresh = Vec::new();
                for (i, (record, _)) in msg.records.iter().enumerate() {
                    if record.seq <= *last {
                        continue;
                    }
                    if record.seq != *last + 1 {
                        // Cannot happen while the stream is the only writer; a store that was
                        // copied or edited by hand would need rebuilding from the stream.
                        tracing::error!(event = %ev, channel = %cid, seq = record.seq, last = *last,
                            "replicated event does not follow the stored ones; skipped (rebuild this node's storage.dir from the stream)");
                        continue;
                    }
                    // The sequencer checks client ids against the stream's order; a clash here
                    // (a store restored from an older copy) keeps the line and drops the id.
                    let mut client_id = record.client_id.as_deref();
                    if let Some(id) = client_id {
                        let clash: Option<i64> = by_id
                            .query_row(params![ev, cid, id], |r| r.get(0))
                            .optional()?;
                        if clash.is_some() {
                            tracing::warn!(event = %ev, channel = %cid, seq = record.seq, "client id already stored under another seq; storing the line without it");
                            client_id = None;
                        }
                    }
                    insert.execute(params![
                        ev,
                        cid,
                        record.seq as i64,
                        record.kind.as_str(),
                        record.ts,
                        record.text,
                        record.lang,
                        record.of.map(|v| v as i64),
                        client_id,
                        record.expected_lang,
                        record.author,
                    ])?;
                    *last = record.seq;
                    fresh.push(i);
                }
                channel_cursor.execute(params![
                    self.stream,
                    ev,
                    cid,
                    msg.stream_seq as i64,
                    *last as i64
                ])?;
                applied.push(fresh);
            }
            tx.execute(
                "INSERT INTO cluster_cursor (stream, seq) VALUES (?1, ?2)
                 ON CONFLICT (stream) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                params![self.stream, cursor as i64],
            )?;
        }
        tx.commit()?;
        Ok(applied)
    }
}
