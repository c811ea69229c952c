//! Upgrades a store written by an earlier version: the tables and columns added since, with
//! defaults that mean "not known" to the code reading them.

use rusqlite::Connection;

/// Tables added after the first release (organisers' definitions, credentials, audit, the
/// seq floor of deleted transcripts): created in older stores at open, empty.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS event_defs (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    access_code TEXT,
    starts_at INTEGER,
    ends_at INTEGER,
    phase TEXT NOT NULL,
    transcript_public INTEGER NOT NULL DEFAULT 0,
    rev INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_defs (
    event TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    lang TEXT NOT NULL,
    label TEXT NOT NULL,
    source TEXT,
    interpreted INTEGER NOT NULL,
    takeover_after_secs INTEGER,
    PRIMARY KEY (event, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_used_ms INTEGER,
    revoked_ms INTEGER,
    revoked_by TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS admin_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_used_ms INTEGER,
    revoked_ms INTEGER,
    revoked_by TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seq_floor (
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (event, channel)
) WITHOUT ROWID;
";

/// Columns added after their table was first released: (table, column, definition).
const ADDED: &[(&str, &str, &str)] = &[
    // The hash of the last accepted post's body (0: not known), to tell a retry from new text.
    ("format_state", "body_hash", "INTEGER NOT NULL DEFAULT 0"),
];

/// Creates the tables of [`TABLES`] and adds every column of [`ADDED`] its table lacks.
pub(super) fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(TABLES)?;
    for (table, column, definition) in ADDED {
        let present = conn
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists([table, column])?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}
