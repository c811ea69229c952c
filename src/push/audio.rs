//! `babelcast push-audio`: relays Ogg Opus from an input (a room mixer through
//! `ffmpeg … -c:a libopus -f ogg -`, or `opusenc`) to a channel's sound feed
//! (`…/audio/publish`), one binary frame per Opus packet.
//!
//! Packets go out in real time, each at its place on the stream's timeline (a file is not sent
//! in one burst; an encoder that writes a second of packets per Ogg page is smoothed out) but
//! at most [`LEAD`] early, so a live input never waits on our clock. An input that stalls
//! starts a new timeline instead of catching up. Old sound is worthless: packets read while
//! the server is away are dropped, and sending resumes with current sound after a reconnect.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::connection::{connect, next_msg, ConnectError, Ws};
use super::{PushError, PushOptions, FIRST_BACKOFF, MAX_BACKOFF, READ_CHUNK};
use crate::formats::ogg::{OggPacket, OggReader};
use crate::protocol::audio::{opus_samples, KIND_OPUS, OPUS_RATE};

/// How early a packet may go out before its time on the timeline.
pub const LEAD: Duration = Duration::from_millis(200);
/// A packet this late on the timeline (the input stalled) starts a new timeline.
const LATE: Duration = Duration::from_millis(500);
/// Packets read ahead of sending (a second of 20 ms packets); reading pauses beyond it.
const AHEAD: usize = 50;

/// What a push of sound did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AudioPushReport {
    /// Opus packets read from the input.
    pub packets: u64,
    /// Packets sent to the server.
    pub sent: u64,
    /// Packets dropped while the server was away (or not Opus-framed).
    pub dropped: u64,
    /// Opus streams that began in the input (a chained file, a restarted encoder).
    pub streams: u64,
    /// Connections made.
    pub connections: u64,
}

/// The feed URL of `url`: `…/audio/publish` as given, or a channel's `…/publish` URL turned
/// into it.
pub fn feed_url(url: &str) -> Result<String, PushError> {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let path = path.trim_end_matches('/');
    let feed = if path.ends_with("/audio/publish") {
        path.to_string()
    } else if let Some(base) = path.strip_suffix("/publish") {
        format!("{base}/audio/publish")
    } else {
        return Err(PushError::Options(
            "--url must be ws://HOST/v1/events/EVENT/channels/CHANNEL/audio/publish".into(),
        ));
    };
    Ok(match query {
        Some(q) => format!("{feed}?{q}"),
        None => feed,
    })
}

/// Where the packets stand on the input's timeline.
struct Timeline {
    /// `(when, position in samples)` the timeline was anchored at.
    anchor: Option<(Instant, u64)>,
    /// Position of the next packet to send.
    pos: u64,
}

impl Timeline {
    /// When the packet at the current position may go out (re-anchored when late).
    fn due(&mut self, now: Instant) -> Instant {
        let (at, from) = *self.anchor.get_or_insert((now, self.pos));
        let on_time = at + Duration::from_secs_f64((self.pos - from) as f64 / f64::from(OPUS_RATE));
        if now > on_time + LATE {
            self.anchor = Some((now, self.pos));
            return now;
        }
        on_time.checked_sub(LEAD).unwrap_or(on_time)
    }
}

/// Relays `input` until it ends (or `cancel` fires).
pub async fn run<R: AsyncRead + Unpin>(
    opts: PushOptions,
    mut input: R,
    cancel: CancellationToken,
) -> Result<AudioPushReport, PushError> {
    let opts = PushOptions {
        url: feed_url(&opts.url)?,
        ..opts
    };
    let mut report = AudioPushReport::default();
    let mut reader = OggReader::default();
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut timeline = Timeline {
        anchor: None,
        pos: 0,
    };
    let mut ws: Option<Ws> = None;
    let (mut backoff, mut retry_at) = (FIRST_BACKOFF, Instant::now());
    let mut buf = vec![0u8; READ_CHUNK];
    let mut eof = false;
    loop {
        if eof && queue.is_empty() {
            break;
        }
        if ws.is_none() && Instant::now() >= retry_at {
            match connect(&opts).await {
                Ok(w) => {
                    tracing::info!("connected");
                    ws = Some(w);
                    report.connections += 1;
                    backoff = FIRST_BACKOFF;
                    // Sound read while away is old now: start again from the input's present.
                    report.dropped += queue.len() as u64;
                    queue.clear();
                    timeline.anchor = None;
                }
                Err(ConnectError::Fatal(e)) => return Err(PushError::Rejected(e)),
                Err(ConnectError::Transient(e)) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot connect");
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        }
        let due = match queue.front() {
            Some(_) => timeline.due(Instant::now()),
            None => Instant::now() + Duration::from_secs(3600),
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            msg = next_msg(&mut ws) => match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["type"] == "error" {
                        tracing::warn!(code = %v["code"], message = %v["message"], "the server refused a packet");
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    tracing::warn!("disconnected; reconnecting");
                    ws = None;
                    retry_at = Instant::now() + backoff;
                }
                Some(Ok(_)) => {}
            },
            n = input.read(&mut buf), if !eof && queue.len() < AHEAD => {
                let n = n.map_err(PushError::Input)?;
                if n == 0 {
                    eof = true;
                    continue;
                }
                reader.feed(&buf[..n]);
                while let Some(p) = reader.next_packet().map_err(|e| PushError::Options(e.to_string()))? {
                    match p {
                        OggPacket::Head { channels } => {
                            tracing::info!(channels, "an Opus stream begins");
                            report.streams += 1;
                        }
                        OggPacket::Audio(a) => {
                            report.packets += 1;
                            // Without a server, the newest packets only.
                            if ws.is_none() && queue.len() >= AHEAD {
                                queue.pop_front();
                                report.dropped += 1;
                            }
                            queue.push_back(a);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(due), if !queue.is_empty() => {
                let Some(packet) = queue.pop_front() else { continue };
                let Ok(samples) = opus_samples(&packet) else {
                    report.dropped += 1;
                    continue;
                };
                timeline.pos += u64::from(samples);
                match &mut ws {
                    Some(w) => {
                        let mut frame = Vec::with_capacity(packet.len() + 1);
                        frame.push(KIND_OPUS);
                        frame.extend_from_slice(&packet);
                        if w.send(Message::Binary(frame.into())).await.is_err() {
                            ws = None;
                            retry_at = Instant::now() + backoff;
                            report.dropped += 1;
                        } else {
                            report.sent += 1;
                        }
                    }
                    None => report.dropped += 1,
                }
            }
            _ = tokio::time::sleep_until(retry_at), if ws.is_none() => {}
        }
    }
    if let Some(mut w) = ws {
        let _ = tokio::time::timeout(Duration::from_secs(2), w.close(None)).await;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_urls() {
        let base = "ws://h/v1/events/e/channels/c";
        assert_eq!(
            feed_url(&format!("{base}/audio/publish")).unwrap(),
            format!("{base}/audio/publish")
        );
        assert_eq!(
            feed_url(&format!("{base}/publish?token=t")).unwrap(),
            format!("{base}/audio/publish?token=t")
        );
        assert!(feed_url(&format!("{base}/listen")).is_err());
    }

    #[test]
    fn the_timeline_runs_in_real_time_and_starts_over_when_late() {
        let t0 = Instant::now();
        let mut t = Timeline {
            anchor: None,
            pos: 0,
        };
        assert_eq!(t.due(t0), t0.checked_sub(LEAD).unwrap_or(t0));
        t.pos = 48_000;
        assert_eq!(t.due(t0), t0 + Duration::from_secs(1) - LEAD);
        // The input stalled for two seconds: the next packet goes now, on a new timeline.
        let late = t0 + Duration::from_secs(3);
        assert_eq!(t.due(late), late);
        t.pos += 960;
        assert_eq!(t.due(late), late + Duration::from_millis(20) - LEAD);
    }
}
