//! Who may publish and who may administer: the config file's publish tokens (shared by a
//! booth, compared in constant time), the publish credentials issued per person and channel,
//! and the admin tokens (the config's or the one made at start, and named ones issued in the
//! dashboard). Issued credentials and named admin tokens are kept only as SHA-256 digests and
//! looked up by digest.
//!
//! Revoking a credential cancels its token: every session published with it ends at once
//! (close 4003) and the next attempt is refused with `credential_revoked`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::secret;
use crate::store::catalog::CredentialRow;

/// How often a credential's last use is written to the store at most (it is kept in memory
/// at every use).
pub const LAST_USE_WRITE_MS: i64 = 60_000;

/// The actor name of the config file's admin token in the audit log.
pub const CONFIG_ADMIN: &str = "config";
/// The actor name of the admin token made at start.
pub const STARTUP_ADMIN: &str = "startup";

/// An issued publish credential or named admin token.
#[derive(Debug)]
pub struct Credential {
    pub id: String,
    /// The event and channel of a publish credential; `None` for an admin token.
    pub scope: Option<(String, String)>,
    /// The person it was given to: the on-air name and the author of their lines.
    pub name: String,
    pub hash: [u8; 32],
    pub created_ms: i64,
    pub created_by: String,
    last_used_ms: AtomicI64,
    /// When the last use was written to the store.
    last_written_ms: AtomicI64,
    revoked_ms: AtomicI64,
    revoked_by: Mutex<Option<String>>,
    /// Cancelled when revoked: sessions using the credential end.
    pub revoked: CancellationToken,
}

impl Credential {
    pub fn from_row(row: &CredentialRow) -> Credential {
        let c = Credential {
            id: row.id.clone(),
            scope: row.scope.clone(),
            name: row.name.clone(),
            hash: row.hash,
            created_ms: row.created_ms,
            created_by: row.created_by.clone(),
            last_used_ms: AtomicI64::new(row.last_used_ms.unwrap_or(0)),
            last_written_ms: AtomicI64::new(row.last_used_ms.unwrap_or(0)),
            revoked_ms: AtomicI64::new(0),
            revoked_by: Mutex::new(None),
            revoked: CancellationToken::new(),
        };
        if let Some(ms) = row.revoked_ms {
            c.revoke(ms, row.revoked_by.as_deref().unwrap_or(""));
        }
        c
    }

    /// The row to store.
    pub fn to_row(&self) -> CredentialRow {
        CredentialRow {
            id: self.id.clone(),
            scope: self.scope.clone(),
            name: self.name.clone(),
            hash: self.hash,
            created_ms: self.created_ms,
            created_by: self.created_by.clone(),
            last_used_ms: self.last_used_ms(),
            revoked_ms: self.revoked_ms(),
            revoked_by: self
                .revoked_by
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    pub fn last_used_ms(&self) -> Option<i64> {
        Some(self.last_used_ms.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }

    pub fn revoked_ms(&self) -> Option<i64> {
        Some(self.revoked_ms.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.is_cancelled()
    }

    /// Revokes it (first time only); whether this call revoked it.
    pub fn revoke(&self, ms: i64, by: &str) -> bool {
        if self.revoked.is_cancelled() {
            return false;
        }
        self.revoked_ms.store(ms.max(1), Ordering::Relaxed);
        *self.revoked_by.lock().unwrap_or_else(|e| e.into_inner()) = Some(by.to_string());
        self.revoked.cancel();
        true
    }

    /// Notes a use at `now`; whether it is time to write it to the store.
    pub fn used(&self, now: i64) -> bool {
        self.last_used_ms.fetch_max(now, Ordering::Relaxed);
        let written = self.last_written_ms.load(Ordering::Relaxed);
        now - written >= LAST_USE_WRITE_MS
            && self
                .last_written_ms
                .compare_exchange(written, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Who is publishing, as the publish token says.
#[derive(Debug, Clone)]
pub enum Publisher {
    /// A token of the config file (its index in the channel's list; shared by a booth: the
    /// name is the publisher's own).
    File(u32),
    /// A person's credential: the name is theirs.
    Person(Arc<Credential>),
}

impl Publisher {
    /// Which credential it is, as the cluster compares "the same person on another node"
    /// (with the name): a config token's index, or (top bit set) a person's credential by its
    /// digest.
    pub fn credential(&self) -> u32 {
        match self {
            Publisher::File(i) => *i & 0x7fff_ffff,
            Publisher::Person(c) => {
                0x8000_0000 | u32::from_be_bytes([c.hash[0], c.hash[1], c.hash[2], c.hash[3]])
            }
        }
    }
}

/// Why a publish token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Not a token of this channel.
    Wrong,
    /// A credential of this channel that was revoked.
    Revoked,
}

/// Who is administering: an admin token's name (and id, for issued ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub id: Option<String>,
}

/// Every secret the server accepts.
#[derive(Debug, Default)]
pub struct Auth {
    /// `event/channel` → the config file's publish tokens (or one made at start).
    file_tokens: HashMap<String, Vec<String>>,
    /// Channels whose token was made at start (the banner prints those only).
    generated: HashSet<String>,
    /// The config's admin token, or one made at start, and its actor name.
    master: (String, &'static str),
    by_hash: DashMap<[u8; 32], Arc<Credential>>,
    by_id: DashMap<String, Arc<Credential>>,
}

fn key(event: &str, channel: &str) -> String {
    format!("{event}/{channel}")
}

impl Auth {
    /// The config file's admin token (random, and named `startup`, when empty).
    pub fn new(admin_token: &str) -> Auth {
        let master = if admin_token.is_empty() {
            (secret::random_token(), STARTUP_ADMIN)
        } else {
            (admin_token.to_string(), CONFIG_ADMIN)
        };
        Auth {
            master,
            ..Auth::default()
        }
    }

    /// Adds a config channel's publish tokens (one made at start when it has none).
    pub fn add_file_channel(&mut self, event: &str, channel: &str, tokens: &[String]) {
        let k = key(event, channel);
        let tokens = if tokens.is_empty() {
            self.generated.insert(k.clone());
            vec![secret::random_token()]
        } else {
            tokens.to_vec()
        };
        self.file_tokens.insert(k, tokens);
    }

    /// Adds or updates an issued credential; a revocation in `row` is applied (its sessions
    /// end). Returns the credential in force.
    pub fn install(&self, row: &CredentialRow) -> Arc<Credential> {
        if let Some(existing) = self.by_id.get(&row.id).map(|c| c.clone()) {
            if let Some(ms) = row.revoked_ms {
                existing.revoke(ms, row.revoked_by.as_deref().unwrap_or(""));
            }
            if let Some(ms) = row.last_used_ms {
                existing.last_used_ms.fetch_max(ms, Ordering::Relaxed);
            }
            return existing;
        }
        let c = Arc::new(Credential::from_row(row));
        self.by_hash.insert(c.hash, c.clone());
        self.by_id.insert(c.id.clone(), c.clone());
        c
    }

    /// Forgets the credentials of a deleted event (or of one of its channels), ending their
    /// sessions.
    pub fn remove_scope(&self, event: &str, channel: Option<&str>) {
        let gone: Vec<Arc<Credential>> = self
            .by_id
            .iter()
            .filter(|c| {
                c.scope
                    .as_ref()
                    .is_some_and(|(e, ch)| e == event && channel.is_none_or(|c| c == ch))
            })
            .map(|c| c.clone())
            .collect();
        for c in gone {
            c.revoked.cancel();
            self.by_id.remove(&c.id);
            self.by_hash.remove(&c.hash);
        }
    }

    /// The credential with this id.
    pub fn credential(&self, id: &str) -> Option<Arc<Credential>> {
        self.by_id.get(id).map(|c| c.clone())
    }

    /// Every issued credential and admin token, oldest first.
    pub fn all(&self) -> Vec<Arc<Credential>> {
        let mut v: Vec<_> = self.by_id.iter().map(|c| c.clone()).collect();
        v.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        v
    }

    /// Whether a credential of this channel not revoked is named `name` (any case).
    pub fn name_taken(&self, event: &str, channel: &str, name: &str) -> bool {
        self.by_id.iter().any(|c| {
            !c.is_revoked()
                && c.scope
                    .as_ref()
                    .is_some_and(|(e, ch)| e == event && ch == channel)
                && c.name.to_lowercase() == name.to_lowercase()
        })
    }

    /// Whether a credential of this channel, even revoked, was ever given to `name` (any
    /// case): a person's name is theirs, a shared config token cannot take it.
    pub fn name_ever_given(&self, event: &str, channel: &str, name: &str) -> bool {
        self.by_id.iter().any(|c| {
            c.scope
                .as_ref()
                .is_some_and(|(e, ch)| e == event && ch == channel)
                && c.name.to_lowercase() == name.to_lowercase()
        })
    }

    /// Who `token` lets publish to the channel.
    pub fn publisher(&self, event: &str, channel: &str, token: &str) -> Result<Publisher, Denied> {
        let file = self
            .file_tokens
            .get(&key(event, channel))
            .and_then(|tokens| secret::position(tokens.iter(), token));
        if let Some(i) = file {
            return Ok(Publisher::File(i as u32));
        }
        let found = self.by_hash.get(&secret::digest(token)).map(|c| c.clone());
        match found {
            Some(c)
                if c.scope
                    .as_ref()
                    .is_some_and(|(e, ch)| e == event && ch == channel) =>
            {
                if c.is_revoked() {
                    Err(Denied::Revoked)
                } else {
                    Ok(Publisher::Person(c))
                }
            }
            _ => Err(Denied::Wrong),
        }
    }

    /// Who `token` is, if it is an admin token in force.
    pub fn admin(&self, token: &str) -> Option<Actor> {
        if secret::same(&self.master.0, token) {
            return Some(Actor {
                name: self.master.1.to_string(),
                id: None,
            });
        }
        let c = self
            .by_hash
            .get(&secret::digest(token))
            .map(|c| c.clone())?;
        (c.scope.is_none() && !c.is_revoked()).then(|| Actor {
            name: c.name.clone(),
            id: Some(c.id.clone()),
        })
    }

    /// The admin token, if it was made at start (for the one-time startup banner only).
    pub fn generated_admin_token(&self) -> Option<&str> {
        (self.master.1 == STARTUP_ADMIN).then_some(self.master.0.as_str())
    }

    /// A config channel's publish token, if it was made at start (banner and demo only).
    pub fn generated_publish_token(&self, event: &str, channel: &str) -> Option<String> {
        let k = key(event, channel);
        if !self.generated.contains(&k) {
            return None;
        }
        self.file_tokens.get(&k).and_then(|t| t.first().cloned())
    }

    /// Whether a config channel has publish tokens in the file.
    pub fn has_file_tokens(&self, event: &str, channel: &str) -> bool {
        self.file_tokens.contains_key(&key(event, channel))
    }
}
