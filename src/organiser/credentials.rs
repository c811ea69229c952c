//! People, not just tokens: a publish credential per person and channel, and named admin
//! tokens, each shown once at issue and kept only as a SHA-256 digest; revoking one ends its
//! sessions at once (here and, through the cluster, on every node); rotating issues a new one
//! to the same person.

use std::sync::Arc;

use super::{note, stored, unknown_event, Change, Organiser};
use crate::clock::now_ms;
use crate::hub::{Actor, Credential};
use crate::protocol::{ErrorCode, Refusal};
use crate::secret;
use crate::store::audit::{self, AuditEntry};
use crate::store::catalog::{self, CredentialRow};

/// Prefix of publish credentials.
const PUBLISH_PREFIX: &str = "bcp_";
/// Prefix of admin tokens.
const ADMIN_PREFIX: &str = "bca_";

/// A credential just issued, with its token (shown this once).
#[derive(Debug)]
pub struct Issued {
    pub credential: Arc<Credential>,
    pub token: String,
}

fn unknown(id: &str) -> Refusal {
    Refusal::new(
        ErrorCode::UnknownCredential,
        format!("no credential or admin token {id:?}"),
    )
}

impl Organiser {
    /// Writes a credential's row with its audit entry, puts it in force, shares it.
    async fn put_credential(
        &self,
        row: CredentialRow,
        audit: AuditEntry,
    ) -> Result<Arc<Credential>, Refusal> {
        let (r, a) = (row.clone(), audit.clone());
        stored(
            self.hub
                .store
                .write(move |c| {
                    let tx = c.transaction()?;
                    catalog::save_credential(&tx, &r)?;
                    audit::append(&tx, &a)?;
                    tx.commit()
                })
                .await,
        )?;
        let c = self.hub.auth.install(&row);
        self.share(Change::Credential(row), &audit).await;
        Ok(c)
    }

    /// Issues a credential to `name`: for publishing to `event/channel`, or (`None`) an admin
    /// token.
    async fn issue_now(
        &self,
        actor: &Actor,
        scope: Option<(String, String)>,
        name: &str,
        action: &str,
    ) -> Result<Issued, Refusal> {
        let name = name.trim();
        crate::booth::check_name(name)?;
        if let Some((e, c)) = &scope {
            if self.hub.event(e).is_none() {
                return Err(unknown_event(e));
            }
            if self.hub.channel(e, c).is_none() {
                return Err(Refusal::new(
                    ErrorCode::UnknownChannel,
                    format!("no channel {c:?} in event {e:?}"),
                ));
            }
            if self.hub.auth.name_taken(e, c, name) {
                return Err(Refusal::new(
                    ErrorCode::NameTaken,
                    format!("{name:?} already has a credential on {e}/{c}: revoke or rotate it, or choose another name"),
                ));
            }
        }
        let (prefix, id_prefix) = match scope {
            Some(_) => (PUBLISH_PREFIX, "c_"),
            None => (ADMIN_PREFIX, "a_"),
        };
        let token = secret::new_credential(prefix);
        let row = CredentialRow {
            id: secret::new_id(id_prefix),
            scope: scope.clone(),
            name: name.to_string(),
            hash: secret::digest(&token),
            created_ms: now_ms(),
            created_by: actor.name.clone(),
            last_used_ms: None,
            revoked_ms: None,
            revoked_by: None,
        };
        let target = match &scope {
            Some((e, c)) => format!("{e}/{c}"),
            None => "admin".to_string(),
        };
        let detail = format!("{} for {name:?}", row.id);
        let audit = note(actor, action, &target, detail);
        let credential = self.put_credential(row, audit).await?;
        Ok(Issued { credential, token })
    }

    /// Revokes credential `id` now; its sessions end (close 4003).
    async fn revoke_now(
        &self,
        actor: &Actor,
        id: &str,
        action: &str,
    ) -> Result<Arc<Credential>, Refusal> {
        let c = self.hub.auth.credential(id).ok_or_else(|| unknown(id))?;
        if c.is_revoked() {
            return Ok(c);
        }
        let mut row = c.to_row();
        row.revoked_ms = Some(now_ms());
        row.revoked_by = Some(actor.name.clone());
        let target = match &c.scope {
            Some((e, ch)) => format!("{e}/{ch}"),
            None => "admin".to_string(),
        };
        let audit = note(actor, action, &target, format!("{id} of {:?}", c.name));
        self.put_credential(row, audit).await
    }

    /// `POST /v1/admin/events/{e}/channels/{c}/credentials`.
    pub async fn issue(
        &self,
        actor: Actor,
        event: String,
        channel: String,
        name: String,
    ) -> Result<Issued, Refusal> {
        self.serial(move |org| async move {
            org.issue_now(&actor, Some((event, channel)), &name, "credential.issue")
                .await
        })
        .await
    }

    /// `POST /v1/admin/tokens`: a named admin token.
    pub async fn issue_admin(&self, actor: Actor, name: String) -> Result<Issued, Refusal> {
        self.serial(move |org| async move {
            org.issue_now(&actor, None, &name, "admin_token.issue")
                .await
        })
        .await
    }

    /// `DELETE /v1/admin/credentials/{id}` (or `/v1/admin/tokens/{id}`). Revoking a revoked
    /// one changes nothing (and is not refused).
    pub async fn revoke(&self, actor: Actor, id: String) -> Result<Arc<Credential>, Refusal> {
        self.serial(move |org| async move {
            let action = match org.hub.auth.credential(&id).map(|c| c.scope.is_some()) {
                Some(false) => "admin_token.revoke",
                _ => "credential.revoke",
            };
            org.revoke_now(&actor, &id, action).await
        })
        .await
    }

    /// `POST /v1/admin/credentials/{id}/rotate`: revokes it and issues a new one to the same
    /// person on the same channel.
    pub async fn rotate(&self, actor: Actor, id: String) -> Result<Issued, Refusal> {
        self.serial(move |org| async move {
            let old = org.hub.auth.credential(&id).ok_or_else(|| unknown(&id))?;
            org.revoke_now(&actor, &id, "credential.rotate").await?;
            org.issue_now(&actor, old.scope.clone(), &old.name, "credential.issue")
                .await
        })
        .await
    }
}
