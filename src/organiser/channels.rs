//! Channels at run time: add, change (language, label, source, interpreted), delete. A change
//! goes through the event's definition, so the event's rules (no unknown source, no cycle)
//! are checked whole.

use std::sync::Arc;

use super::events::{busy, channel_def};
use super::{note, Organiser};
use crate::catalog::check_channel;
use crate::hub::{Actor, EventInfo};
use crate::protocol::admin::{ChannelPatch, NewChannel};
use crate::protocol::{ErrorCode, Refusal};

impl Organiser {
    /// `POST /v1/admin/events/{e}/channels`.
    pub async fn add_channel(
        &self,
        actor: Actor,
        event: String,
        req: NewChannel,
    ) -> Result<Arc<EventInfo>, Refusal> {
        self.serial(move |org| async move {
            let ev = org.stored_event(&event)?;
            let c = channel_def(req);
            check_channel(&c)?;
            if ev.def.channel(&c.id).is_some() {
                return Err(Refusal::new(
                    ErrorCode::DuplicateId,
                    format!("event {event:?} already has a channel {:?}", c.id),
                ));
            }
            let detail = format!(
                "lang {}; label {:?}; source {}",
                c.lang,
                c.label,
                c.source.as_deref().unwrap_or("none")
            );
            let audit = note(
                &actor,
                "channel.create",
                &format!("{event}/{}", c.id),
                detail,
            );
            let mut def = ev.def.clone();
            def.channels.push(c);
            org.put_event(def, audit, Vec::new()).await
        })
        .await
    }

    /// `PATCH /v1/admin/events/{e}/channels/{c}`: its language, label, source, whether it is
    /// interpreted. The channel keeps its transcript and credentials; connected pages and
    /// booths reconnect to the changed channel (4006).
    pub async fn patch_channel(
        &self,
        actor: Actor,
        event: String,
        channel: String,
        p: ChannelPatch,
    ) -> Result<Arc<EventInfo>, Refusal> {
        self.serial(move |org| async move {
            let ev = org.stored_event(&event)?;
            let mut def = ev.def.clone();
            let Some(c) = def.channels.iter_mut().find(|c| c.id == channel) else {
                return Err(Refusal::new(
                    ErrorCode::UnknownChannel,
                    format!("no channel {channel:?} in event {event:?}"),
                ));
            };
            let mut changed = Vec::new();
            if let Some(l) = p.lang {
                c.lang = l.trim().to_string();
                changed.push(format!("lang {}", c.lang));
            }
            if let Some(l) = p.label {
                c.label = l.trim().to_string();
                changed.push(format!("label {:?}", c.label));
            }
            if let Some(s) = p.source {
                c.source = s.filter(|s| !s.is_empty());
                changed.push(format!("source {}", c.source.as_deref().unwrap_or("none")));
            }
            if let Some(i) = p.interpreted {
                c.interpreted = i;
                changed.push(format!("interpreted {i}"));
            }
            if let Some(t) = p.takeover_after_secs {
                c.takeover_after_secs = t;
                changed.push(format!("takeover_after_secs {t:?}"));
            }
            check_channel(c)?;
            let audit = note(
                &actor,
                "channel.update",
                &format!("{event}/{channel}"),
                changed.join("; "),
            );
            org.put_event(def, audit, Vec::new()).await
        })
        .await
    }

    /// `DELETE /v1/admin/events/{e}/channels/{c}`: refused while people are connected unless
    /// `force`; its transcript and credentials go with it.
    pub async fn delete_channel(
        &self,
        actor: Actor,
        event: String,
        channel: String,
        force: bool,
    ) -> Result<Arc<EventInfo>, Refusal> {
        self.serial(move |org| async move {
            let ev = org.stored_event(&event)?;
            let Some(ch) = org.hub.channel(&event, &channel) else {
                return Err(Refusal::new(
                    ErrorCode::UnknownChannel,
                    format!("no channel {channel:?} in event {event:?}"),
                ));
            };
            if let Some(user) = ev.def.channels.iter().find(|c| c.source.as_deref() == Some(&*channel)) {
                return Err(Refusal::new(
                    ErrorCode::ChannelBusy,
                    format!("channel {channel:?} is the source of {:?}: delete that one first or give it another source", user.id),
                ));
            }
            if !force {
                if let Some(r) = busy("cannot delete", &ch) {
                    return Err(r);
                }
            }
            let mut def = ev.def.clone();
            def.channels.retain(|c| c.id != channel);
            let detail = format!("with its transcript and credentials{}", if force { "; connections closed" } else { "" });
            let audit = note(&actor, "channel.delete", &format!("{event}/{channel}"), detail);
            org.put_event(def, audit, vec![channel]).await
        })
        .await
    }
}
