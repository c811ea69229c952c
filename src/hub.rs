//! The registry: events and channels (from the config file and from the store, changed at
//! run time by organisers), who may publish and administer ([`auth`]), and the services every
//! connection shares (store, metrics, limits).
//!
//! Lookups clone an `Arc` out of the map or the event list, so no guard ever outlives the
//! call; changes ([`registry`]) swap a new event list in and never hold a lock across an
//! `.await`.

pub mod auth;
mod registry;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::catalog::{EventDef, Origin};
use crate::channel::{Channel, EventSignal};
use crate::config::{BoothConfig, Config, Limits};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
pub use auth::{Actor, Auth, Credential, Denied, Publisher};

/// How often listener counts are pushed (coalesced) to sockets.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(2);

/// An event and its channels, in definition order.
#[derive(Debug, Clone)]
pub struct EventInfo {
    pub id: String,
    pub title: String,
    pub channels: Vec<String>,
    /// The whole definition (schedule, state, access code, channels).
    pub def: EventDef,
    /// The state and revision its channels' sessions see.
    pub signal: Arc<EventSignal>,
}

/// Shared server state. Its `Debug` never prints a token or access code.
pub struct Hub {
    pub limits: Limits,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Every event, swapped whole on a change (readers clone the `Arc` out).
    events: RwLock<Arc<Vec<Arc<EventInfo>>>>,
    channels: DashMap<String, Arc<Channel>>,
    /// Publish tokens, credentials and admin tokens.
    pub auth: Auth,
    /// `[booth]`: the default handover rule of channels made at run time.
    booth: BoothConfig,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("events", &self.events().len())
            .field("channels", &self.channels.len())
            .field("store", &self.store)
            .field("tokens", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn key(event: &str, channel: &str) -> String {
    format!("{event}/{channel}")
}

impl Hub {
    /// Builds every channel of the config file's events and of the events kept in the store,
    /// restoring seq and history from the store, and loads the issued credentials.
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Hub, StoreError> {
        let mut auth = Auth::new(&config.admin.token);
        for ev in &config.events {
            for ch in &ev.channels {
                auth.add_file_channel(ev.id.get_ref(), ch.id.get_ref(), &ch.publish_tokens);
            }
        }
        let hub = Hub {
            limits: config.limits.clone(),
            store: store.clone(),
            metrics,
            events: RwLock::new(Arc::new(Vec::new())),
            channels: DashMap::new(),
            auth,
            booth: config.booth.clone(),
        };
        let mut defs: Vec<EventDef> = config.events.iter().map(EventDef::from_config).collect();
        for stored in store.stored_events()? {
            if defs.iter().any(|d| d.id == stored.id) {
                tracing::warn!(event = %stored.id, "an event made in the dashboard has the id of one in the config file; the file's is used");
                continue;
            }
            defs.push(stored);
        }
        let now = crate::clock::now_ms();
        for def in defs {
            let signal = EventSignal::new(def.state(now), def.rev);
            let channels = def
                .channels
                .iter()
                .map(|c| hub.build_channel(&def, c, &signal).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            hub.install(def, signal, channels);
        }
        for row in store.credentials()? {
            hub.auth.install(&row);
        }
        Ok(hub)
    }

    /// The channel, if it exists. The map guard is released before returning.
    pub fn channel(&self, event: &str, channel: &str) -> Option<Arc<Channel>> {
        self.channels
            .get(&key(event, channel))
            .map(|c| Arc::clone(c.value()))
    }

    /// Every event now, in order (the file's first).
    pub fn events(&self) -> Arc<Vec<Arc<EventInfo>>> {
        self.events
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The event, if it exists.
    pub fn event(&self, id: &str) -> Option<Arc<EventInfo>> {
        self.events().iter().find(|e| e.id == id).cloned()
    }

    /// Whether `token` may publish to the channel.
    pub fn may_publish(&self, event: &str, channel: &str, token: &str) -> bool {
        self.auth.publisher(event, channel, token).is_ok()
    }

    /// Whether `token` is an admin token in force.
    pub fn is_admin(&self, token: &str) -> bool {
        self.auth.admin(token).is_some()
    }

    /// Whether attendees need an access code for this event.
    pub fn needs_access_code(&self, event: &str) -> bool {
        self.event(event)
            .is_some_and(|e| e.def.access_code.is_some())
    }

    /// Whether `code` opens the event to attendees (constant-time comparison); always true
    /// for an event without an access code.
    pub fn may_attend(&self, event: &str, code: Option<&str>) -> bool {
        let Some(ev) = self.event(event) else {
            return true;
        };
        match (&ev.def.access_code, code) {
            (None, _) => true,
            (Some(want), Some(got)) => crate::secret::same(want, got),
            (Some(_), None) => false,
        }
    }

    /// Whether the event's transcript is published (readable by anyone).
    pub fn transcript_public(&self, event: &str) -> bool {
        self.event(event).is_some_and(|e| e.def.transcript_public)
    }

    /// Whether the event was declared in the config file.
    pub fn is_file_event(&self, event: &str) -> bool {
        self.event(event)
            .is_some_and(|e| e.def.origin == Origin::File)
    }

    /// Every channel of an event, in definition order.
    pub fn channels_of(&self, event: &EventInfo) -> Vec<Arc<Channel>> {
        event
            .channels
            .iter()
            .filter_map(|c| self.channel(&event.id, c))
            .collect()
    }

    /// Every channel, in order.
    pub fn all_channels(&self) -> Vec<Arc<Channel>> {
        self.events()
            .iter()
            .flat_map(|e| self.channels_of(e))
            .collect()
    }

    /// Pushes coalesced status (listener counts) to every channel every [`STATUS_INTERVAL`],
    /// and the status again on quiet channels as their heartbeat.
    pub async fn run_status_ticker(
        self: Arc<Self>,
        ingest: Arc<crate::ingest::Ingest>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(STATUS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // An event whose schedule starts or ends it now changes state; one that
                    // ends first commits its caption streams' lines in progress.
                    let now = crate::clock::now_ms();
                    for id in self.ending(now) {
                        ingest.end_event(&id).await;
                    }
                    self.refresh_states(now);
                    for ch in self.all_channels() {
                        ch.refresh_status();
                        ch.beat_if_quiet();
                    }
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Prometheus text of the process metrics and the per-channel series, appended to `out`.
    pub fn render_metrics(&self, out: &mut String) {
        self.metrics.render(out);
        let chans = self.all_channels();
        type Get = fn(&Channel) -> u64;
        let series: [(&str, &str, &str, Get); 11] = [
            (
                "babelcast_listeners",
                "gauge",
                "Listeners connected per channel.",
                |c| c.listeners(),
            ),
            (
                "babelcast_publishers",
                "gauge",
                "Publishers connected per channel.",
                |c| c.publishers(),
            ),
            (
                "babelcast_last_seq",
                "gauge",
                "Last committed seq per channel.",
                |c| c.last_seq(),
            ),
            (
                "babelcast_lines_total",
                "counter",
                "Committed lines per channel (since start).",
                |c| c.stats.lines.load(Ordering::Relaxed),
            ),
            (
                "babelcast_edits_total",
                "counter",
                "Committed edits per channel (since start).",
                |c| c.stats.edits.load(Ordering::Relaxed),
            ),
            (
                "babelcast_partials_total",
                "counter",
                "Partials received per channel.",
                |c| c.stats.partials.load(Ordering::Relaxed),
            ),
            (
                "babelcast_frames_out_total",
                "counter",
                "Frames written to listeners per channel.",
                |c| c.stats.frames_out.load(Ordering::Relaxed),
            ),
            (
                "babelcast_lang_mismatch_total",
                "counter",
                "Lines confidently detected as another language than the channel's.",
                |c| c.stats.lang_mismatches.load(Ordering::Relaxed),
            ),
            (
                "babelcast_slow_listener_closes_total",
                "counter",
                "Listeners closed with 4001 for falling too far behind.",
                |c| c.stats.behind_closes.load(Ordering::Relaxed),
            ),
            (
                "babelcast_listener_catch_ups_total",
                "counter",
                "Listeners that fell behind the fan-out ring and were caught up from memory.",
                |c| c.stats.catch_ups.load(Ordering::Relaxed),
            ),
            (
                "babelcast_partials_coalesced_total",
                "counter",
                "Partials listeners never received because a newer one replaced them first.",
                |c| c.stats.partials_coalesced.load(Ordering::Relaxed),
            ),
        ];
        crate::channel::render_audio_metrics(&chans, out);
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for c in &chans {
                let _ = writeln!(
                    out,
                    "{name}{{event=\"{}\",channel=\"{}\"}} {}",
                    c.info.event,
                    c.info.id,
                    get(c)
                );
            }
        }
    }
}
