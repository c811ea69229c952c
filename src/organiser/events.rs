//! Events at run time: create, change, delete, and the lifecycle (start, end, archive); how
//! a change is checked, stored and put in force. The config file's events are read-only here.

use std::sync::Arc;

use super::{note, stored, unknown_event, Change, Organiser};
use crate::catalog::{ChannelDef, EventDef, Origin};
use crate::channel::Channel;
use crate::clock::now_ms;
use crate::hub::{Actor, EventInfo};
use crate::protocol::admin::{EventPatch, NewChannel, NewEvent};
use crate::protocol::{ErrorCode, EventState, Refusal};
use crate::store::audit::{self, AuditEntry};
use crate::store::{catalog, purge};

/// A lifecycle step an organiser asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Start,
    End,
    Archive,
}

pub(super) fn channel_def(c: NewChannel) -> ChannelDef {
    ChannelDef {
        interpreted: c.interpreted.unwrap_or(c.source.is_some()),
        id: c.id,
        lang: c.lang.trim().to_string(),
        label: c.label.trim().to_string(),
        source: c.source.filter(|s| !s.is_empty()),
        takeover_after_secs: c.takeover_after_secs,
    }
}

fn read_only(id: &str) -> Refusal {
    Refusal::new(
        ErrorCode::ReadOnly,
        format!("event {id:?} is declared in the config file: change it there (it is read-only in the dashboard)"),
    )
}

pub(super) fn busy(what: &str, ch: &Channel) -> Option<Refusal> {
    let (listeners, publishers) = (ch.audience(), ch.publishers());
    (listeners > 0 || publishers > 0).then(|| {
        Refusal::new(
            ErrorCode::ChannelBusy,
            format!(
                "{what}: {listeners} listening and {publishers} publishing on channel {:?} now; \
                 add ?force=1 to close their connections",
                ch.info.id
            ),
        )
    })
}

impl Organiser {
    /// The stored event `id` (refusing an unknown one or one of the config file).
    pub(super) fn stored_event(&self, id: &str) -> Result<Arc<EventInfo>, Refusal> {
        let ev = self.hub.event(id).ok_or_else(|| unknown_event(id))?;
        if ev.def.origin == Origin::File {
            return Err(read_only(id));
        }
        Ok(ev)
    }

    /// Checks `def` and gives it the next revision, then commits it (see
    /// [`commit_event`](Self::commit_event)) and shares it.
    pub(super) async fn put_event(
        &self,
        mut def: EventDef,
        audit: AuditEntry,
        gone: Vec<String>,
    ) -> Result<Arc<EventInfo>, Refusal> {
        def.check()?;
        def.rev = self
            .hub
            .event(&def.id)
            .map_or(0, |e| e.def.rev)
            .max(def.rev)
            + 1;
        self.commit_event(def.clone(), Some(audit.clone()), gone)
            .await?;
        let id = def.id.clone();
        self.share(Change::Event(def), &audit).await;
        Ok(self.hub.event(&id).expect("just installed"))
    }

    /// Restores `def`'s new channels from the store, writes it (with `audit`, deleting what
    /// `gone` channels left: their transcripts and credentials), then puts it in force.
    /// Nothing is changed if a step before the store's commit fails.
    pub(super) async fn commit_event(
        &self,
        def: EventDef,
        audit: Option<AuditEntry>,
        gone: Vec<String>,
    ) -> Result<(), Refusal> {
        let signal = self.hub.signal_for(&def);
        let current = self.hub.event(&def.id);
        // An event that stops being live (ended here or on another node) first commits its
        // caption streams' lines in progress, while it still takes lines.
        if current.as_ref().is_some_and(|ev| {
            ev.signal.state() == EventState::Live && def.state(now_ms()) != EventState::Live
        }) {
            self.ingest.end_event(&def.id).await;
        }
        let (fresh, changed): (Vec<ChannelDef>, Vec<ChannelDef>) = def
            .channels
            .iter()
            .filter(|c| current.as_ref().and_then(|e| e.def.channel(&c.id)) != Some(*c))
            .cloned()
            .partition(|c| self.hub.channel(&def.id, &c.id).is_none());
        let mut built = self.build(&def, &signal, fresh).await?;
        // A channel that goes takes nothing more from now on: no line can be stored after its
        // transcript is deleted below.
        for g in &gone {
            if let Some(ch) = self.hub.channel(&def.id, g) {
                ch.life.delete();
            }
            // Its lines in progress go with its transcript (their saved states below).
            self.ingest.forget(&def.id, Some(g)).await;
        }
        let d = def.clone();
        stored(
            self.hub
                .store
                .write(move |c| {
                    let tx = c.transaction()?;
                    catalog::save_event(&tx, &d, now_ms())?;
                    for ch in &gone {
                        catalog::delete_channel_credentials(&tx, &d.id, ch)?;
                        purge::delete_transcripts(&tx, &d.id, Some(ch))?;
                    }
                    if let Some(a) = &audit {
                        audit::append(&tx, a)?;
                    }
                    tx.commit()?;
                    if !gone.is_empty() {
                        purge::truncate_wal(c);
                    }
                    Ok(())
                })
                .await,
        )?;
        if !changed.is_empty() {
            // A changed channel is rebuilt: the old one takes nothing more (its sessions end
            // and reconnect), then, once every line queued for it is stored, the new one is
            // restored from the store, so no line falls between the two.
            for c in &changed {
                if let Some(old) = self.hub.channel(&def.id, &c.id) {
                    old.life.replace();
                }
            }
            stored(self.hub.store.write(|_| Ok(())).await)?;
            built.extend(self.build(&def, &signal, changed).await?);
        }
        self.hub.install(def, signal, built);
        Ok(())
    }

    /// Channels `defs` of event `def`, restored from the store (off the async threads).
    async fn build(
        &self,
        def: &EventDef,
        signal: &Arc<crate::channel::EventSignal>,
        defs: Vec<ChannelDef>,
    ) -> Result<Vec<Arc<Channel>>, Refusal> {
        if defs.is_empty() {
            return Ok(Vec::new());
        }
        let (hub, d, s) = (self.hub.clone(), def.clone(), signal.clone());
        let built = tokio::task::spawn_blocking(move || {
            defs.iter()
                .map(|c| hub.build_channel(&d, c, &s).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| crate::store::StoreError::Read(e.to_string()))
        .and_then(|r| r);
        built.map_err(|e| stored(Err(e)).unwrap_err())
    }

    /// Deletes an event with its transcripts and credentials from the store (with `audit`,
    /// recorded once), then from the registry (its sessions close).
    pub(super) async fn erase_event(
        &self,
        id: &str,
        audit: Option<AuditEntry>,
    ) -> Result<(), Refusal> {
        let i = id.to_string();
        // Its channels take nothing more: no line can be stored after the deletion below.
        if let Some(ev) = self.hub.event(id) {
            for ch in self.hub.channels_of(&ev) {
                ch.life.delete();
            }
        }
        // Their lines in progress go with the transcripts (their saved states below).
        self.ingest.forget(id, None).await;
        stored(
            self.hub
                .store
                .write(move |c| {
                    let tx = c.transaction()?;
                    catalog::delete_event(&tx, &i)?;
                    purge::delete_transcripts(&tx, &i, None)?;
                    if let Some(a) = &audit {
                        audit::append_once(&tx, a)?;
                    }
                    tx.commit()?;
                    purge::truncate_wal(c);
                    Ok(())
                })
                .await,
        )?;
        self.hub.remove_event(id);
        Ok(())
    }

    /// `POST /v1/admin/events`.
    pub async fn create_event(
        &self,
        actor: Actor,
        req: NewEvent,
    ) -> Result<Arc<EventInfo>, Refusal> {
        self.serial(move |org| async move {
            crate::catalog::check_id("event id", &req.id)?;
            if org.hub.event(&req.id).is_some() {
                return Err(Refusal::new(
                    ErrorCode::DuplicateId,
                    format!("there is already an event {:?}", req.id),
                ));
            }
            let def = EventDef {
                id: req.id,
                title: req.title.trim().to_string(),
                access_code: req.access_code.filter(|c| !c.is_empty()),
                starts_at: req.starts_at,
                ends_at: req.ends_at,
                phase: EventState::Scheduled,
                transcript_public: req.transcript_public,
                channels: req.channels.into_iter().map(channel_def).collect(),
                origin: Origin::Stored,
                rev: 0,
            };
            let ids: Vec<&str> = def.channels.iter().map(|c| c.id.as_str()).collect();
            let detail = format!("title {:?}; channels: {}", def.title, ids.join(", "));
            let audit = note(&actor, "event.create", &def.id, detail);
            org.put_event(def, audit, Vec::new()).await
        })
        .await
    }

    /// `PATCH /v1/admin/events/{e}`.
    pub async fn patch_event(
        &self,
        actor: Actor,
        id: String,
        p: EventPatch,
    ) -> Result<Arc<EventInfo>, Refusal> {
        self.serial(move |org| async move {
            let ev = org.stored_event(&id)?;
            let mut def = ev.def.clone();
            let mut changed = Vec::new();
            if let Some(t) = p.title {
                def.title = t.trim().to_string();
                changed.push(format!("title {:?}", def.title));
            }
            if let Some(c) = p.access_code {
                def.access_code = c.filter(|c| !c.is_empty());
                changed.push(format!(
                    "access code {}",
                    if def.access_code.is_some() {
                        "set"
                    } else {
                        "removed"
                    }
                ));
            }
            let schedule = p.starts_at.is_some() || p.ends_at.is_some();
            if schedule && ev.signal.state().is_over() {
                return Err(Refusal::new(
                    ErrorCode::BadState,
                    "the event is over: its schedule cannot change",
                ));
            }
            if let Some(s) = p.starts_at {
                def.starts_at = s;
                changed.push(format!("starts_at {s:?}"));
            }
            if let Some(e) = p.ends_at {
                def.ends_at = e;
                changed.push(format!("ends_at {e:?}"));
            }
            if let Some(t) = p.transcript_public {
                def.transcript_public = t;
                changed.push(format!(
                    "transcript {}",
                    if t { "published" } else { "private" }
                ));
            }
            let audit = note(&actor, "event.update", &id, changed.join("; "));
            org.put_event(def, audit, Vec::new()).await
        })
        .await
    }

    /// `DELETE /v1/admin/events/{e}`: refused while people are connected unless `force`; its
    /// transcripts and credentials go with it.
    pub async fn delete_event(&self, actor: Actor, id: String, force: bool) -> Result<(), Refusal> {
        self.serial(move |org| async move {
            let ev = org.stored_event(&id)?;
            if !force {
                for ch in org.hub.channels_of(&ev) {
                    if let Some(r) = busy("cannot delete the event", &ch) {
                        return Err(r);
                    }
                }
            }
            let audit = note(
                &actor,
                "event.delete",
                &id,
                format!("title {:?}, with its transcripts and credentials", ev.title),
            );
            org.erase_event(&id, Some(audit.clone())).await?;
            org.share(Change::EventDeleted(id), &audit).await;
            Ok(())
        })
        .await
    }

    /// `POST /v1/admin/events/{e}/start|end|archive`. Asking for the state the event is
    /// already in changes nothing (and is not refused).
    pub async fn step(
        &self,
        actor: Actor,
        id: String,
        step: Step,
    ) -> Result<Arc<EventInfo>, Refusal> {
        self.serial(move |org| async move {
            let ev = org.stored_event(&id)?;
            let now = ev.def.state(now_ms());
            let (target, allowed) = match step {
                Step::Start => (EventState::Live, now == EventState::Scheduled),
                Step::End => (EventState::Ended, !now.is_over()),
                Step::Archive => (EventState::Archived, now == EventState::Ended),
            };
            if now == target {
                return Ok(ev);
            }
            if !allowed {
                let hint = match step {
                    Step::Archive => "end it first",
                    _ => "it is over",
                };
                return Err(Refusal::new(
                    ErrorCode::BadState,
                    format!(
                        "event {id:?} is {}: cannot go to {} ({hint})",
                        now.as_str(),
                        target.as_str()
                    ),
                ));
            }
            let mut def = ev.def.clone();
            def.phase = target;
            if step == Step::Start {
                // Started by hand before its scheduled start.
                def.starts_at = None;
            }
            let action = format!(
                "event.{}",
                match step {
                    Step::Start => "start",
                    Step::End => "end",
                    Step::Archive => "archive",
                }
            );
            let audit = note(&actor, &action, &id, format!("was {}", now.as_str()));
            org.put_event(def, audit, Vec::new()).await
        })
        .await
    }
}
