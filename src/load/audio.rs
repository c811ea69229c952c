//! Sound in a load run (`--audio-listeners N`): one feed per channel sends Opus-framed packets
//! at the codec's rate (`--audio-rate`, 50 a second = 20 ms packets) carrying the sender's
//! clock; the first N listeners ask for sound (`?audio=1`) and time every packet, count those
//! later than [`LATE_MS`], and the packets they never got (the server skips for a listener
//! that is behind, by design: old sound is worthless).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde::Serialize;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use super::client::{connect, BACKOFF_MAX, BACKOFF_MIN};
use super::stats::{Histogram, Quantiles};
use super::{now_micros, RunState};
use crate::protocol::audio::{AudioHeader, KIND_OPUS};

/// A packet later than this (sender to listener) counts as late: a phone's jitter buffer
/// would have given up on it.
pub const LATE_MS: u64 = 500;
/// The Opus table of contents of the packets: CELT, fullband, 20 ms, mono, one frame.
const TOC_20MS: u8 = 0xf8;

/// What the run's sound counters hold.
#[derive(Debug, Default)]
pub struct AudioRun {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub late: AtomicU64,
    /// Packets a listener never got (gaps in its packet numbers).
    pub skipped: AtomicU64,
    pub latency: Histogram,
}

/// The sound part of a report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AudioReport {
    pub listeners: usize,
    pub sent: u64,
    pub received: u64,
    /// Packets later than [`LATE_MS`].
    pub late: u64,
    pub skipped: u64,
    pub latency: Quantiles,
}

impl AudioRun {
    pub fn report(&self, listeners: usize) -> AudioReport {
        AudioReport {
            listeners,
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            latency: self.latency.summary(),
        }
    }
}

/// One listener's view of the packets (their numbers, to count skipped ones).
#[derive(Debug, Default)]
pub struct AudioTrack {
    last: Option<u32>,
}

impl AudioTrack {
    /// A binary frame this listener received.
    pub fn packet(&mut self, run: &AudioRun, frame: &[u8]) {
        let Some((h, opus)) = AudioHeader::decode(frame) else {
            return;
        };
        if let Some(sent) = opus.get(1..9).and_then(|b| b.try_into().ok()) {
            let lat = now_micros().saturating_sub(u64::from_be_bytes(sent));
            run.latency.record(lat);
            if lat > LATE_MS * 1000 {
                run.late.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(last) = self.last {
            let gap = h.packet.wrapping_sub(last).wrapping_sub(1);
            if gap < u32::MAX / 2 {
                run.skipped.fetch_add(u64::from(gap), Ordering::Relaxed);
            }
        }
        self.last = Some(h.packet);
        run.received.fetch_add(1, Ordering::Relaxed);
    }
}

/// A packet of `bytes` bytes: the TOC, the sender's clock (µs), then filler.
fn packet(bytes: usize) -> Vec<u8> {
    let mut p = vec![KIND_OPUS, TOC_20MS];
    p.extend_from_slice(&now_micros().to_be_bytes());
    p.resize(bytes.max(9) + 1, 0x55);
    p
}

/// Sends packets on channel `chan`'s feed at the configured rate until the run's publishing
/// time is over, reconnecting if it must (packets meanwhile are dropped, as a mixer's would).
pub(super) async fn feed(shared: Arc<RunState>, chan: usize) {
    let cfg = &shared.cfg;
    let ch = &shared.channels[chan];
    let path = format!(
        "{}?token={}",
        ch.publish_path.replace("/publish", "/audio/publish"),
        cfg.token
    );
    // Sound starts with the lines, once the publishers are on air.
    let on_air = Duration::from_secs_f64(cfg.on_air_secs.max(0.0));
    tokio::select! {
        _ = shared.stop.cancelled() => return,
        _ = tokio::time::sleep(on_air) => {}
    }
    let end = Instant::now() + Duration::from_secs_f64(cfg.duration_secs);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / cfg.audio_rate.max(1.0)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut backoff = BACKOFF_MIN;
    let mut ws = None;
    while Instant::now() < end {
        if ws.is_none() {
            match connect(
                shared.addr,
                &shared.host,
                &path,
                None,
                None,
                shared.tls.as_ref(),
            )
            .await
            {
                Ok((w, _)) => {
                    ws = Some(w);
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "sound feed cannot connect; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        tick.tick().await;
        let Some(w) = ws.as_mut() else { continue };
        if w.send(Message::Binary(packet(cfg.audio_bytes).into()))
            .await
            .is_err()
        {
            ws = None;
            continue;
        }
        shared.audio.sent.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(mut w) = ws {
        let _ = w.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::audio::{publisher_packet, AudioHeader};

    #[test]
    fn packets_are_opus_framed_and_timed() {
        let p = packet(60);
        let (opus, samples) = publisher_packet(&p, 4096).unwrap();
        assert_eq!((opus.len(), samples), (60, 960));
        let run = AudioRun::default();
        let mut t = AudioTrack::default();
        for n in [1u32, 2, 5] {
            let h = AudioHeader {
                flags: 0,
                voice: 1,
                packet: n,
                ts_ms: 0,
                samples: 960,
            };
            t.packet(&run, &[&h.encode()[..], opus].concat());
        }
        let r = run.report(1);
        assert_eq!((r.received, r.skipped, r.late), (3, 2, 0));
    }
}
