//! The registry: events and channels, their publish tokens and access codes, the admin token,
//! and the services every connection shares (store, metrics, limits).
//!
//! Lookups clone the channel's `Arc` out of the map, so no map guard ever outlives the call.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, ChannelInfo};
use crate::config::{Config, Limits};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// How often listener counts are pushed (coalesced) to sockets.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(2);

/// An event and its channels, in config order.
#[derive(Debug, Clone)]
pub struct EventInfo {
    pub id: String,
    pub title: String,
    pub channels: Vec<String>,
}

/// Shared server state. Its `Debug` never prints a token or access code.
pub struct Hub {
    pub limits: Limits,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub events: Vec<EventInfo>,
    channels: DashMap<String, Arc<Channel>>,
    tokens: DashMap<String, Vec<String>>,
    admin_token: String,
    /// Attendee access codes of the events that have one (`[[events]] access_code`).
    access_codes: std::collections::HashMap<String, String>,
    /// True for tokens made at start (printed once).
    pub generated_tokens: bool,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("events", &self.events)
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
    /// Builds every channel from config, restoring seq and history from the store.
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Hub, StoreError> {
        let channels = DashMap::new();
        let tokens = DashMap::new();
        let mut events = Vec::new();
        let mut access_codes = std::collections::HashMap::new();
        let mut generated = false;
        for ev in &config.events {
            let mut ids = Vec::new();
            for ch in &ev.channels {
                let (last_seq, last_ts, recent) = store.load_channel(
                    ev.id.get_ref(),
                    ch.id.get_ref(),
                    config.limits.history_in_memory,
                )?;
                let lang = ch.lang.get_ref().clone();
                let info = ChannelInfo {
                    event: ev.id.get_ref().clone(),
                    id: ch.id.get_ref().clone(),
                    label: if ch.label.is_empty() {
                        crate::langid::native_name(&lang)
                            .unwrap_or(&lang)
                            .to_string()
                    } else {
                        ch.label.clone()
                    },
                    lang,
                    source: ch.source.as_ref().map(|s| s.get_ref().clone()),
                };
                let channel = Channel::new(
                    info,
                    last_seq,
                    last_ts,
                    recent,
                    config.limits.history_in_memory,
                    config.limits.listener_queue,
                )
                .with_takeover_after(ch.takeover_after(&config.booth));
                let k = key(ev.id.get_ref(), ch.id.get_ref());
                let toks = if ch.publish_tokens.is_empty() {
                    generated = true;
                    vec![crate::secret::random_token()]
                } else {
                    ch.publish_tokens.clone()
                };
                tokens.insert(k.clone(), toks);
                channels.insert(k, Arc::new(channel));
                ids.push(ch.id.get_ref().clone());
            }
            if let Some(code) = &ev.access_code {
                access_codes.insert(ev.id.get_ref().clone(), code.clone());
            }
            events.push(EventInfo {
                id: ev.id.get_ref().clone(),
                title: ev.title.clone(),
                channels: ids,
            });
        }
        let admin_token = if config.admin.token.is_empty() {
            generated = true;
            crate::secret::random_token()
        } else {
            config.admin.token.clone()
        };
        Ok(Hub {
            limits: config.limits.clone(),
            store,
            metrics,
            events,
            channels,
            tokens,
            admin_token,
            access_codes,
            generated_tokens: generated,
        })
    }

    /// The channel, if it exists. The map guard is released before returning.
    pub fn channel(&self, event: &str, channel: &str) -> Option<Arc<Channel>> {
        self.channels
            .get(&key(event, channel))
            .map(|c| Arc::clone(c.value()))
    }

    /// The event, if it exists.
    pub fn event(&self, id: &str) -> Option<&EventInfo> {
        self.events.iter().find(|e| e.id == id)
    }

    /// Whether `token` may publish to the channel (constant-time comparison).
    pub fn may_publish(&self, event: &str, channel: &str, token: &str) -> bool {
        self.credential(event, channel, token).is_some()
    }

    /// Which of the channel's publish tokens `token` is (its index), if any (compared with
    /// every token, in constant time).
    pub fn credential(&self, event: &str, channel: &str, token: &str) -> Option<u32> {
        let tokens = self.tokens.get(&key(event, channel)).map(|t| t.clone())?;
        crate::secret::position(tokens.iter(), token).map(|i| i as u32)
    }

    /// Whether `token` is the admin token (constant-time comparison).
    pub fn is_admin(&self, token: &str) -> bool {
        crate::secret::same(&self.admin_token, token)
    }

    /// Whether attendees need an access code for this event.
    pub fn needs_access_code(&self, event: &str) -> bool {
        self.access_codes.contains_key(event)
    }

    /// Whether `code` opens the event to attendees (constant-time comparison); always true
    /// for an event without an access code.
    pub fn may_attend(&self, event: &str, code: Option<&str>) -> bool {
        match (self.access_codes.get(event), code) {
            (None, _) => true,
            (Some(want), Some(got)) => crate::secret::same(want, got),
            (Some(_), None) => false,
        }
    }

    /// The admin token (for the one-time startup banner only).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The first publish token of a channel (for the startup banner and the demo only).
    pub fn publish_token(&self, event: &str, channel: &str) -> Option<String> {
        self.tokens
            .get(&key(event, channel))
            .and_then(|t| t.first().cloned())
    }

    /// Every channel of an event, in config order.
    pub fn channels_of(&self, event: &EventInfo) -> Vec<Arc<Channel>> {
        event
            .channels
            .iter()
            .filter_map(|c| self.channel(&event.id, c))
            .collect()
    }

    /// Every channel, in config order.
    pub fn all_channels(&self) -> Vec<Arc<Channel>> {
        self.events
            .iter()
            .flat_map(|e| self.channels_of(e))
            .collect()
    }

    /// Pushes coalesced status (listener counts) to every channel every [`STATUS_INTERVAL`],
    /// and the status again on quiet channels as their heartbeat.
    pub async fn run_status_ticker(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(STATUS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
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
