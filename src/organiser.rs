//! What organisers do at run time, without a restart: create, change and delete events and
//! channels, move events through their life, issue and revoke publish credentials and admin
//! tokens, delete transcripts (see docs/organisers.md).
//!
//! Every change is checked whole, then written to the store in one transaction with its
//! audit entry (the lines' durability), then put in force in the registry (open pages see
//! it at once), then handed to the cluster ([`Mirror`]) so every node applies it. A refused
//! change leaves nothing behind. Changes run one at a time, in one task ([`Organiser`] is an
//! actor): no lock is held across an `.await`, and two organisers cannot interleave halves
//! of their changes.
//!
//! `events`: events and the lifecycle; `channels`: channels; `credentials`: publish credentials and admin
//! tokens; `purge`: deleting transcripts, retention; `remote`: changes from other nodes.

mod channels;
mod credentials;
mod events;
mod purge;
mod remote;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::catalog::EventDef;
use crate::clock::now_ms;
use crate::hub::{Actor, Hub};
use crate::ingest::Ingest;
use crate::protocol::{ErrorCode, Refusal};
use crate::store::audit::AuditEntry;
use crate::store::catalog::CredentialRow;
use crate::store::StoreError;

pub use credentials::Issued;
pub use events::Step;
pub use purge::run_retention;

/// Changes that may wait for the organiser task; callers wait beyond this.
const QUEUE: usize = 64;

/// A change, as the cluster carries it to the other nodes (each applies it to its own store
/// and registry, with the same audit entry).
#[derive(Debug, Clone)]
pub enum Change {
    /// An event made in the dashboard, as it is now.
    Event(EventDef),
    /// An event was deleted (with its transcripts).
    EventDeleted(String),
    /// A credential or admin token, as it is now (issued or revoked).
    Credential(CredentialRow),
    /// An event's transcripts were deleted.
    TranscriptsDeleted(String),
}

/// Where changes go besides this node: in a cluster, the registry bucket every node watches.
pub trait Mirror: Send + Sync {
    /// Shares a change made here, with its audit entry; failures are the mirror's to log.
    fn share<'a>(
        &'a self,
        change: &'a Change,
        audit: &'a AuditEntry,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

type Job = Box<dyn FnOnce(Arc<Organiser>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The organisers' actions on this node.
pub struct Organiser {
    pub hub: Arc<Hub>,
    /// The caption streams' lines in progress: committed when an event ends, forgotten with
    /// what is deleted.
    pub ingest: Arc<Ingest>,
    /// The base URL of pages and publish URLs (`server.public_url`).
    pub public_url: Arc<str>,
    queue: mpsc::Sender<Job>,
    mirror: OnceLock<Arc<dyn Mirror>>,
}

impl std::fmt::Debug for Organiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Organiser")
            .field("mirror", &self.mirror.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Organiser {
    /// The organiser of `hub` (and of `ingest`'s caption streams); its task runs until
    /// `shutdown`.
    pub fn start(
        hub: Arc<Hub>,
        ingest: Arc<Ingest>,
        public_url: Arc<str>,
        tracker: &tokio_util::task::TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Organiser> {
        let (queue, mut rx) = mpsc::channel::<Job>(QUEUE);
        let org = Arc::new(Organiser {
            hub,
            ingest,
            public_url,
            queue,
            mirror: OnceLock::new(),
        });
        let weak = Arc::downgrade(&org);
        tracker.spawn(async move {
            loop {
                let job = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    job = rx.recv() => match job {
                        Some(j) => j,
                        None => return,
                    },
                };
                let Some(org) = weak.upgrade() else { return };
                job(org).await;
            }
        });
        org
    }

    /// Cluster mode: changes are shared through `mirror` from now on.
    pub fn set_mirror(&self, mirror: Arc<dyn Mirror>) {
        if self.mirror.set(mirror).is_err() {
            tracing::warn!("organiser mirror set twice; keeping the first");
        }
    }

    /// Runs `f` in the organiser task, after the changes queued before it.
    async fn serial<T, F, Fut>(&self, f: F) -> Result<T, Refusal>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Organiser>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Refusal>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |org| {
            Box::pin(async move {
                let _ = tx.send(f(org).await);
            })
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| Refusal::shutting_down())?;
        rx.await.unwrap_or_else(|_| Err(Refusal::shutting_down()))
    }

    /// Shares a change with the other nodes (no-op on a single node).
    async fn share(&self, change: Change, audit: &AuditEntry) {
        if let Some(m) = self.mirror.get() {
            m.share(&change, audit).await;
        }
    }
}

/// An audit entry for `actor` doing `action` to `target`, now.
fn note(actor: &Actor, action: &str, target: &str, detail: String) -> AuditEntry {
    AuditEntry {
        id: 0,
        ts: now_ms(),
        actor: actor.name.clone(),
        action: action.to_string(),
        target: target.to_string(),
        detail,
    }
}

/// A store failure as people read it: nothing was changed.
fn stored(r: Result<(), StoreError>) -> Result<(), Refusal> {
    r.map_err(|e| {
        tracing::error!(error = %e, "an organiser's change could not be stored");
        Refusal::new(
            ErrorCode::StorageUnavailable,
            "the store could not write the change; nothing was changed, retry later",
        )
    })
}

fn unknown_event(id: &str) -> Refusal {
    Refusal::new(ErrorCode::UnknownEvent, format!("no event {id:?}"))
}
