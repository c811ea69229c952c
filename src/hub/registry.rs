//! Changing the registry at run time: building a channel restored from the store, putting an
//! event (new or changed) in force, removing one, and moving events along their schedule.
//!
//! A change builds everything first (channels restored from the store, off any lock), then
//! swaps the new event list in under a short write lock, then tells the sessions (status
//! frames, deleted channels closed). The hot path never takes these locks: a session holds
//! its channel's `Arc` from the handshake on.

use std::sync::Arc;
use std::time::Duration;

use super::{key, EventInfo, Hub};
use crate::catalog::{ChannelDef, EventDef};
use crate::channel::{Channel, ChannelInfo, EventSignal};
use crate::store::StoreError;

impl Hub {
    /// A channel of `ev` restored from the store (its last seq and recent history), sharing
    /// the event's `signal`. Blocking: reads the store.
    pub fn build_channel(
        &self,
        ev: &EventDef,
        c: &ChannelDef,
        signal: &Arc<EventSignal>,
    ) -> Result<Channel, StoreError> {
        let (last_seq, last_ts, recent) =
            self.store
                .load_channel(&ev.id, &c.id, self.limits.history_in_memory)?;
        let info = ChannelInfo {
            event: ev.id.clone(),
            id: c.id.clone(),
            label: if c.label.is_empty() {
                crate::langid::native_name(&c.lang)
                    .unwrap_or(&c.lang)
                    .to_string()
            } else {
                c.label.clone()
            },
            lang: c.lang.clone(),
            source: c.source.clone(),
        };
        let takeover = match c
            .takeover_after_secs
            .unwrap_or(self.booth.takeover_after_secs)
        {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        };
        Ok(Channel::new(
            info,
            last_seq,
            last_ts,
            recent,
            self.limits.history_in_memory,
            self.limits.listener_queue,
        )
        .with_takeover_after(takeover)
        .with_event(signal.clone()))
    }

    /// The signal of event `id` if it exists (a change keeps it), else a new one in the
    /// state `def` is in now.
    pub fn signal_for(&self, def: &EventDef) -> Arc<EventSignal> {
        match self.event(&def.id) {
            Some(e) => e.signal.clone(),
            None => EventSignal::new(def.state(crate::clock::now_ms()), def.rev),
        }
    }

    /// Puts `def` in force: a new event, or a changed one. `fresh` are its channels that are
    /// new or changed (built with [`build_channel`](Self::build_channel) and `signal`; a
    /// changed one replaces the old, whose sessions close with 4006 and reconnect); channels
    /// the event no longer has are deleted (their sessions close with 4004). Callers
    /// serialise changes (one organiser change at a time).
    pub fn install(&self, def: EventDef, signal: Arc<EventSignal>, fresh: Vec<Arc<Channel>>) {
        for ch in fresh {
            // A changed channel replaces the old one, whose sessions reconnect (4006).
            if let Some(old) = self
                .channels
                .insert(key(&ch.info.event, &ch.info.id), ch.clone())
            {
                if !Arc::ptr_eq(&old, &ch) {
                    old.life.replace();
                }
            }
        }
        let info = Arc::new(EventInfo {
            id: def.id.clone(),
            title: def.title.clone(),
            channels: def.channels.iter().map(|c| c.id.clone()).collect(),
            signal: signal.clone(),
            def,
        });
        let old = {
            let mut events = self.events.write().unwrap_or_else(|e| e.into_inner());
            let mut list = Vec::clone(&events);
            let old = match list.iter().position(|e| e.id == info.id) {
                Some(i) => Some(std::mem::replace(&mut list[i], info.clone())),
                None => {
                    list.push(info.clone());
                    None
                }
            };
            *events = Arc::new(list);
            old
        };
        if let Some(old) = old {
            for gone in old.channels.iter().filter(|c| !info.channels.contains(c)) {
                if let Some((_, ch)) = self.channels.remove(&key(&info.id, gone)) {
                    ch.life.delete();
                }
                self.auth.remove_scope(&info.id, Some(gone));
            }
        }
        signal.set_rev(info.def.rev);
        signal.set_state(info.def.state(crate::clock::now_ms()));
        for ch in self.channels_of(&info) {
            ch.refresh_status();
        }
    }

    /// Removes an event: its channels are deleted (their sessions close) and its credentials
    /// forgotten. Returns what was removed.
    pub fn remove_event(&self, id: &str) -> Option<Arc<EventInfo>> {
        let old = {
            let mut events = self.events.write().unwrap_or_else(|e| e.into_inner());
            let i = events.iter().position(|e| e.id == id)?;
            let mut list = Vec::clone(&events);
            let old = list.remove(i);
            *events = Arc::new(list);
            old
        };
        for c in &old.channels {
            if let Some((_, ch)) = self.channels.remove(&key(id, c)) {
                ch.life.delete();
            }
        }
        self.auth.remove_scope(id, None);
        Some(old)
    }

    /// The live events whose definition says they are no longer live at `now` (their
    /// schedule ends them).
    pub fn ending(&self, now: i64) -> Vec<String> {
        self.events()
            .iter()
            .filter(|ev| {
                ev.signal.state() == crate::protocol::EventState::Live
                    && ev.def.state(now) != crate::protocol::EventState::Live
            })
            .map(|ev| ev.id.clone())
            .collect()
    }

    /// Moves every event to the state its definition gives at `now` (a schedule starting or
    /// ending it); channels whose event changed send their status at once.
    pub fn refresh_states(&self, now: i64) {
        for ev in self.events().iter() {
            if ev.signal.set_state(ev.def.state(now)) {
                for ch in self.channels_of(ev) {
                    ch.refresh_status();
                }
            }
        }
    }
}
