//! Deleting transcripts for good: an event's on request ("delete transcripts"), and lines
//! older than `storage.retention_days`. Deleted text leaves the disk, not just the listings:
//! the rows go from every table that held caption text (`events`, the caption formats' and
//! EBU-TT Live stream states), the store runs with `secure_delete` (freed space is zeroed),
//! and the write-ahead log is checkpointed and truncated, so no old page survives in it.
//!
//! What stays: each channel's last seq and time (`seq_floor`), so seqs are never given out
//! twice, and the audit entry saying who deleted what. Both hold no caption text.

use std::time::Duration;

use rusqlite::{params, Connection, Transaction};

/// Attempts at truncating the write-ahead log while readers still hold old pages.
const CHECKPOINT_ATTEMPTS: usize = 50;
/// Pause between two attempts.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(20);

/// What a deletion removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Stored lines, edits and handovers.
    pub events: u64,
    /// Caption stream states (lines in progress, last replies).
    pub states: u64,
}

/// Keeps each channel's last seq and time before its rows go (never lowered).
fn keep_floor(
    tx: &Transaction<'_>,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO seq_floor (event, channel, seq, ts)
             SELECT event, channel, MAX(seq), MAX(ts) FROM events WHERE {filter}
             GROUP BY event, channel
             ON CONFLICT (event, channel) DO UPDATE SET
                seq = MAX(seq_floor.seq, excluded.seq), ts = MAX(seq_floor.ts, excluded.ts)"
        ),
        args,
    )?;
    Ok(())
}

/// Deletes every stored line, edit and handover of `event` (of one `channel` when given) and
/// their caption stream states.
pub fn delete_transcripts(
    tx: &Transaction<'_>,
    event: &str,
    channel: Option<&str>,
) -> rusqlite::Result<Purged> {
    let (filter, args): (&str, Vec<&dyn rusqlite::ToSql>) = match &channel {
        Some(c) => ("event = ?1 AND channel = ?2", vec![&event, c]),
        None => ("event = ?1", vec![&event]),
    };
    keep_floor(tx, filter, &args)?;
    let events = tx.execute(&format!("DELETE FROM events WHERE {filter}"), &*args)? as u64;
    let mut states = 0;
    for table in ["format_state", "ebutt_state"] {
        states += tx.execute(&format!("DELETE FROM {table} WHERE {filter}"), &*args)? as u64;
    }
    Ok(Purged { events, states })
}

/// Deletes every line, edit and handover stored before `cutoff` (Unix ms), the EBU-TT Live
/// states saved before it, and the caption format states of channels with nothing newer.
pub fn delete_older_than(tx: &Transaction<'_>, cutoff: i64) -> rusqlite::Result<Purged> {
    // The floor of every channel that loses rows: its whole last seq, not the deleted part's.
    tx.execute(
        "INSERT INTO seq_floor (event, channel, seq, ts)
         SELECT event, channel, MAX(seq), MAX(ts) FROM events
         WHERE (event, channel) IN (SELECT DISTINCT event, channel FROM events WHERE ts < ?1)
         GROUP BY event, channel
         ON CONFLICT (event, channel) DO UPDATE SET
            seq = MAX(seq_floor.seq, excluded.seq), ts = MAX(seq_floor.ts, excluded.ts)",
        [cutoff],
    )?;
    let events = tx.execute("DELETE FROM events WHERE ts < ?1", [cutoff])? as u64;
    let mut states = tx.execute("DELETE FROM ebutt_state WHERE saved_ms < ?1", [cutoff])? as u64;
    states += tx.execute(
        "DELETE FROM format_state WHERE NOT EXISTS
            (SELECT 1 FROM events e WHERE e.event = format_state.event
                AND e.channel = format_state.channel AND e.ts >= ?1)",
        [cutoff],
    )? as u64;
    Ok(Purged { events, states })
}

/// The seq floor of a channel: its last seq and time before a deletion (0, 0 if none).
pub fn seq_floor(c: &Connection, event: &str, channel: &str) -> rusqlite::Result<(u64, i64)> {
    c.query_row(
        "SELECT COALESCE(MAX(seq), 0), COALESCE(MAX(ts), 0) FROM seq_floor
         WHERE event = ?1 AND channel = ?2",
        params![event, channel],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
    )
}

/// Moves every page of the write-ahead log into the database and truncates the log to zero
/// bytes, so the deleted rows' old pages are gone from it too; retried while a reader still
/// holds an old snapshot. Whether it completed.
pub fn truncate_wal(c: &Connection) -> bool {
    for _ in 0..CHECKPOINT_ATTEMPTS {
        match c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(0) => return true,
            Ok(_) => std::thread::sleep(CHECKPOINT_PAUSE),
            Err(e) => {
                tracing::warn!(error = %e, "cannot checkpoint the write-ahead log");
                return false;
            }
        }
    }
    tracing::warn!("the write-ahead log is still in use; it is truncated at the next checkpoint");
    false
}
