//! Admission of sound: one Opus packet from a booth partner's publish socket or a sound feed,
//! checked (framing, size, rate), put through the booth rule (a partner is heard only while on
//! air: the same [`Booth`](crate::booth::Booth) as text), then relayed by the channel
//! ([`Channel::publish_audio`]), recorded, and in a cluster sent to the other nodes.

use std::sync::Arc;
use std::time::Instant;

use super::Ingest;
use crate::channel::{Channel, Packet, Source};
use crate::clock::now_ms;
use crate::config::AudioConfig;
use crate::limiter::TokenBucket;
use crate::protocol::audio::publisher_packet;
use crate::protocol::{ErrorCode, Refusal};
use crate::recording::{Recorded, Recorder};

/// Where heard packets go besides this node's listeners: in a cluster, the other nodes
/// (core NATS, no persistence). Must not wait: a full link drops the packet.
pub trait AudioRelay: Send + Sync {
    fn relay(&self, channel: &Arc<Channel>, source: Source, packet: &Packet);
}

/// One publishing connection's sound: who it is and its packet rate.
#[derive(Debug)]
pub struct AudioIn {
    source: Source,
    rate: TokenBucket,
    /// Packets refused for the rate since the last refusal was reported.
    over_rate: bool,
}

impl AudioIn {
    /// A booth partner (by booth id): heard only while on air.
    pub fn partner(id: u64, cfg: &AudioConfig) -> AudioIn {
        AudioIn::new(Source::Partner(id), cfg)
    }

    /// A sound feed with a random id, unique across the nodes of a cluster.
    pub fn feed(cfg: &AudioConfig) -> AudioIn {
        AudioIn::new(Source::Feed(rand::random::<u64>() >> 11), cfg)
    }

    fn new(source: Source, cfg: &AudioConfig) -> AudioIn {
        AudioIn {
            source,
            rate: TokenBucket::new(cfg.packet_rate, cfg.packet_rate, Instant::now()),
            over_rate: false,
        }
    }
}

/// What became of an admitted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Relayed to the channel's listeners.
    Yes,
    /// Not heard: a standby partner, or a feed while the partner (or another feed) speaks.
    HeldBack,
}

impl Ingest {
    /// Cluster mode: heard packets go to the other nodes through `relay` from now on.
    pub fn set_audio_relay(&self, relay: Arc<dyn AudioRelay>) {
        if self.audio_relay.set(relay).is_err() {
            tracing::warn!("audio relay set twice; keeping the first");
        }
    }

    /// `[audio] record`: heard packets are recorded by `recorder` from now on.
    pub fn set_recorder(&self, recorder: Arc<Recorder>) {
        if self.recorder.set(recorder).is_err() {
            tracing::warn!("recorder set twice; keeping the first");
        }
    }

    /// Ends the recordings (at shutdown).
    pub fn close_recordings(&self) {
        if let Some(r) = self.recorder.get() {
            r.close();
        }
    }

    /// The recorder, if `[audio] record` is on.
    pub fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.recorder.get()
    }

    /// Admits one binary frame from `from`'s connection: refused (a specific error, nothing
    /// relayed) if it is not one well-formed Opus packet or comes too fast; otherwise heard
    /// or held back by the booth rule.
    pub async fn admit_audio(
        &self,
        channel: &Arc<Channel>,
        from: &mut AudioIn,
        frame: &[u8],
    ) -> Result<Heard, Refusal> {
        let (opus, samples) = publisher_packet(frame, self.audio.max_packet_bytes)
            .map_err(|e| Refusal::new(ErrorCode::BadAudio, e.message()))?;
        if !from.rate.try_take(Instant::now()) {
            // One refusal per burst: the sender hears it once, not fifty times a second.
            let first = !std::mem::replace(&mut from.over_rate, true);
            return match first {
                true => Err(Refusal::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} sound packets per second: packets are being dropped",
                        self.audio.packet_rate
                    ),
                )),
                false => Ok(Heard::HeldBack),
            };
        }
        from.over_rate = false;
        if let Source::Partner(id) = from.source {
            if !channel.booth.is_on_air(id) {
                // A standby partner's microphone never reaches listeners.
                channel.hold_back_audio();
                return Ok(Heard::HeldBack);
            }
        }
        let ts = now_ms();
        match channel.publish_audio(from.source, ts, samples, opus).await {
            Some(packet) => {
                if let Some(relay) = self.audio_relay.get() {
                    relay.relay(channel, from.source, &packet);
                }
                self.record(channel, &packet);
                Ok(Heard::Yes)
            }
            None => Ok(Heard::HeldBack),
        }
    }

    /// A packet another node heard (cluster mode): relayed here by the same rules, recorded.
    pub async fn remote_audio(
        &self,
        channel: &Arc<Channel>,
        source: Source,
        ts_ms: i64,
        opus: &[u8],
    ) {
        let Ok(samples) = crate::protocol::audio::opus_samples(opus) else {
            return;
        };
        if let Some(packet) = channel.publish_audio(source, ts_ms, samples, opus).await {
            self.record(channel, &packet);
        }
    }

    fn record(&self, channel: &Channel, packet: &Packet) {
        if let Some(r) = self.recorder.get() {
            let h = packet.header();
            r.record(Recorded {
                event: channel.info.event.clone(),
                channel: channel.info.id.clone(),
                ts_ms: h.ts_ms,
                samples: u32::from(h.samples),
                opus: packet.opus(),
            });
        }
    }
}
