//! A channel's sound: which voice is heard, and its Opus packets, each framed once and handed
//! to every listener that asked for sound.
//!
//! The server never decodes a packet. [`ChannelAudio::publish`] decides whether a source is
//! heard (see [`Source`]: the booth's on-air partner, checked by the ingest layer, before any
//! feed), numbers the packet, builds its WebSocket binary frame once and
//! - writes it to every audio listener's direct socket (plain TCP or TLS, parked or not) with
//!   one non-blocking write ([`listeners`]): a socket that cannot take it now skips it (old
//!   sound is worthless, so nothing is queued per listener), and never slows the others;
//! - puts it in a small ring of the newest packets ([`RING`]) for listeners whose session
//!   writes for itself (a socket the server did not accept itself, so not a direct one): a
//!   session that falls behind the ring skips to its newest packets.
//!
//! **Invariants:** one frame per packet, shared; the state mutex and a socket's lock are held
//! only for synchronous work, never across an `.await`; at most [`RING`] packets per channel
//! are kept, whatever the number of listeners.

mod listeners;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast;

pub use listeners::AudioSlot;
use listeners::DirectListeners;

use super::{Channel, DirectSocket};
use crate::protocol::audio::{AudioHeader, FLAG_NEW_VOICE, HEADER_LEN};

/// Packets kept for listeners whose session writes them (~0.3 s of 20 ms packets): a session
/// further behind skips to the newest ones.
pub const RING: usize = 16;
/// No packet for this long and the channel has no voice (status `audio: false`); the next
/// packet starts a new voice (listeners restart their playout).
pub const VOICE_IDLE: Duration = Duration::from_millis(1500);
/// A feed is heard only once the on-air partner has sent no sound for this long; another feed
/// takes over from a feed silent for this long.
pub const FEED_YIELD: Duration = Duration::from_millis(500);

/// Where a packet comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A booth partner's microphone, by booth id; heard only while on air (checked by the
    /// ingest layer), and before any feed.
    Partner(u64),
    /// A sound feed (`…/audio/publish`: a room mixer, `babelcast push-audio`, a booth console
    /// in floor mode), by connection id: heard while no on-air partner sends sound; the first
    /// feed to speak keeps the channel until it falls silent.
    Feed(u64),
}

/// One heard packet: its listener frame (header and Opus packet) inside the WebSocket frame
/// that carries it, shared by every listener.
#[derive(Debug, Clone)]
pub struct Packet {
    wire: Bytes,
    /// Where the listener frame starts in `wire` (after the WebSocket header).
    at: usize,
}

impl Packet {
    /// The whole WebSocket binary frame (for a direct write).
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The binary message: header and Opus packet (for a session's own WebSocket).
    pub fn message(&self) -> Bytes {
        self.wire.slice(self.at..)
    }

    /// The header a listener reads.
    pub fn header(&self) -> AudioHeader {
        AudioHeader::decode(&self.wire[self.at..])
            .expect("a packet always starts with its header")
            .0
    }

    /// The Opus packet.
    pub fn opus(&self) -> Bytes {
        self.wire.slice(self.at + HEADER_LEN..)
    }
}

/// Counters of a channel's sound, for `/metrics`.
#[derive(Debug, Default)]
pub struct AudioStats {
    /// Packets heard (relayed to listeners).
    pub packets: AtomicU64,
    /// Packets of a standby partner or a feed that were not heard.
    pub held_back: AtomicU64,
    /// Packets written to listeners.
    pub frames_out: AtomicU64,
    /// Packets a listener skipped because its socket or session was behind.
    pub skipped: AtomicU64,
}

#[derive(Debug, Default)]
struct Voice {
    current: Option<Source>,
    voice: u16,
    packet: u32,
    last_at: Option<Instant>,
    last_partner_at: Option<Instant>,
}

/// The sound of one channel.
#[derive(Debug)]
pub struct ChannelAudio {
    state: Mutex<Voice>,
    ring: broadcast::Sender<Packet>,
    direct: DirectListeners,
    pub stats: AudioStats,
}

impl Default for ChannelAudio {
    fn default() -> Self {
        ChannelAudio {
            state: Mutex::default(),
            ring: broadcast::channel(RING).0,
            direct: DirectListeners::default(),
            stats: AudioStats::default(),
        }
    }
}

fn within(at: Option<Instant>, now: Instant, d: Duration) -> bool {
    at.is_some_and(|t| now.saturating_duration_since(t) < d)
}

impl ChannelAudio {
    fn state(&self) -> MutexGuard<'_, Voice> {
        // Nothing panics while holding this lock; the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the channel has a voice now.
    pub fn live(&self) -> bool {
        within(self.state().last_at, Instant::now(), VOICE_IDLE)
    }

    /// Decides whether `src` is heard, and if so numbers the packet and frames it once.
    /// Returns the packet and whether the channel had no voice before it.
    fn admit(&self, src: Source, ts_ms: i64, samples: u32, opus: &[u8]) -> Option<(Packet, bool)> {
        let now = Instant::now();
        let mut st = self.state();
        let heard_recently = within(st.last_at, now, VOICE_IDLE);
        match src {
            Source::Partner(_) => st.last_partner_at = Some(now),
            Source::Feed(_) if within(st.last_partner_at, now, FEED_YIELD) => return None,
            Source::Feed(_) => match st.current {
                Some(cur @ Source::Feed(_))
                    if cur != src && within(st.last_at, now, FEED_YIELD) =>
                {
                    return None
                }
                _ => {}
            },
        }
        let new_voice = st.current != Some(src) || !heard_recently;
        if new_voice {
            st.voice = st.voice.wrapping_add(1);
        }
        st.current = Some(src);
        st.packet = st.packet.wrapping_add(1);
        st.last_at = Some(now);
        let header = AudioHeader {
            flags: if new_voice { FLAG_NEW_VOICE } else { 0 },
            voice: st.voice,
            packet: st.packet,
            ts_ms,
            samples: samples.min(u16::MAX as u32) as u16,
        };
        drop(st);
        Some((frame(&header, opus), !heard_recently))
    }

    /// A receiver of the newest packets, for a listener whose session writes them itself.
    pub fn subscribe(&self) -> broadcast::Receiver<Packet> {
        self.ring.subscribe()
    }

    /// Adds a listener whose socket is written directly; it stays until
    /// [`leave_direct`](Self::leave_direct).
    pub fn join_direct(&self, conn: &DirectSocket) -> AudioSlot {
        self.direct.join(conn)
    }

    /// Removes a direct listener.
    pub fn leave_direct(&self, slot: AudioSlot) {
        self.direct.leave(slot)
    }

    /// Listeners written directly (tests and metrics).
    pub fn direct_count(&self) -> usize {
        self.direct.count()
    }
}

/// The per-channel sound series for `/metrics`.
pub fn render_metrics(chans: &[std::sync::Arc<Channel>], out: &mut String) {
    use std::fmt::Write as _;
    type Get = fn(&AudioStats) -> u64;
    let series: [(&str, &str, Get); 4] = [
        (
            "babelcast_audio_packets_total",
            "Sound packets heard (relayed to listeners) per channel.",
            |s| s.packets.load(Ordering::Relaxed),
        ),
        (
            "babelcast_audio_held_back_total",
            "Sound packets not heard: a standby partner's, or a feed's while the partner spoke.",
            |s| s.held_back.load(Ordering::Relaxed),
        ),
        (
            "babelcast_audio_frames_out_total",
            "Sound packets written to listeners per channel.",
            |s| s.frames_out.load(Ordering::Relaxed),
        ),
        (
            "babelcast_audio_skipped_total",
            "Sound packets a listener skipped because it was behind (old sound is not queued).",
            |s| s.skipped.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for c in chans {
            let (e, id) = (&c.info.event, &c.info.id);
            let _ = writeln!(
                out,
                "{name}{{event=\"{e}\",channel=\"{id}\"}} {}",
                get(&c.audio.stats)
            );
        }
    }
}

/// A packet's WebSocket binary frame: header, listener header, Opus, in one buffer.
fn frame(header: &AudioHeader, opus: &[u8]) -> Packet {
    let len = HEADER_LEN + opus.len();
    let mut out = Vec::with_capacity(len + 4);
    out.push(0x82); // FIN + binary
    if len < 126 {
        out.push(len as u8);
    } else {
        // A packet is at most 64 KiB (max_packet_bytes is validated below that).
        out.push(126);
        out.extend_from_slice(&(len.min(u16::MAX as usize) as u16).to_be_bytes());
    }
    let at = out.len();
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(opus);
    Packet {
        wire: Bytes::from(out),
        at,
    }
}

impl Channel {
    /// The channel's sound.
    pub fn audio(&self) -> &ChannelAudio {
        &self.audio
    }

    /// Relays one Opus packet of `src` received at `ts_ms` (Unix ms) if it is heard (see
    /// [`Source`]; the booth rule is the caller's): to every listener that asked for sound.
    /// Returns the heard packet (for the recorder and the cluster), `None` if not heard.
    pub async fn publish_audio(
        &self,
        src: Source,
        ts_ms: i64,
        samples: u32,
        opus: &[u8],
    ) -> Option<Packet> {
        let stats = &self.audio.stats;
        let Some((packet, started)) = self.audio.admit(src, ts_ms, samples, opus) else {
            stats.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        stats.packets.fetch_add(1, Ordering::Relaxed);
        // Nobody listening through a session is fine.
        let _ = self.audio.ring.send(packet.clone());
        let (written, skipped) = self.audio.direct.write_all(packet.wire()).await;
        stats.frames_out.fetch_add(written, Ordering::Relaxed);
        stats.skipped.fetch_add(skipped, Ordering::Relaxed);
        if started {
            // The channel has a voice again: every listener's status says so.
            self.refresh_status();
        }
        Some(packet)
    }

    /// A packet of `src` that was not heard (a standby partner's): counted only.
    pub fn hold_back_audio(&self) {
        self.audio.stats.held_back.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opus() -> [u8; 3] {
        [0xf8, 0xff, 0xfe]
    }

    #[test]
    fn frames_once_with_numbers_and_new_voices() {
        let a = ChannelAudio::default();
        let (p1, started) = a.admit(Source::Partner(1), 7, 960, &opus()).unwrap();
        assert!(started);
        assert_eq!(&p1.wire()[..2], &[0x82, (HEADER_LEN + 3) as u8]);
        assert_eq!(&p1.opus()[..], &opus());
        let h1 = p1.header();
        assert_eq!(
            (h1.flags, h1.packet, h1.ts_ms, h1.samples),
            (FLAG_NEW_VOICE, 1, 7, 960)
        );
        let (p2, started) = a.admit(Source::Partner(1), 8, 960, &opus()).unwrap();
        assert!(!started);
        assert_eq!((p2.header().flags, p2.header().voice), (0, h1.voice));
        // A handover: the next partner's first packet starts a new voice.
        let (p3, _) = a.admit(Source::Partner(2), 9, 960, &opus()).unwrap();
        assert_eq!(p3.header().flags, FLAG_NEW_VOICE);
        assert_eq!(p3.header().voice, h1.voice.wrapping_add(1));
        assert_eq!(p3.header().packet, 3);
        assert!(a.live());
    }

    #[test]
    fn feeds_yield_to_the_partner_and_to_the_feed_that_speaks() {
        let a = ChannelAudio::default();
        assert!(a.admit(Source::Feed(10), 1, 960, &opus()).is_some());
        // A second feed waits while the first one speaks.
        assert!(a.admit(Source::Feed(11), 1, 960, &opus()).is_none());
        assert!(a.admit(Source::Feed(10), 2, 960, &opus()).is_some());
        // The on-air partner speaks: feeds are not heard.
        assert!(a.admit(Source::Partner(1), 3, 960, &opus()).is_some());
        assert!(a.admit(Source::Feed(10), 4, 960, &opus()).is_none());
        // Long silence of the partner (as if FEED_YIELD had passed): the feed is back.
        a.state().last_partner_at = Instant::now().checked_sub(FEED_YIELD);
        a.state().last_at = Instant::now().checked_sub(FEED_YIELD);
        let (p, _) = a.admit(Source::Feed(11), 5, 960, &opus()).unwrap();
        assert_eq!(p.header().flags, FLAG_NEW_VOICE);
    }

    #[test]
    fn long_packets_get_a_two_byte_length() {
        let a = ChannelAudio::default();
        let big = vec![0xf8; 400];
        let (p, _) = a.admit(Source::Partner(1), 1, 960, &big).unwrap();
        let len = HEADER_LEN + 400;
        assert_eq!(&p.wire()[..4], &[0x82, 126, (len >> 8) as u8, len as u8]);
        assert_eq!(p.message().len(), len);
    }
}
