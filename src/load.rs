//! The load generator behind `babelcast load`: many listeners and a few publishers against a
//! running server, measuring end-to-end latency, completeness, connect time and, given the
//! server's pid, its memory per idle connection and CPU per delivery.
//!
//! Every caption carries its publisher's clock in a token (`[lg:<pub>:<n>:<unix_micros>]`), so
//! each listener times every delivery; every listener checks that it saw each seq after the
//! one it joined at exactly once and in order, across reconnects (`since=`) caused by a server
//! restart, a `4001` close or a client-side reconnect storm (`--drop-at`).

mod client;
pub mod stats;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

pub use client::{caption, ListenerOutcome, PublisherOutcome};
use stats::{Histogram, Quantiles};

/// `babelcast load`: the run's parameters.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct LoadConfig {
    /// Server base URL (ws://host:port or http://host:port).
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    pub url: String,
    /// Event id.
    #[arg(long, default_value = "demo")]
    pub event: String,
    /// Channel ids, comma-separated; listeners and publishers are spread over them.
    #[arg(long, default_value = "en", value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Publish token (the same for every channel).
    #[arg(long, default_value = "", hide_default_value = true)]
    #[serde(skip)]
    pub token: String,
    /// Listener connections to open.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub listeners: usize,
    /// Publishers per channel.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Finals per second, per publisher.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Partials per second, per publisher (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub partial_rate: f64,
    /// Caption size in bytes of UTF-8 text (the timing token included).
    #[arg(long, default_value_t = 80)]
    pub size: usize,
    /// Caption language: en, zh, ar, or mix (cycles through all three).
    #[arg(long, default_value = "en")]
    pub text: String,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Seconds to wait after publishing for the last acks and deliveries.
    #[arg(long, default_value_t = 30)]
    pub drain_secs: u64,
    /// Seconds to let the server settle after the listeners connect, before reading its memory.
    #[arg(long, default_value_t = 2.0)]
    pub settle_secs: f64,
    /// Fraction of listeners that read slowly (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub slow_fraction: f64,
    /// Pause of a slow listener after every frame, in milliseconds, while publishing runs.
    #[arg(long, default_value_t = 200)]
    pub slow_delay_ms: u64,
    /// Receive buffer of a slow listener's socket, in bytes (a phone on poor Wi-Fi has a small
    /// window; a large one would hide slowness from the server for a long time). 0: default.
    #[arg(long, default_value_t = 8192)]
    pub slow_rcvbuf: u32,
    /// Client-side reconnect storm: after this many seconds of publishing every listener drops
    /// its socket at once and reconnects with `since=`.
    #[arg(long)]
    pub drop_at: Option<f64>,
    /// Local source addresses 127.0.0.1, 127.0.0.2, ... to spread listeners over, round-robin
    /// (each has about 28,000 ephemeral ports); when one runs out of ports a listener moves on
    /// to the next ones, up to 127.0.0.254. Loopback targets only.
    #[arg(long, default_value_t = 1)]
    pub source_addrs: usize,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// The server's pid, to read its memory and CPU from /proc (same machine only).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: "ws://127.0.0.1:8080".into(),
            event: "demo".into(),
            channels: vec!["en".into()],
            token: String::new(),
            listeners: 1000,
            publishers: 1,
            rate: 20.0,
            partial_rate: 0.0,
            size: 80,
            text: "en".into(),
            duration_secs: 10.0,
            drain_secs: 30,
            settle_secs: 2.0,
            slow_fraction: 0.0,
            slow_delay_ms: 200,
            slow_rcvbuf: 8192,
            drop_at: None,
            source_addrs: 1,
            connect_concurrency: 128,
            server_pid: None,
            allow_remote: false,
            json: false,
            quiet: true,
        }
    }
}

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
struct Shared {
    cfg: LoadConfig,
    run_id: String,
    addr: SocketAddr,
    host: String,
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
}

impl Shared {
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

/// The server's resource use, read from /proc.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerUse {
    pub rss_before_bytes: u64,
    pub rss_idle_bytes: u64,
    pub rss_end_bytes: u64,
    /// RSS growth while the listeners connected, divided by the listeners.
    pub rss_per_idle_listener_bytes: f64,
    /// Server CPU (user + system) from the first publish to the last delivery.
    pub cpu_ms: f64,
    /// Server CPU divided by every frame listeners received in that window.
    pub cpu_per_delivery_us: f64,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub config: Option<LoadConfig>,
    pub listeners: usize,
    pub slow_listeners: usize,
    pub connected: u64,
    pub connect_errors: u64,
    pub connect_phase_secs: f64,
    pub connect_time: Quantiles,
    pub finals_sent: u64,
    pub acked: u64,
    pub unacked: u64,
    pub publisher_errors: u64,
    /// Publishers that never connected (nothing they should have sent was tested).
    pub publishers_unconnected: u64,
    pub partials_sent: u64,
    /// Line deliveries every listener should have had (seqs after its join, up to the end).
    pub expected_deliveries: u64,
    pub line_frames: u64,
    pub partial_frames: u64,
    pub slow_partial_frames: u64,
    pub other_frames: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub incomplete_listeners: u64,
    pub resets: u64,
    pub latency: Quantiles,
    pub latency_fast: Quantiles,
    pub latency_slow: Quantiles,
    pub partial_latency: Quantiles,
    pub ack_latency: Quantiles,
    pub close_going_away: u64,
    pub close_behind: u64,
    pub close_other: u64,
    pub reconnects: u64,
    pub resume_time: Quantiles,
    /// From the first disconnect to the last listener back (reconnect storms), seconds.
    pub storm_recovery_secs: Option<f64>,
    pub publish_secs: f64,
    pub drain_secs: f64,
    pub server: Option<ServerUse>,
    /// The load generator's own CPU over the publish window.
    pub loadgen_cpu_ms: f64,
    pub ok: bool,
}

impl Report {
    /// Anything lost, duplicated, reordered or never acknowledged.
    pub fn lost(&self) -> bool {
        self.missing > 0
            || self.duplicated > 0
            || self.out_of_order > 0
            || self.unacked > 0
            || self.incomplete_listeners > 0
            || self.connected < self.listeners as u64
            || self.resets > 0
            || self.publishers_unconnected > 0
    }
}

fn parse_url(url: &str) -> Result<String, LoadError> {
    let rest = ["ws://", "http://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .ok_or_else(|| LoadError::Url(url.into()))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(LoadError::Url(url.into()));
    }
    Ok(host.to_string())
}

/// Runs a load test and reports what it measured.
pub async fn run(cfg: LoadConfig) -> Result<Report, LoadError> {
    let host = parse_url(&cfg.url)?;
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
        let (mut ws, hello) = client::probe(addr, &host, &c.path)
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
    let shared = Arc::new(Shared {
        run_id: format!("{:x}", now_micros()),
        addr,
        host,
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
        cfg,
    });
    let cfg = &shared.cfg;
    let pid = cfg.server_pid;
    let progress = Progress::start(shared.clone());
    let mut server = ServerUse::default();
    if let Some(pid) = pid {
        server.rss_before_bytes = stats::rss_bytes(pid).unwrap_or(0);
    }

    // 1. Connect every listener.
    progress.phase("connect");
    let connect_started = Instant::now();
    let nch = shared.channels.len();
    let listeners: Vec<_> = (0..n)
        .map(|i| {
            let slow = i % slow_every == slow_every - 1;
            tokio::spawn(client::listener(shared.clone(), i, i % nch, slow))
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
    if let Some(pid) = pid {
        server.rss_idle_bytes = stats::rss_bytes(pid).unwrap_or(0);
        server.rss_per_idle_listener_bytes =
            (server.rss_idle_bytes as f64 - server.rss_before_bytes as f64) / n.max(1) as f64;
    }

    // 2. Publish.
    progress.phase("publish");
    let cpu0 = pid.and_then(stats::cpu_ns);
    let self0 = stats::cpu_ns(std::process::id());
    let frames0 = frames(&shared.counters);
    shared.live.store(true, Ordering::Relaxed);
    let publish_started = Instant::now();
    let publishers: Vec<_> = (0..nch)
        .flat_map(|c| (0..cfg.publishers).map(move |p| (c, p)))
        .map(|(c, p)| tokio::spawn(client::publisher(shared.clone(), c * 1000 + p, c)))
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
    let incomplete = |s: &Shared| {
        (0..n)
            .filter(|&i| s.progress[i].load(Ordering::Relaxed) < target_of(i))
            .count()
    };
    while incomplete(&shared) > 0 && drain_started.elapsed() < Duration::from_secs(cfg.drain_secs) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let incomplete_listeners = incomplete(&shared) as u64;
    let frames1 = frames(&shared.counters);
    let loadgen_cpu_ms = match (self0, stats::cpu_ns(std::process::id())) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e6,
        _ => 0.0,
    };
    if let (Some(pid), Some(c0)) = (pid, cpu0) {
        if let Some(c1) = stats::cpu_ns(pid) {
            server.cpu_ms = (c1 - c0) as f64 / 1e6;
            server.cpu_per_delivery_us = server.cpu_ms * 1000.0 / (frames1 - frames0).max(1) as f64;
        }
        server.rss_end_bytes = stats::rss_bytes(pid).unwrap_or(0);
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
        server: pid.map(|_| server),
        loadgen_cpu_ms,
        ok: false,
    };
    report.ok = !report.lost();
    Ok(report)
}

fn frames(c: &Counters) -> u64 {
    c.line_frames.load(Ordering::Relaxed)
        + c.partial_frames.load(Ordering::Relaxed)
        + c.other_frames.load(Ordering::Relaxed)
}

fn merged(a: &Histogram, b: &Histogram) -> Quantiles {
    let m = Histogram::default();
    m.merge(a);
    m.merge(b);
    m.summary()
}

/// The progress line on stderr.
struct Progress {
    phase: Arc<std::sync::Mutex<&'static str>>,
    task: Option<tokio::task::JoinHandle<()>>,
    quiet: bool,
}

impl Progress {
    fn start(shared: Arc<Shared>) -> Progress {
        let phase = Arc::new(std::sync::Mutex::new("start"));
        let quiet = shared.cfg.quiet;
        let task = (!quiet).then(|| {
            let phase = phase.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    let c = &shared.counters;
                    let p = *phase.lock().unwrap_or_else(|e| e.into_inner());
                    let q = shared.latency_fast.summary();
                    eprint!(
                        "\r{:>5.1}s {p:<8} listeners {}/{}  acked {}  lines in {}  partials in {}  p99 {:.1} ms  reconnects {}   ",
                        shared.epoch.elapsed().as_secs_f64(),
                        c.connected.load(Ordering::Relaxed),
                        shared.cfg.listeners,
                        c.acked.load(Ordering::Relaxed),
                        c.line_frames.load(Ordering::Relaxed),
                        c.partial_frames.load(Ordering::Relaxed),
                        q.p99_ms,
                        c.resumed.load(Ordering::Relaxed),
                    );
                }
            })
        });
        Progress { phase, task, quiet }
    }

    fn phase(&self, p: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if !self.quiet {
            eprintln!();
        }
    }
}

/// The report as a table for people.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let q = |q: &Quantiles| {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms  (n={})",
            q.p50_ms, q.p90_ms, q.p99_ms, q.p999_ms, q.max_ms, q.count
        )
    };
    let _ = writeln!(
        s,
        "listeners        {} ({} slow), connected {}, connect errors {}",
        r.listeners, r.slow_listeners, r.connected, r.connect_errors
    );
    let _ = writeln!(
        s,
        "connect phase    {:.2} s; per connection {}",
        r.connect_phase_secs,
        q(&r.connect_time)
    );
    let _ =
        writeln!(
        s,
        "published        {} finals ({} acked, {} unacked, {} errors), {} partials in {:.1} s{}",
        r.finals_sent,
        r.acked,
        r.unacked,
        r.publisher_errors,
        r.partials_sent,
        r.publish_secs,
        if r.publishers_unconnected > 0 {
            format!("; {} publisher(s) NEVER CONNECTED", r.publishers_unconnected)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "delivered        {} lines of {} expected, {} partials ({} to slow listeners), {} other",
        r.line_frames,
        r.expected_deliveries,
        r.partial_frames,
        r.slow_partial_frames,
        r.other_frames
    );
    let _ = writeln!(s, "completeness     missing {}, duplicated {}, out of order {}, incomplete listeners {}, resets {}", r.missing, r.duplicated, r.out_of_order, r.incomplete_listeners, r.resets);
    let _ = writeln!(s, "latency (all)    {}", q(&r.latency));
    let _ = writeln!(s, "latency (fast)   {}", q(&r.latency_fast));
    if r.slow_listeners > 0 {
        let _ = writeln!(s, "latency (slow)   {}", q(&r.latency_slow));
    }
    if r.partial_latency.count > 0 {
        let _ = writeln!(s, "partial latency  {}", q(&r.partial_latency));
    }
    let _ = writeln!(s, "ack latency      {}", q(&r.ack_latency));
    let _ = writeln!(
        s,
        "closes           going-away {}, behind (4001) {}, other {}; reconnects {}",
        r.close_going_away, r.close_behind, r.close_other, r.reconnects
    );
    if r.reconnects > 0 {
        let _ = writeln!(
            s,
            "resume           {}; storm recovery {:.2} s",
            q(&r.resume_time),
            r.storm_recovery_secs.unwrap_or(0.0)
        );
    }
    if let Some(u) = &r.server {
        let _ = writeln!(s, "server memory    {:.0} KiB before, {:.0} KiB idle, {:.0} KiB at end; {:.0} bytes per idle listener", u.rss_before_bytes as f64 / 1024.0, u.rss_idle_bytes as f64 / 1024.0, u.rss_end_bytes as f64 / 1024.0, u.rss_per_idle_listener_bytes);
        let _ = writeln!(
            s,
            "server CPU       {:.0} ms, {:.3} µs per delivered frame",
            u.cpu_ms, u.cpu_per_delivery_us
        );
    }
    let _ = writeln!(s, "load generator   {:.0} ms CPU", r.loadgen_cpu_ms);
    let _ = writeln!(
        s,
        "result           {}",
        if r.ok {
            "OK: every line delivered once, in order"
        } else {
            "LOSS"
        }
    );
    s
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
