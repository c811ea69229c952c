//! The store's SQLite schema (transcript lines, the caption formats' stream states, EBU-TT
//! sequences) and how every connection to the database is opened: WAL, `secure_delete`, and
//! the configured `synchronous` level.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::config::SyncMode;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ts INTEGER NOT NULL,
    text TEXT NOT NULL,
    lang TEXT NOT NULL DEFAULT '',
    of_seq INTEGER,
    client_id TEXT,
    expected_lang TEXT,
    author TEXT,
    PRIMARY KEY (event, channel, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_client_id
    ON events (event, channel, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS format_state (
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    format TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    line TEXT NOT NULL,
    reply TEXT NOT NULL,
    PRIMARY KEY (event, channel, format)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ebutt_state (
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    ident TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    screen TEXT NOT NULL,
    finals TEXT NOT NULL,
    saved_ms INTEGER NOT NULL,
    PRIMARY KEY (event, channel, ident)
) WITHOUT ROWID;
";

pub(super) fn open_conn(path: &Path, sync: SyncMode) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Deleted transcripts leave no trace in freed pages (see `purge`).
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
        },
    )?;
    Ok(conn)
}
