//! Durable transcripts in SQLite (WAL), written by one writer thread with group commit.
//!
//! The writer is the channel sequencer: it assigns each event the channel's next seq inside
//! the transaction, commits a whole batch (everything that queued while the previous commit
//! ran, plus an optional `commit_delay_ms`), and only then makes the events visible
//! ([`Channel::commit`]) and acknowledges them. A failed commit assigns nothing, so seqs never
//! have gaps and are never reused; a crash after commit loses nothing acked.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::channel::Channel;
use crate::config::SyncMode;
use crate::metrics::Metrics;
use crate::protocol::Refusal;
use crate::record::{Kind, Record};

pub mod audit;
pub mod catalog;
mod migrate;
pub mod purge;
pub mod replica;
mod request;
mod saved;
mod schema;
mod writer;

pub use request::{check_edit, Ack, Append, Editor, Outcome, Request};
pub use saved::{EbuttState, FormatState, Saved};
use schema::{open_conn, SCHEMA};

use writer::{Msg, Writer};

/// The database file inside `storage.dir`.
pub const DB_FILE: &str = "transcripts.db";
/// Requests that may wait for the writer; publishers wait (backpressure) beyond this.
const QUEUE: usize = 8192;
/// Reads from the store running at once; more wait their turn.
const MAX_CONCURRENT_READS: usize = 8;
/// Most events in one transaction.
const MAX_BATCH: usize = 2048;

/// Why the store could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create storage directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("transcript database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("a read of the transcript database stopped: {0}")]
    Read(String),
}

/// Handle to the transcript store; cheap to share behind an `Arc`.
pub struct Store {
    tx: mpsc::Sender<Msg>,
    path: PathBuf,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// Bounds concurrent reads (resumes reaching past memory, transcript exports, forwarder
    /// catch-up), so a crowd downloading transcripts cannot exhaust threads or descriptors.
    read_slots: tokio::sync::Semaphore,
    /// A page cap for the writer to apply before its next commit (see [`Store::set_page_limit`]).
    page_limit: Arc<AtomicU64>,
    /// Cluster mode: the sequencer that takes every submission instead of the writer thread.
    sequencer: Option<mpsc::Sender<Request>>,
}

/// `page_limit` value meaning "no change requested".
const PAGE_LIMIT_UNCHANGED: u64 = u64::MAX;
/// `page_limit` value meaning "lift the cap".
const PAGE_LIMIT_LIFT: u64 = 0;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and starts the writer thread.
    pub fn open(
        dir: &Path,
        sync: SyncMode,
        commit_delay: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = open_conn(&path, sync).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        migrate::upgrade(&conn).map_err(err)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let page_limit = Arc::new(AtomicU64::new(PAGE_LIMIT_UNCHANGED));
        let writer_limit = page_limit.clone();
        let writer = std::thread::Builder::new()
            .name("babelcast-store".into())
            .spawn(move || {
                let default_max_pages = conn
                    .query_row("PRAGMA max_page_count", [], |r| r.get::<_, i64>(0))
                    .unwrap_or(i64::from(u32::MAX - 1));
                Writer {
                    conn,
                    metrics,
                    page_limit: writer_limit,
                    default_max_pages,
                }
                .run(rx, commit_delay)
            })
            .expect("spawn store writer thread");
        Ok(Store {
            tx,
            path,
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_READS),
            page_limit,
            sequencer: None,
        })
    }

    /// Cluster mode: every later [`Store::submit`] goes to `sequencer` (the cluster's, which
    /// fixes seqs through JetStream) instead of the writer thread, which then only stores what
    /// the stream ordered (see [`replica`]). Without it the writer is the sequencer.
    pub fn with_sequencer(mut self, sequencer: mpsc::Sender<Request>) -> Store {
        self.sequencer = Some(sequencer);
        self
    }

    /// Caps the database at `pages` pages (SQLite's `max_page_count`, never below the current
    /// size), or lifts the cap with `None`; applied before the writer's next commit. A write
    /// past the cap fails with a real `SQLITE_FULL`, exactly as on a full disk: nothing of
    /// that batch is stored or acknowledged, publishers get `storage_unavailable`, and writing
    /// resumes once the cap is lifted. The fault tests use it to simulate a full disk.
    pub fn set_page_limit(&self, pages: Option<u64>) {
        let v = match pages {
            None => PAGE_LIMIT_LIFT,
            Some(n) => n.clamp(1, PAGE_LIMIT_UNCHANGED - 1),
        };
        self.page_limit.store(v, Ordering::SeqCst);
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues an event; the receiver resolves once it is durable (or refused).
    /// Waits when the writer queue is full (backpressure to the publisher).
    pub async fn submit(
        &self,
        channel: Arc<Channel>,
        append: Append,
        ts: i64,
        partial_gen: Option<u64>,
    ) -> oneshot::Receiver<Result<Ack, Refusal>> {
        let (reply, rx) = oneshot::channel();
        let req = Request {
            channel,
            append,
            ts,
            partial_gen,
            reply,
        };
        if let Some(sequencer) = &self.sequencer {
            if let Err(mpsc::error::SendError(req)) = sequencer.send(req).await {
                let _ = req.reply.send(Err(Refusal::shutting_down()));
            }
            return rx;
        }
        if let Err(mpsc::error::SendError(Msg::Append(req))) = self.tx.send(Msg::Append(req)).await
        {
            let _ = req.reply.send(Err(Refusal::shutting_down()));
        }
        rx
    }

    /// Stores an event and waits for its acknowledgement.
    pub async fn append(
        &self,
        channel: Arc<Channel>,
        append: Append,
        ts: i64,
        partial_gen: Option<u64>,
    ) -> Result<Ack, Refusal> {
        let rx = self.submit(channel, append, ts, partial_gen).await;
        rx.await.unwrap_or_else(|_| Err(Refusal::shutting_down()))
    }

    /// Flushes everything queued and stops the writer. Later appends are refused.
    pub fn close(&self) {
        let _ = self.tx.try_send(Msg::Shutdown).or_else(|e| match e {
            mpsc::error::TrySendError::Full(m) => self.tx.blocking_send(m).map_err(|_| ()),
            mpsc::error::TrySendError::Closed(_) => Ok(()),
        });
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                open_conn(&self.path, SyncMode::Normal).map_err(|source| StoreError::Sqlite {
                    path: self.path.clone(),
                    source,
                })?
            }
        };
        let out = f(&conn).map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        });
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 4 {
            pool.push(conn);
        }
        out
    }

    /// A channel's last seq, last timestamp and its most recent `n` events (oldest first).
    pub fn load_channel(
        &self,
        event: &str,
        channel: &str,
        n: usize,
    ) -> Result<(u64, i64, Vec<Record>), StoreError> {
        self.with_reader(|c| {
            let (last_seq, last_ts): (Option<i64>, Option<i64>) = c.query_row(
                "SELECT MAX(seq), MAX(ts) FROM events WHERE event = ?1 AND channel = ?2",
                params![event, channel],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut recent = query_records(
                c,
                "SELECT seq, kind, ts, text, lang, of_seq, client_id, expected_lang, author FROM events
                 WHERE event = ?1 AND channel = ?2 ORDER BY seq DESC LIMIT ?3",
                params![event, channel, n as i64],
            )?;
            recent.reverse();
            // Deleted transcripts keep their channel's last seq: seqs are never reused.
            let (floor_seq, floor_ts) = purge::seq_floor(c, event, channel)?;
            let last_seq = (last_seq.unwrap_or(0) as u64).max(floor_seq);
            Ok((last_seq, last_ts.unwrap_or(0).max(floor_ts), recent))
        })
    }

    /// Events `after < seq <= upto` of a channel, read on a blocking thread while holding one
    /// of the bounded read slots: how resumes past memory, transcript exports and forwarders
    /// read history.
    pub async fn read_range(
        self: &Arc<Self>,
        event: &str,
        channel: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Record>, StoreError> {
        let _slot = self.read_slot().await;
        let (store, event, channel) = (self.clone(), event.to_string(), channel.to_string());
        tokio::task::spawn_blocking(move || store.range(&event, &channel, after, upto))
            .await
            .map_err(|e| StoreError::Read(e.to_string()))?
    }

    /// Waits for a read slot; hold it across the `spawn_blocking` read.
    async fn read_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.read_slots
            .acquire()
            .await
            .expect("the read semaphore is never closed")
    }

    /// Events with `after < seq <= upto`, oldest first (blocking: call from `spawn_blocking`,
    /// holding a [`read_slot`](Self::read_slot)).
    pub fn range(
        &self,
        event: &str,
        channel: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Record>, StoreError> {
        self.with_reader(|c| {
            query_records(
                c,
                "SELECT seq, kind, ts, text, lang, of_seq, client_id, expected_lang, author FROM events
                 WHERE event = ?1 AND channel = ?2 AND seq > ?3 AND seq <= ?4 ORDER BY seq",
                params![event, channel, after as i64, upto as i64],
            )
        })
    }
}

fn query_records(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| {
        let kind: String = r.get(1)?;
        Ok(Record {
            seq: r.get::<_, i64>(0)? as u64,
            kind: Kind::parse(&kind).unwrap_or(Kind::Line),
            ts: r.get(2)?,
            text: r.get(3)?,
            lang: r.get(4)?,
            of: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
            client_id: r.get(6)?,
            expected_lang: r.get(7)?,
            author: r.get(8)?,
        })
    })?;
    rows.collect()
}

impl Drop for Store {
    fn drop(&mut self) {
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            // With a full queue, detach instead: the writer drains and exits once our sender
            // is dropped, right after this.
            if self.tx.try_send(Msg::Shutdown).is_ok() {
                let _ = handle.join();
            }
        }
    }
}
