//! Upgrades a store written by an earlier version: the columns added since, with defaults that
//! mean "not known" to the code reading them.

use rusqlite::Connection;

/// Columns added after their table was first released: (table, column, definition).
const ADDED: &[(&str, &str, &str)] = &[
    // The hash of the last accepted post's body (0: not known), to tell a retry from new text.
    ("format_state", "body_hash", "INTEGER NOT NULL DEFAULT 0"),
];

/// Adds every column of [`ADDED`] its table lacks.
pub(super) fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
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
