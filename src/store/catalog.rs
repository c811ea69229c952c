//! What organisers keep in the store besides transcripts: the events and channels made in the
//! dashboard (`event_defs`, `channel_defs`), publish credentials (`credentials`) and named
//! admin tokens (`admin_tokens`), of which only the SHA-256 digest is stored.
//!
//! Changes go through the writer thread ([`Store::write`]), in one transaction with their
//! audit entry, with the lines' durability (`storage.sync`): a change is answered only once
//! it is on disk, and a `kill -9` right after finds it there.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::oneshot;

use super::writer::Msg;
use super::{Store, StoreError};
use crate::catalog::{ChannelDef, EventDef, Origin};
use crate::protocol::EventState;

/// What the store keeps of a publish credential or an admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    /// Public id (`c_…` or `a_…`), not a secret.
    pub id: String,
    /// The event and channel a publish credential is for; `None` for an admin token.
    pub scope: Option<(String, String)>,
    /// The person (or booth seat, or program) it was given to.
    pub name: String,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    pub created_ms: i64,
    /// The admin who issued it.
    pub created_by: String,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub revoked_by: Option<String>,
}

impl Store {
    /// Runs `f` on the writer thread (after everything queued before it) and returns what it
    /// returned. `f` commits its own transaction.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        let path = self.path.clone();
        let job = Box::new(move |c: &mut Connection| {
            let _ = reply.send(f(c));
        });
        let stopped = || StoreError::Read("the store is shutting down".into());
        self.tx.send(Msg::Run(job)).await.map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())?
            .map_err(|source| StoreError::Sqlite { path, source })
    }

    /// Every event made in the dashboard, in creation order (blocking; at start).
    pub fn stored_events(&self) -> Result<Vec<EventDef>, StoreError> {
        self.with_reader(load_events)
    }

    /// Every publish credential and admin token, revoked ones too (blocking; at start).
    pub fn credentials(&self) -> Result<Vec<CredentialRow>, StoreError> {
        self.with_reader(|c| {
            let mut out = load_credentials(c, "credentials")?;
            out.extend(load_credentials(c, "admin_tokens")?);
            Ok(out)
        })
    }
}

fn phase_of(s: &str) -> EventState {
    EventState::parse(s).unwrap_or(EventState::Scheduled)
}

/// Reads every stored event with its channels.
pub fn load_events(c: &Connection) -> rusqlite::Result<Vec<EventDef>> {
    let mut events = c
        .prepare(
            "SELECT id, title, access_code, starts_at, ends_at, phase, transcript_public, rev
             FROM event_defs ORDER BY created_ms, id",
        )?
        .query_map([], |r| {
            Ok(EventDef {
                id: r.get(0)?,
                title: r.get(1)?,
                access_code: r.get(2)?,
                starts_at: r.get(3)?,
                ends_at: r.get(4)?,
                phase: phase_of(&r.get::<_, String>(5)?),
                transcript_public: r.get(6)?,
                channels: Vec::new(),
                origin: Origin::Stored,
                rev: r.get::<_, i64>(7)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = c.prepare(
        "SELECT id, lang, label, source, interpreted, takeover_after_secs FROM channel_defs
         WHERE event = ?1 ORDER BY position",
    )?;
    for ev in &mut events {
        ev.channels = stmt
            .query_map([&ev.id], |r| {
                Ok(ChannelDef {
                    id: r.get(0)?,
                    lang: r.get(1)?,
                    label: r.get(2)?,
                    source: r.get(3)?,
                    interpreted: r.get(4)?,
                    takeover_after_secs: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(events)
}

/// Writes an event and its channels as they are now (replacing what was stored).
pub fn save_event(tx: &Transaction<'_>, ev: &EventDef, now: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO event_defs (id, title, access_code, starts_at, ends_at, phase,
             transcript_public, rev, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title,
             access_code = excluded.access_code, starts_at = excluded.starts_at,
             ends_at = excluded.ends_at, phase = excluded.phase,
             transcript_public = excluded.transcript_public, rev = excluded.rev,
             updated_ms = excluded.updated_ms",
        params![
            ev.id,
            ev.title,
            ev.access_code,
            ev.starts_at,
            ev.ends_at,
            ev.phase.as_str(),
            ev.transcript_public,
            ev.rev as i64,
            now
        ],
    )?;
    tx.execute("DELETE FROM channel_defs WHERE event = ?1", [&ev.id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO channel_defs (event, id, position, lang, label, source, interpreted,
             takeover_after_secs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (i, c) in ev.channels.iter().enumerate() {
        insert.execute(params![
            ev.id,
            c.id,
            i as i64,
            c.lang,
            c.label,
            c.source,
            c.interpreted,
            c.takeover_after_secs.map(|v| v as i64)
        ])?;
    }
    Ok(())
}

/// Removes an event, its channels and its publish credentials.
pub fn delete_event(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM event_defs WHERE id = ?1", [id])?;
    tx.execute("DELETE FROM channel_defs WHERE event = ?1", [id])?;
    tx.execute("DELETE FROM credentials WHERE event = ?1", [id])?;
    Ok(())
}

/// Removes the publish credentials of one channel (it was deleted).
pub fn delete_channel_credentials(
    tx: &Transaction<'_>,
    event: &str,
    channel: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM credentials WHERE event = ?1 AND channel = ?2",
        [event, channel],
    )?;
    Ok(())
}

/// Writes a credential or admin token as it is now.
pub fn save_credential(tx: &Transaction<'_>, row: &CredentialRow) -> rusqlite::Result<()> {
    match &row.scope {
        Some((event, channel)) => tx.execute(
            "INSERT OR REPLACE INTO credentials (id, event, channel, name, hash, created_ms,
                 created_by, last_used_ms, revoked_ms, revoked_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                row.id,
                event,
                channel,
                row.name,
                &row.hash[..],
                row.created_ms,
                row.created_by,
                row.last_used_ms,
                row.revoked_ms,
                row.revoked_by
            ],
        )?,
        None => tx.execute(
            "INSERT OR REPLACE INTO admin_tokens (id, name, hash, created_ms, created_by,
                 last_used_ms, revoked_ms, revoked_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.id,
                row.name,
                &row.hash[..],
                row.created_ms,
                row.created_by,
                row.last_used_ms,
                row.revoked_ms,
                row.revoked_by
            ],
        )?,
    };
    Ok(())
}

/// Notes when a credential or admin token was last used.
pub fn touch_credential(c: &Connection, id: &str, ms: i64) -> rusqlite::Result<()> {
    for table in ["credentials", "admin_tokens"] {
        c.execute(
            &format!("UPDATE {table} SET last_used_ms = MAX(COALESCE(last_used_ms, 0), ?2) WHERE id = ?1"),
            params![id, ms],
        )?;
    }
    Ok(())
}

fn load_credentials(c: &Connection, table: &str) -> rusqlite::Result<Vec<CredentialRow>> {
    let scope = if table == "credentials" {
        "event, channel"
    } else {
        "NULL, NULL"
    };
    let sql = format!(
        "SELECT id, {scope}, name, hash, created_ms, created_by, last_used_ms, revoked_ms,
             revoked_by FROM {table} ORDER BY created_ms, id"
    );
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        let event: Option<String> = r.get(1)?;
        let channel: Option<String> = r.get(2)?;
        let hash: Vec<u8> = r.get(4)?;
        let mut h = [0u8; 32];
        if hash.len() == 32 {
            h.copy_from_slice(&hash);
        }
        Ok(CredentialRow {
            id: r.get(0)?,
            scope: event.zip(channel),
            name: r.get(3)?,
            hash: h,
            created_ms: r.get(5)?,
            created_by: r.get(6)?,
            last_used_ms: r.get(7)?,
            revoked_ms: r.get(8)?,
            revoked_by: r.get(9)?,
        })
    })?;
    rows.collect()
}

/// The stored revision of an event (`None`: not stored).
pub fn event_rev(c: &Connection, id: &str) -> rusqlite::Result<Option<u64>> {
    c.query_row("SELECT rev FROM event_defs WHERE id = ?1", [id], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|v| v.map(|v| v as u64))
}
