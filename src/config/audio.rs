//! `[audio]`: the interpreters' voices (docs/audio.md): the size and rate of the Opus packets
//! a publisher may send, and whether each channel's sound is recorded.

use serde::Deserialize;

/// Default largest packet: a 60 ms packet at 128 kbit/s is under 1 KiB; 4 KiB leaves room for
/// 120 ms stereo at high rates.
pub const DEFAULT_MAX_PACKET_BYTES: usize = 4096;
/// The largest `max_packet_bytes` accepted: a packet and its 16-byte header in one WebSocket
/// frame with a two-byte length.
pub const MAX_MAX_PACKET_BYTES: usize = 16 * 1024;
/// Default packets per second per publisher: 20 ms packets are 50 a second; 2.5 ms ones (the
/// shortest Opus frame) would be 400, which no voice needs.
pub const DEFAULT_PACKET_RATE: f64 = 100.0;

/// `[audio]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// Record each channel's sound as Ogg Opus next to its transcript:
    /// `{storage.dir}/audio/{event}/{channel}/{unix-ms}.opus`, one file per stretch of sound.
    /// Off by default.
    pub record: bool,
    /// Largest Opus packet a publisher may send, in bytes (larger ones are refused).
    pub max_packet_bytes: usize,
    /// Opus packets per second one publishing connection may send, sustained (a burst of
    /// as many again is allowed); faster ones are dropped and refused with `rate_limited`.
    pub packet_rate: f64,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            record: false,
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
            packet_rate: DEFAULT_PACKET_RATE,
        }
    }
}

impl AudioConfig {
    /// Problems with the section, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(16..=MAX_MAX_PACKET_BYTES).contains(&self.max_packet_bytes) {
            p.push(format!(
                "audio.max_packet_bytes: {} is out of range: use 16 to {MAX_MAX_PACKET_BYTES} (default {DEFAULT_MAX_PACKET_BYTES})",
                self.max_packet_bytes
            ));
        }
        if !self.packet_rate.is_finite() || self.packet_rate < 10.0 || self.packet_rate > 1000.0 {
            p.push(format!(
                "audio.packet_rate: {} is out of range: use 10 to 1000 packets per second (default {DEFAULT_PACKET_RATE})",
                self.packet_rate
            ));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated_by_name() {
        assert!(AudioConfig::default().problems().is_empty());
        let bad = AudioConfig {
            record: true,
            max_packet_bytes: 70_000,
            packet_rate: 0.0,
        };
        let p = bad.problems();
        assert!(p[0].starts_with("audio.max_packet_bytes"), "{p:?}");
        assert!(p[1].starts_with("audio.packet_rate"), "{p:?}");
    }
}
