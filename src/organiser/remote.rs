//! Changes made on another node of the cluster, applied here: to this node's store (with the
//! same audit entry) and registry, in the organiser task like local changes. A change older
//! than what is in force (a lower revision) is ignored, so replays are harmless.

use super::{stored, Change, Organiser};
use crate::catalog::{EventDef, Origin};
use crate::store::audit::{self, AuditEntry};
use crate::store::{catalog, purge};

impl Organiser {
    /// Applies `change` made elsewhere; `audit` is its entry (recorded here too).
    pub async fn apply_remote(
        &self,
        change: Change,
        audit: Option<AuditEntry>,
    ) -> Result<(), crate::protocol::Refusal> {
        self.serial(move |org| async move {
            match change {
                Change::Event(def) => org.remote_event(def, audit).await,
                Change::EventDeleted(id) => {
                    let Some(ev) = org.hub.event(&id) else {
                        return Ok(());
                    };
                    if ev.def.origin == Origin::File {
                        return Ok(());
                    }
                    org.erase_event(&id, audit).await
                }
                Change::Credential(row) => {
                    let known = org.hub.auth.credential(&row.id);
                    if known
                        .as_ref()
                        .is_some_and(|c| c.is_revoked() || row.revoked_ms.is_none())
                    {
                        return Ok(());
                    }
                    let r = row.clone();
                    stored(
                        org.hub
                            .store
                            .write(move |c| {
                                let tx = c.transaction()?;
                                catalog::save_credential(&tx, &r)?;
                                if let Some(a) = &audit {
                                    audit::append_once(&tx, a)?;
                                }
                                tx.commit()
                            })
                            .await,
                    )?;
                    org.hub.auth.install(&row);
                    Ok(())
                }
                Change::TranscriptsDeleted(event) => {
                    if org.hub.event(&event).is_none() {
                        return Ok(());
                    }
                    let Some(a) = audit else { return Ok(()) };
                    // Applied once: a restart reads the bucket again, and finds the entry.
                    let e = event.clone();
                    let fresh = org
                        .hub
                        .store
                        .write(move |c| {
                            let tx = c.transaction()?;
                            let fresh = audit::append_once(&tx, &a)?;
                            if fresh {
                                purge::delete_transcripts(&tx, &e, None)?;
                            }
                            tx.commit()?;
                            if fresh {
                                purge::truncate_wal(c);
                            }
                            Ok(fresh)
                        })
                        .await;
                    match fresh {
                        Ok(true) => {
                            org.ingest.forget(&event, None).await;
                            if let Some(ev) = org.hub.event(&event) {
                                for ch in org.hub.channels_of(&ev) {
                                    ch.forget(None);
                                }
                            }
                            Ok(())
                        }
                        Ok(false) => Ok(()),
                        Err(e) => stored(Err(e)),
                    }
                }
            }
        })
        .await
    }

    async fn remote_event(
        &self,
        def: EventDef,
        audit: Option<AuditEntry>,
    ) -> Result<(), crate::protocol::Refusal> {
        let current = self.hub.event(&def.id);
        if let Some(ev) = &current {
            if ev.def.origin == Origin::File {
                tracing::warn!(event = %def.id, "another node made an event with the id of one in this node's config file; ignored");
                return Ok(());
            }
            if ev.def.rev >= def.rev {
                return Ok(());
            }
        }
        if let Err(r) = def.check() {
            tracing::warn!(event = %def.id, error = %r.message, "an event from another node does not pass the rules here; ignored");
            return Ok(());
        }
        let gone: Vec<String> = current
            .iter()
            .flat_map(|ev| ev.channels.iter())
            .filter(|c| def.channel(c).is_none())
            .cloned()
            .collect();
        self.commit_event(def, audit, gone).await
    }
}
