//! Deleting transcripts: an ended event's on an organiser's request, and lines older than
//! `storage.retention_days`, hourly. The store does the deleting for good (see
//! [`crate::store::purge`]); here the registry forgets what it kept in memory and the audit
//! log keeps who deleted what (never the text).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{note, stored, Change, Organiser};
use crate::catalog::Origin;
use crate::clock::now_ms;
use crate::hub::{Actor, Hub};
use crate::protocol::{ErrorCode, Refusal};
use crate::store::audit::{self, AuditEntry};
use crate::store::purge;

/// How often lines past `storage.retention_days` are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;
/// The audit log's actor for the store's own clean-up.
pub const RETENTION_ACTOR: &str = "retention";

impl Organiser {
    /// `DELETE /v1/admin/events/{e}/transcripts`: every line of an ended (or archived) event,
    /// gone from disk. The event stays, with no transcript.
    pub async fn delete_transcripts(&self, actor: Actor, event: String) -> Result<u64, Refusal> {
        self.serial(move |org| async move {
            let ev = org
                .hub
                .event(&event)
                .ok_or_else(|| super::unknown_event(&event))?;
            if ev.def.origin == Origin::File {
                return Err(Refusal::new(
                    ErrorCode::ReadOnly,
                    "an event of the config file keeps its transcripts until storage.retention_days deletes them",
                ));
            }
            if !ev.signal.state().is_over() {
                return Err(Refusal::new(
                    ErrorCode::BadState,
                    "end the event first: its booths may still be publishing",
                ));
            }
            let mut audit = note(&actor, "transcripts.delete", &event, String::new());
            let n = org.purge_event(&event, &mut audit).await?;
            org.share(Change::TranscriptsDeleted(event), &audit).await;
            Ok(n)
        })
        .await
    }

    /// Deletes an event's transcripts from the store (with `audit`, whose detail gets the
    /// counts) and from memory; the number of stored events deleted.
    pub(super) async fn purge_event(
        &self,
        event: &str,
        audit: &mut AuditEntry,
    ) -> Result<u64, Refusal> {
        // The lines in progress go too (their saved states below); the event is over, so no
        // post or document brings new ones.
        self.ingest.forget(event, None).await;
        let (e, a) = (event.to_string(), audit.clone());
        let purged = self
            .hub
            .store
            .write(move |c| {
                let tx = c.transaction()?;
                let p = purge::delete_transcripts(&tx, &e, None)?;
                let mut a = a;
                a.detail = format!(
                    "{} stored lines, edits and handovers; {} stream states",
                    p.events, p.states
                );
                audit::append(&tx, &a)?;
                tx.commit()?;
                purge::truncate_wal(c);
                Ok((p, a.detail))
            })
            .await;
        let (p, detail) = match purged {
            Ok(v) => v,
            Err(e) => return Err(stored(Err(e)).unwrap_err()),
        };
        audit.detail = detail;
        if let Some(ev) = self.hub.event(event) {
            for ch in self.hub.channels_of(&ev) {
                ch.forget(None);
            }
        }
        Ok(p.events)
    }
}

/// Deletes what is older than `days` once now; the number of stored events deleted.
pub async fn retain(hub: &Arc<Hub>, days: u64) -> Result<u64, crate::store::StoreError> {
    let cutoff = now_ms() - (days as i64).saturating_mul(DAY_MS);
    let n = hub
        .store
        .write(move |c| {
            let tx = c.transaction()?;
            let p = purge::delete_older_than(&tx, cutoff)?;
            if p.events + p.states > 0 {
                audit::append(
                    &tx,
                    &AuditEntry {
                        id: 0,
                        ts: now_ms(),
                        actor: RETENTION_ACTOR.into(),
                        action: "transcripts.expire".into(),
                        target: "*".into(),
                        detail: format!(
                            "older than {days} days: {} stored lines, edits and handovers; {} stream states",
                            p.events, p.states
                        ),
                    },
                )?;
            }
            tx.commit()?;
            if p.events + p.states > 0 {
                purge::truncate_wal(c);
            }
            Ok(p.events)
        })
        .await?;
    for ch in hub.all_channels() {
        ch.forget(Some(cutoff));
    }
    Ok(n)
}

/// Deletes lines older than `days` at start and every hour until `shutdown`.
pub async fn run_retention(hub: Arc<Hub>, days: u64, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match retain(&hub, days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                days,
                "transcripts past storage.retention_days deleted"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete transcripts past storage.retention_days")
            }
        }
    }
}
