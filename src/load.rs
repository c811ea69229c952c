//! The load generator behind `babelcast load`: many listeners and a few publishers against a
//! running server, measuring end-to-end latency, completeness, connect time and, given the
//! server's pid, its memory per idle connection and CPU per delivery.
//!
//! Every caption carries its publisher's clock in a token (`[lg:<pub>:<n>:<unix_micros>]`), so
//! each listener times every delivery; every listener checks that it saw each seq after the
//! one it joined at exactly once and in order, across reconnects (`since=`) caused by a server
//! restart, a `4001` close or a client-side reconnect storm (`--drop-at`).

mod args;
mod audio;
mod captions;
mod client;
mod handoff;
mod listener;
mod progress;
mod publisher;
mod report;
pub mod stats;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

pub use args::LoadConfig;
pub use captions::caption;
pub use listener::ListenerOutcome;
use progress::Progress;
pub use publisher::PublisherOutcome;
pub use report::{table, Report, ServerUse};
use stats::{Histogram, Quantiles};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad --url {0:?}: expected ws://host:port or http://host:port")]
    Url(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{0} is not a loopback address; pass --allow-remote to load a remote server")]
    NotLoopback(SocketAddr),
    #[error("probing channel {0}: {1}")]
    Probe(String, client::ConnectError),
    #[error("--ca-file: {0}")]
    Tls(String),
}

/// Per-channel state shared by its clients.
struct ChannelTarget {
    path: String,
    publish_path: String,
    /// The channel's last seq before the run: listeners check every seq after it.
    base: AtomicU64,
    /// The channel's last seq at the end (set after the publishers finish).
    target: AtomicU64,
    last_acked: AtomicU64,
}

/// Counters shared by every client.
#[derive(Debug, Default)]
struct Counters {
    connected: AtomicU64,
    connect_errors: AtomicU64,
    resumed: AtomicU64,
    line_frames: AtomicU64,
    partial_frames: AtomicU64,
    slow_partial_frames: AtomicU64,
    other_frames: AtomicU64,
    acked: AtomicU64,
    close_going_away: AtomicU64,
    close_behind: AtomicU64,
    close_other: AtomicU64,
}

/// What every client task shares.
struct RunState {
    cfg: LoadConfig,
    run_id: String,
    addr: SocketAddr,
    host: String,
    /// `wss://`: how to reach the server over TLS.
    tls: Option<tls::Tls>,
    /// Listeners bind to 127.0.0.x before connecting (loopback targets).
    bind_loopback: bool,
    channels: Vec<ChannelTarget>,
    stop: CancellationToken,
    live: AtomicBool,
    slow_delay: Duration,
    drop_all: watch::Sender<u64>,
    connect_slots: Semaphore,
    /// Per listener: the highest seq up to which it has seen everything.
    progress: Box<[AtomicU64]>,
    counters: Counters,
    latency_fast: Histogram,
    latency_slow: Histogram,
    partial_latency: Histogram,
    ack_latency: Histogram,
    connect_time: Histogram,
    resume_time: Histogram,
    epoch: Instant,
    /// µs since `epoch` of the first disconnect and the last resume (storm recovery).
    first_disconnect: AtomicU64,
    last_resume: AtomicU64,
    /// Sound (`--audio-listeners`).
    audio: audio::AudioRun,
}

impl RunState {
    /// The source address of slot `slot`: 127.0.0.(1 + slot). A listener starts at slot
    /// `index % --source-addrs` and moves on by `--source-addrs` when an address has no port.
    fn source(&self, slot: usize) -> Option<IpAddr> {
        self.bind_loopback.then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (slot % LOOPBACK_SOURCES) as u8,
            ))
        })
    }

    fn mark_disconnected(&self) {
        let t = self.epoch.elapsed().as_micros() as u64;
        self.first_disconnect.fetch_min(t, Ordering::Relaxed);
    }

    fn mark_resumed(&self) {
        let t = self.epoch.elapsed().as_micros() as u64;
        self.last_resume.fetch_max(t, Ordering::Relaxed);
    }
}

/// Source addresses 127.0.0.1 ..= 127.0.0.254.
const LOOPBACK_SOURCES: usize = 254;

/// Current wall-clock time in Unix microseconds.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The `host:port` of a URL and whether it is TLS (`wss://`, `https://`).
fn parse_url(url: &str) -> Result<(String, bool), LoadError> {
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

/// Runs a load test and reports what it measured.
pub async fn run(cfg: LoadConfig) -> Result<Report, LoadError> {
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
    let slow_every = if cfg.slow_fraction > 0.0 {
        (1.0 / cfg.slow_fraction.min(1.0)).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    let shared = Arc::new(RunState {
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
    });
    let cfg = &shared.cfg;
    let pids = &cfg.server_pid[..];
    let progress = Progress::start(shared.clone());
    let mut server = ServerUse {
        rss_before_bytes: stats::rss_sum(pids).unwrap_or(0),
        ..Default::default()
    };

    // 1. Connect every listener.
    progress.phase("connect");
    let connect_started = Instant::now();
    let nch = shared.channels.len();
    let listeners: Vec<_> = (0..n)
        .map(|i| {
            let slow = i % slow_every == slow_every - 1;
            tokio::spawn(listener::listener(shared.clone(), i, i % nch, slow))
        })
        .collect();
    while (shared.counters.connected.load(Ordering::Relaxed) as usize) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if connect_started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let connect_phase_secs = connect_started.elapsed().as_secs_f64();
    progress.phase("idle");
    tokio::time::sleep(Duration::from_secs_f64(cfg.settle_secs)).await;
    if !pids.is_empty() {
        server.rss_idle_bytes = stats::rss_sum(pids).unwrap_or(0);
        server.rss_per_idle_listener_bytes =
            (server.rss_idle_bytes as f64 - server.rss_before_bytes as f64) / n.max(1) as f64;
    }
    if let Some(path) = &cfg.ready_file {
        handoff::mark_ready(path);
    }

    // 2. Publish (or, listening only, wait for whoever publishes to say where it ended).
    progress.phase(if cfg.listen_only { "listen" } else { "publish" });
    let cpu0 = stats::cpu_sum(pids);
    let self0 = stats::cpu_ns(std::process::id());
    let frames0 = frames(&shared.counters, &shared.audio);
    shared.live.store(true, Ordering::Relaxed);
    let publish_started = Instant::now();
    let publishing = if cfg.listen_only { 0 } else { cfg.publishers };
    let publishers: Vec<_> = (0..nch)
        .flat_map(|c| (0..publishing).map(move |p| (c, p)))
        .map(|(c, p)| tokio::spawn(publisher::publisher(shared.clone(), c * 1000 + p, c)))
        .collect();
    let feeds: Vec<_> = (0..nch)
        .filter(|_| cfg.audio_listeners > 0)
        .map(|c| tokio::spawn(audio::feed(shared.clone(), c)))
        .collect();
    if let Some(at) = cfg.drop_at {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(at)).await;
            shared.drop_all.send_modify(|v| *v += 1);
        });
    }
    let mut pubs = Vec::new();
    for p in publishers {
        pubs.push(p.await.unwrap_or_default());
    }
    for f in feeds {
        let _ = f.await;
    }
    let mut target_missing = false;
    if let (true, Some(path)) = (cfg.listen_only, &cfg.target_file) {
        let wait = Duration::from_secs_f64(cfg.duration_secs) + Duration::from_secs(cfg.drain_secs);
        match handoff::wait_target(path, nch, wait, &shared.stop).await {
            Some(seqs) => {
                for (c, seq) in shared.channels.iter().zip(seqs) {
                    c.last_acked.store(seq, Ordering::Relaxed);
                }
            }
            None => target_missing = true,
        }
    }
    let publish_secs = publish_started.elapsed().as_secs_f64();
    shared.live.store(false, Ordering::Relaxed);

    // 3. Wait until every listener has every seq up to the channel's last acked one.
    progress.phase("drain");
    let drain_started = Instant::now();
    for c in shared.channels.iter() {
        let last = c.last_acked.load(Ordering::Relaxed);
        c.target
            .store(last.max(c.base.load(Ordering::Relaxed)), Ordering::Relaxed);
    }
    let target_of = |i: usize| shared.channels[i % nch].target.load(Ordering::Relaxed);
    let incomplete = |s: &RunState| {
        (0..n)
            .filter(|&i| s.progress[i].load(Ordering::Relaxed) < target_of(i))
            .count()
    };
    while incomplete(&shared) > 0 && drain_started.elapsed() < Duration::from_secs(cfg.drain_secs) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let incomplete_listeners = incomplete(&shared) as u64;
    let frames1 = frames(&shared.counters, &shared.audio);
    let loadgen_cpu_ms = match (self0, stats::cpu_ns(std::process::id())) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e6,
        _ => 0.0,
    };
    if let Some(c0) = cpu0 {
        if let Some(c1) = stats::cpu_sum(pids) {
            server.cpu_ms = (c1 - c0) as f64 / 1e6;
            server.cpu_per_delivery_us = server.cpu_ms * 1000.0 / (frames1 - frames0).max(1) as f64;
        }
        server.rss_end_bytes = stats::rss_sum(pids).unwrap_or(0);
    }

    // 4. Stop and judge.
    shared.stop.cancel();
    let mut outcomes = Vec::with_capacity(n);
    for l in listeners {
        outcomes.push(l.await.unwrap_or_default());
    }
    progress.finish();
    let c = &shared.counters;
    let expected_deliveries = (0..n)
        .map(|i| {
            let ch = &shared.channels[i % nch];
            ch.target.load(Ordering::Relaxed) - ch.base.load(Ordering::Relaxed)
        })
        .sum();
    let fast = shared.latency_fast.summary();
    let slow = shared.latency_slow.summary();
    let latency = merged(&shared.latency_fast, &shared.latency_slow);
    let first = shared.first_disconnect.load(Ordering::Relaxed);
    let last = shared.last_resume.load(Ordering::Relaxed);
    let mut report = Report {
        config: Some(cfg.clone()),
        listeners: n,
        slow_listeners: outcomes.iter().filter(|o| o.slow).count(),
        connected: outcomes.iter().filter(|o| o.connected).count() as u64,
        connect_errors: c.connect_errors.load(Ordering::Relaxed),
        connect_phase_secs,
        connect_time: shared.connect_time.summary(),
        finals_sent: pubs.iter().map(|p| p.finals_sent).sum(),
        acked: pubs.iter().map(|p| p.acked).sum(),
        unacked: pubs.iter().map(|p| p.unacked).sum(),
        publisher_errors: pubs.iter().map(|p| p.errors).sum(),
        publishers_unconnected: pubs.iter().filter(|p| p.never_connected).count() as u64,
        partials_sent: pubs.iter().map(|p| p.partials_sent).sum(),
        expected_deliveries,
        line_frames: c.line_frames.load(Ordering::Relaxed),
        partial_frames: c.partial_frames.load(Ordering::Relaxed),
        slow_partial_frames: c.slow_partial_frames.load(Ordering::Relaxed),
        other_frames: c.other_frames.load(Ordering::Relaxed),
        missing: outcomes.iter().map(|o| o.missing).sum(),
        duplicated: outcomes.iter().map(|o| o.duplicated).sum(),
        out_of_order: outcomes.iter().map(|o| o.out_of_order).sum(),
        incomplete_listeners,
        resets: outcomes.iter().map(|o| o.resets).sum(),
        latency,
        latency_fast: fast,
        latency_slow: slow,
        partial_latency: shared.partial_latency.summary(),
        ack_latency: shared.ack_latency.summary(),
        close_going_away: c.close_going_away.load(Ordering::Relaxed),
        close_behind: c.close_behind.load(Ordering::Relaxed),
        close_other: c.close_other.load(Ordering::Relaxed),
        reconnects: outcomes.iter().map(|o| o.reconnects).sum(),
        resume_time: shared.resume_time.summary(),
        storm_recovery_secs: (first != u64::MAX && last > first)
            .then(|| (last - first) as f64 / 1e6),
        publish_secs,
        drain_secs,
        server: (!pids.is_empty()).then_some(server),
        loadgen_cpu_ms,
        audio: (cfg.audio_listeners > 0).then(|| shared.audio.report(cfg.audio_listeners.min(n))),
        last_seqs: shared
            .channels
            .iter()
            .map(|c| c.target.load(Ordering::Relaxed))
            .collect(),
        target_missing,
        ok: false,
    };
    report.ok = !report.lost();
    Ok(report)
}

fn frames(c: &Counters, a: &audio::AudioRun) -> u64 {
    a.received.load(Ordering::Relaxed)
        + c.line_frames.load(Ordering::Relaxed)
        + c.partial_frames.load(Ordering::Relaxed)
        + c.other_frames.load(Ordering::Relaxed)
}

fn merged(a: &Histogram, b: &Histogram) -> Quantiles {
    let m = Histogram::default();
    m.merge(a);
    m.merge(b);
    m.summary()
}

/// `babelcast load`: runs on its own runtime, prints the report, fails on any loss.
pub fn main(cfg: LoadConfig) -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let json = cfg.json;
    match rt.block_on(run(cfg)) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                print!("{}", table(&report));
            }
            if report.ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
