//! A load-run listener: joins its channel with `since=`, checks that it sees every seq after
//! the one it joined at exactly once and in order, times every delivery by its token, and
//! reconnects (server restart, `4001`, `--drop-at` storm) where it left off.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::audio::AudioTrack;
use super::captions::{event_seq, token_micros};
use super::client::{connect, ConnectError, BACKOFF_MAX, BACKOFF_MIN};
use super::{now_micros, RunState};
use crate::protocol::{CLOSE_BEHIND, CLOSE_GOING_AWAY};

/// What one listener saw, judged against the channel's last seq at the end.
#[derive(Debug, Default, Clone)]
pub struct ListenerOutcome {
    pub slow: bool,
    pub connected: bool,
    pub missing: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub resets: u64,
    pub reconnects: u64,
}

/// Seq bookkeeping of one listener.
struct Track {
    base: u64,
    next: u64,
    holes: BTreeSet<u64>,
    duplicated: u64,
    out_of_order: u64,
}

impl Track {
    fn on_seq(&mut self, seq: u64) {
        if seq <= self.base {
            return; // history from before the run
        }
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.holes.extend(self.next..seq);
            self.next = seq + 1;
        } else if self.holes.remove(&seq) {
            self.out_of_order += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// Every seq up to this one has been seen.
    fn contiguous(&self) -> u64 {
        self.holes.first().map_or(self.next - 1, |&first| first - 1)
    }
}

/// Runs listener `idx` until the run stops: connect, read, reconnect with `since=`.
pub(super) async fn listener(
    shared: Arc<RunState>,
    idx: usize,
    chan: usize,
    slow: bool,
) -> ListenerOutcome {
    let ch = &shared.channels[chan];
    let base = ch.base.load(Ordering::Relaxed);
    let mut track = Track {
        base,
        next: base + 1,
        holes: BTreeSet::new(),
        duplicated: 0,
        out_of_order: 0,
    };
    let mut out = ListenerOutcome {
        slow,
        ..Default::default()
    };
    let mut drop_rx = shared.drop_all.subscribe();
    let mut sound_track = AudioTrack::default();
    let mut disconnected: Option<Instant> = None;
    let mut backoff = BACKOFF_MIN;
    let mut source_slot = idx % shared.cfg.source_addrs.max(1);
    'connect: loop {
        let since = track.contiguous();
        let sound = if idx < shared.cfg.audio_listeners {
            "&audio=1"
        } else {
            ""
        };
        let path = format!("{}?since={since}{sound}", ch.path);
        let permit = shared.connect_slots.acquire().await;
        let started = Instant::now();
        let source = shared.source(source_slot);
        let result = tokio::select! {
            _ = shared.stop.cancelled() => break 'connect,
            r = connect(shared.addr, &shared.host, &path, source, slow.then_some(shared.cfg.slow_rcvbuf), shared.tls.as_ref()) => r,
        };
        drop(permit);
        let mut ws = match result {
            Ok((ws, hello)) => {
                if hello.reset {
                    out.resets += 1;
                }
                let _ = hello.seq;
                ws
            }
            Err(e) => {
                if let ConnectError::Io(io) = &e {
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable
                    ) {
                        // This source address ran out of ports: move on to the next one.
                        source_slot += shared.cfg.source_addrs.max(1);
                    }
                }
                shared
                    .counters
                    .connect_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(listener = idx, error = %e, "connect failed; retrying");
                tokio::select! {
                    _ = shared.stop.cancelled() => break 'connect,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        match disconnected.take() {
            None => {
                if !out.connected {
                    out.connected = true;
                    shared
                        .connect_time
                        .record(started.elapsed().as_micros() as u64);
                    shared.counters.connected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(at) => {
                out.reconnects += 1;
                shared.resume_time.record(at.elapsed().as_micros() as u64);
                shared.counters.resumed.fetch_add(1, Ordering::Relaxed);
                shared.mark_resumed();
            }
        }
        loop {
            let msg = tokio::select! {
                biased;
                _ = shared.stop.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    break 'connect;
                }
                r = drop_rx.changed() => {
                    if r.is_err() {
                        break 'connect;
                    }
                    // Client-side reconnect storm: drop the socket without a goodbye.
                    drop(ws);
                    shared.mark_disconnected();
                    disconnected = Some(Instant::now());
                    continue 'connect;
                }
                msg = ws.next() => msg,
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Binary(b))) => {
                    sound_track.packet(&shared.audio, &b);
                    continue;
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    let c = &shared.counters;
                    match code {
                        CLOSE_GOING_AWAY => c.close_going_away.fetch_add(1, Ordering::Relaxed),
                        CLOSE_BEHIND => c.close_behind.fetch_add(1, Ordering::Relaxed),
                        _ => c.close_other.fetch_add(1, Ordering::Relaxed),
                    };
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    shared.counters.close_other.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            };
            let t = text.as_str();
            if let Some(seq) = event_seq(t) {
                track.on_seq(seq);
                shared.progress[idx].store(track.contiguous(), Ordering::Relaxed);
                if let Some(sent) = token_micros(t) {
                    let lat = now_micros().saturating_sub(sent);
                    if slow {
                        shared.latency_slow.record(lat);
                    } else {
                        shared.latency_fast.record(lat);
                    }
                }
                shared.counters.line_frames.fetch_add(1, Ordering::Relaxed);
            } else if t.starts_with(r#"{"type":"partial""#) {
                if let Some(sent) = token_micros(t) {
                    shared
                        .partial_latency
                        .record(now_micros().saturating_sub(sent));
                }
                shared
                    .counters
                    .partial_frames
                    .fetch_add(1, Ordering::Relaxed);
                if slow {
                    shared
                        .counters
                        .slow_partial_frames
                        .fetch_add(1, Ordering::Relaxed);
                }
            } else {
                shared.counters.other_frames.fetch_add(1, Ordering::Relaxed);
            }
            let live = shared.live.load(Ordering::Relaxed);
            if shared.cfg.read_delay_us > 0 && live {
                // A slower reader: busy, as a phone's CPU would be, not asleep.
                let until = Instant::now() + Duration::from_micros(shared.cfg.read_delay_us);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            if slow && live {
                tokio::time::sleep(shared.slow_delay).await;
            }
        }
        shared.mark_disconnected();
        disconnected = Some(Instant::now());
    }
    let target = shared.channels[chan].target.load(Ordering::Relaxed);
    out.missing = track.holes.len() as u64 + target.saturating_sub(track.next - 1);
    out.duplicated = track.duplicated;
    out.out_of_order = track.out_of_order;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_gaps_duplicates_and_order() {
        let mut t = Track {
            base: 10,
            next: 11,
            holes: BTreeSet::new(),
            duplicated: 0,
            out_of_order: 0,
        };
        for s in [5, 11, 12, 14, 12, 13, 15] {
            t.on_seq(s);
        }
        assert_eq!((t.duplicated, t.out_of_order, t.contiguous()), (1, 1, 15));
        t.on_seq(18);
        assert_eq!(t.contiguous(), 15);
        assert_eq!(t.holes.len(), 2);
    }
}
