//! The audit log: every organiser action (who, when, what; never a secret, never caption
//! text), appended in the transaction of the change it records, kept when transcripts are
//! deleted, and read back newest first for the dashboard and exports.

use rusqlite::{params, Connection, Transaction};

use super::{Store, StoreError};

/// Most entries one read returns.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// One organiser action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing with time; page with `before`.
    pub id: i64,
    /// Unix ms.
    pub ts: i64,
    /// The admin token's name (`config` for the config file's token, `startup` for the one
    /// made at start), or `retention` for the store's own clean-up.
    pub actor: String,
    /// What was done, like `event.create` or `credential.revoke`.
    pub action: String,
    /// What it was done to, like `conf` or `conf/en` or a credential id.
    pub target: String,
    /// More for people (names, changed fields, counts); never a secret or caption text.
    pub detail: String,
}

/// Appends an entry (inside the change's own transaction).
pub fn append(tx: &Transaction<'_>, e: &AuditEntry) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (ts, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![e.ts, e.actor, e.action, e.target, e.detail],
    )?;
    Ok(())
}

/// Appends an entry unless the very same one is there already (a change from another node
/// seen again after a restart); whether it was new.
pub fn append_once(tx: &Transaction<'_>, e: &AuditEntry) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "INSERT INTO audit (ts, actor, action, target, detail)
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM audit
             WHERE ts = ?1 AND actor = ?2 AND action = ?3 AND target = ?4 AND detail = ?5)",
        params![e.ts, e.actor, e.action, e.target, e.detail],
    )?;
    Ok(n > 0)
}

fn read(c: &Connection, before: Option<i64>, limit: usize) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, ts, actor, action, target, detail FROM audit WHERE id < ?1
         ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![before.unwrap_or(i64::MAX), limit.min(MAX_AUDIT_PAGE) as i64],
        |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                ts: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                detail: r.get(5)?,
            })
        },
    )?;
    rows.collect()
}

impl Store {
    /// The newest `limit` entries older than entry `before` (all when `None`), newest first.
    pub async fn audit(
        self: &std::sync::Arc<Self>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let _slot = self.read_slot().await;
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.with_reader(|c| read(c, before, limit)))
            .await
            .map_err(|e| StoreError::Read(e.to_string()))?
    }
}
