//! What the registry bucket holds: one entry per event made in the dashboard (`ev.{id}`), per
//! credential or admin token (`cred.{id}`) and per transcript deletion (`purge.{event}`),
//! each with the node that wrote it and the change's audit entry. JSON; only a credential's
//! SHA-256 digest travels, never a token.

use serde::{Deserialize, Serialize};

use crate::catalog::{ChannelDef, EventDef, Origin};
use crate::organiser::Change;
use crate::protocol::EventState;
use crate::store::audit::AuditEntry;
use crate::store::catalog::CredentialRow;

/// The version of these records; a node skips newer ones (and says to upgrade).
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: String,
    pub lang: String,
    pub label: String,
    pub source: Option<String>,
    pub interpreted: bool,
    pub takeover_after_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: String,
    pub title: String,
    pub access_code: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub phase: EventState,
    pub transcript_public: bool,
    pub rev: u64,
    pub channels: Vec<ChannelRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub id: String,
    pub event: Option<String>,
    pub channel: Option<String>,
    pub name: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
    pub created_ms: i64,
    pub created_by: String,
    pub revoked_ms: Option<i64>,
    pub revoked_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// One change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    Event(EventRecord),
    EventDeleted { id: String },
    Credential(CredentialRecord),
    TranscriptsDeleted { event: String },
}

/// A registry entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    /// The node that made the change.
    pub node: String,
    pub item: Item,
    pub audit: Option<AuditRecord>,
}

impl Envelope {
    /// The entry for a change made on `node`, and its key.
    pub fn of(node: &str, change: &Change, audit: &AuditEntry) -> (String, Envelope) {
        let (key, item) = match change {
            Change::Event(d) => (format!("ev.{}", d.id), Item::Event(event_record(d))),
            Change::EventDeleted(id) => (format!("ev.{id}"), Item::EventDeleted { id: id.clone() }),
            Change::Credential(r) => (
                format!("cred.{}", r.id),
                Item::Credential(credential_record(r)),
            ),
            Change::TranscriptsDeleted(e) => (
                format!("purge.{e}"),
                Item::TranscriptsDeleted { event: e.clone() },
            ),
        };
        let audit = AuditRecord {
            ts: audit.ts,
            actor: audit.actor.clone(),
            action: audit.action.clone(),
            target: audit.target.clone(),
            detail: audit.detail.clone(),
        };
        let env = Envelope {
            v: VERSION,
            node: node.to_string(),
            item,
            audit: Some(audit),
        };
        (key, env)
    }

    /// The change this entry makes, and its audit entry as node `here` records it (another
    /// node's change says where it was made).
    pub fn change(self, here: &str) -> Option<(Change, Option<AuditEntry>)> {
        let node = self.node;
        let audit = self.audit.map(|a| AuditEntry {
            id: 0,
            ts: a.ts,
            actor: a.actor,
            action: a.action,
            target: a.target,
            detail: match (node == here, a.detail.is_empty()) {
                (true, _) => a.detail,
                (false, true) => format!("on node {node}"),
                (false, false) => format!("{} (on node {node})", a.detail),
            },
        });
        let change = match self.item {
            Item::Event(e) => Change::Event(event_def(e)),
            Item::EventDeleted { id } => Change::EventDeleted(id),
            Item::Credential(c) => Change::Credential(credential_row(c)?),
            Item::TranscriptsDeleted { event } => Change::TranscriptsDeleted(event),
        };
        Some((change, audit))
    }
}

pub fn event_record(d: &EventDef) -> EventRecord {
    EventRecord {
        id: d.id.clone(),
        title: d.title.clone(),
        access_code: d.access_code.clone(),
        starts_at: d.starts_at,
        ends_at: d.ends_at,
        phase: d.phase,
        transcript_public: d.transcript_public,
        rev: d.rev,
        channels: d
            .channels
            .iter()
            .map(|c| ChannelRecord {
                id: c.id.clone(),
                lang: c.lang.clone(),
                label: c.label.clone(),
                source: c.source.clone(),
                interpreted: c.interpreted,
                takeover_after_secs: c.takeover_after_secs,
            })
            .collect(),
    }
}

fn event_def(e: EventRecord) -> EventDef {
    EventDef {
        id: e.id,
        title: e.title,
        access_code: e.access_code,
        starts_at: e.starts_at,
        ends_at: e.ends_at,
        phase: e.phase,
        transcript_public: e.transcript_public,
        channels: e
            .channels
            .into_iter()
            .map(|c| ChannelDef {
                id: c.id,
                lang: c.lang,
                label: c.label,
                source: c.source,
                interpreted: c.interpreted,
                takeover_after_secs: c.takeover_after_secs,
            })
            .collect(),
        origin: Origin::Stored,
        rev: e.rev,
    }
}

pub fn credential_record(r: &CredentialRow) -> CredentialRecord {
    CredentialRecord {
        id: r.id.clone(),
        event: r.scope.as_ref().map(|s| s.0.clone()),
        channel: r.scope.as_ref().map(|s| s.1.clone()),
        name: r.name.clone(),
        hash: r.hash.iter().map(|b| format!("{b:02x}")).collect(),
        created_ms: r.created_ms,
        created_by: r.created_by.clone(),
        revoked_ms: r.revoked_ms,
        revoked_by: r.revoked_by.clone(),
    }
}

fn credential_row(c: CredentialRecord) -> Option<CredentialRow> {
    if c.hash.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, b) in hash.iter_mut().enumerate() {
        *b = u8::from_str_radix(c.hash.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(CredentialRow {
        id: c.id,
        scope: c.event.zip(c.channel),
        name: c.name,
        hash,
        created_ms: c.created_ms,
        created_by: c.created_by,
        last_used_ms: None,
        revoked_ms: c.revoked_ms,
        revoked_by: c.revoked_by,
    })
}
