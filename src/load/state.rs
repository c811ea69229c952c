//! What every client task of a load run shares ([`RunState`]: the target, each channel's seqs,
//! the counters and histograms) and how a run gets it: the URL parsed, TLS set up, the address
//! resolved and each channel's current seq probed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use super::stats::Histogram;
use super::{audio, client, now_micros, tls, LoadConfig, LoadError};

/// Source addresses 127.0.0.1 ..= 127.0.0.254.
pub(super) const LOOPBACK_SOURCES: usize = 254;

/// Per-channel state shared by its clients.
pub(super) struct ChannelTarget {
    pub(super) path: String,
    pub(super) publish_path: String,
    /// The channel's last seq before the run: listeners check every seq after it.
    pub(super) base: AtomicU64,
    /// The channel's last seq at the end (set after the publishers finish).
    pub(super) target: AtomicU64,
    pub(super) last_acked: AtomicU64,
}

/// Counters shared by every client.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) connected: AtomicU64,
    pub(super) connect_errors: AtomicU64,
    pub(super) resumed: AtomicU64,
    pub(super) line_frames: AtomicU64,
    pub(super) partial_frames: AtomicU64,
    pub(super) slow_partial_frames: AtomicU64,
    pub(super) other_frames: AtomicU64,
    pub(super) acked: AtomicU64,
    pub(super) close_going_away: AtomicU64,
    pub(super) close_behind: AtomicU64,
    pub(super) close_other: AtomicU64,
}

/// What every client task shares.
pub(super) struct RunState {
    pub(super) cfg: LoadConfig,
    pub(super) run_id: String,
    pub(super) addr: SocketAddr,
    pub(super) host: String,
    /// `wss://`: how to reach the server over TLS.
    pub(super) tls: Option<tls::Tls>,
    /// Listeners bind to 127.0.0.x before connecting (loopback targets).
    pub(super) bind_loopback: bool,
    pub(super) channels: Vec<ChannelTarget>,
    pub(super) stop: CancellationToken,
    pub(super) live: AtomicBool,
    pub(super) slow_delay: Duration,
    pub(super) drop_all: watch::Sender<u64>,
    pub(super) connect_slots: Semaphore,
    /// Per listener: the highest seq up to which it has seen everything.
    pub(super) progress: Box<[AtomicU64]>,
    pub(super) counters: Counters,
    pub(super) latency_fast: Histogram,
    pub(super) latency_slow: Histogram,
    pub(super) partial_latency: Histogram,
    pub(super) ack_latency: Histogram,
    pub(super) connect_time: Histogram,
    pub(super) resume_time: Histogram,
    pub(super) epoch: Instant,
    /// µs since `epoch` of the first disconnect and the last resume (storm recovery).
    pub(super) first_disconnect: AtomicU64,
    pub(super) last_resume: AtomicU64,
    /// Sound (`--audio-listeners`).
    pub(super) audio: audio::AudioRun,
}

impl RunState {
    /// Every frame received so far (lines, partials, other frames, sound packets).
    pub(super) fn frames(&self) -> u64 {
        let c = &self.counters;
        self.audio.received.load(Ordering::Relaxed)
            + c.line_frames.load(Ordering::Relaxed)
            + c.partial_frames.load(Ordering::Relaxed)
            + c.other_frames.load(Ordering::Relaxed)
    }

    /// The source address of slot `slot`: 127.0.0.(1 + slot). A listener starts at slot
    /// `index % --source-addrs` and moves on by `--source-addrs` when an address has no port.
    pub(super) fn source(&self, slot: usize) -> Option<IpAddr> {
        self.bind_loopback.then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (slot % LOOPBACK_SOURCES) as u8,
            ))
        })
    }

    pub(super) fn mark_disconnected(&self) {
        let t = self.epoch.elapsed().as_micros() as u64;
        self.first_disconnect.fetch_min(t, Ordering::Relaxed);
    }

    pub(super) fn mark_resumed(&self) {
        let t = self.epoch.elapsed().as_micros() as u64;
        self.last_resume.fetch_max(t, Ordering::Relaxed);
    }

    /// Parses the URL, sets up TLS, resolves the address (loopback only unless
    /// `--allow-remote`), probes each channel's current seq, and builds the state every client
    /// shares.
    pub(super) async fn prepare(cfg: LoadConfig) -> Result<Arc<RunState>, LoadError> {
        let (host, wss) = parse_url(&cfg.url)?;
        let tls = match (wss, &cfg.ca_file) {
            (false, _) => None,
            (true, Some(ca)) => {
                let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
                Some(tls::Tls::new(ca, name.trim_matches(['[', ']'])).map_err(LoadError::Tls)?)
            }
            (true, None) => return Err(LoadError::Tls("wss:// needs --ca-file".into())),
        };
        let addr = tokio::net::lookup_host(&host)
            .await
            .map_err(|e| LoadError::Resolve(host.clone(), e))?
            .next()
            .ok_or_else(|| LoadError::Url(cfg.url.clone()))?;
        if !addr.ip().is_loopback() && !cfg.allow_remote {
            return Err(LoadError::NotLoopback(addr));
        }
        let bind_loopback = addr.ip().is_loopback() && addr.is_ipv4();
        let channels: Vec<ChannelTarget> = cfg
            .channels
            .iter()
            .map(|c| ChannelTarget {
                path: format!("/v1/events/{}/channels/{c}/listen", cfg.event),
                publish_path: format!("/v1/events/{}/channels/{c}/publish", cfg.event),
                base: AtomicU64::new(0),
                target: AtomicU64::new(u64::MAX),
                last_acked: AtomicU64::new(0),
            })
            .collect();
        // The channel's current seq, so listeners join with `since=` and get no old history.
        for (c, name) in channels.iter().zip(&cfg.channels) {
            let (mut ws, hello) = client::probe(addr, &host, &c.path, tls.as_ref())
                .await
                .map_err(|e| LoadError::Probe(name.clone(), e))?;
            c.base.store(hello, Ordering::Relaxed);
            let _ = futures_util::SinkExt::close(&mut ws).await;
        }
        let n = cfg.listeners;
        Ok(Arc::new(RunState {
            run_id: format!("{:x}", now_micros()),
            addr,
            host,
            tls,
            bind_loopback,
            channels,
            stop: CancellationToken::new(),
            live: AtomicBool::new(false),
            slow_delay: Duration::from_millis(cfg.slow_delay_ms),
            drop_all: watch::channel(0).0,
            connect_slots: Semaphore::new(cfg.connect_concurrency.max(1)),
            progress: (0..n).map(|_| AtomicU64::new(0)).collect(),
            counters: Counters::default(),
            latency_fast: Histogram::default(),
            latency_slow: Histogram::default(),
            partial_latency: Histogram::default(),
            ack_latency: Histogram::default(),
            connect_time: Histogram::default(),
            resume_time: Histogram::default(),
            epoch: Instant::now(),
            first_disconnect: AtomicU64::new(u64::MAX),
            last_resume: AtomicU64::new(0),
            audio: audio::AudioRun::default(),
            cfg,
        }))
    }
}

/// The `host:port` of a URL and whether it is TLS (`wss://`, `https://`).
pub(super) fn parse_url(url: &str) -> Result<(String, bool), LoadError> {
    let (rest, tls) = [
        ("ws://", false),
        ("http://", false),
        ("wss://", true),
        ("https://", true),
    ]
    .iter()
    .find_map(|(p, tls)| url.strip_prefix(p).map(|r| (r, *tls)))
    .ok_or_else(|| LoadError::Url(url.into()))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(LoadError::Url(url.into()));
    }
    Ok((host.to_string(), tls))
}
