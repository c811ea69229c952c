//! The phases of a load run after its preparation: connect every listener (and measure the
//! server's memory per idle listener), publish (or wait for whoever publishes), drain until
//! every listener has every line, and the CPU meter around publishing and draining.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::progress::Progress;
use super::{audio, handoff, listener, publisher, stats};
use super::{ListenerOutcome, PublisherOutcome, RunState, ServerUse};

/// How long the connect phase waits for every listener before going on without the rest.
const CONNECT_PHASE_LIMIT: Duration = Duration::from_secs(120);
/// How often the connect and drain phases look at the counters.
const POLL: Duration = Duration::from_millis(20);

/// The listeners' tasks and how long connecting them took.
pub(super) struct Connected {
    pub(super) listeners: Vec<JoinHandle<ListenerOutcome>>,
    pub(super) secs: f64,
}

/// What the publishers did.
pub(super) struct Published {
    pub(super) publishers: Vec<PublisherOutcome>,
    /// Listening only: the publishing process never said where it ended.
    pub(super) target_missing: bool,
    pub(super) secs: f64,
}

/// How the drain ended.
pub(super) struct Drained {
    pub(super) secs: f64,
    /// Listeners still missing lines when the drain gave up.
    pub(super) incomplete: u64,
}

/// Phase 1: connects every listener, lets them settle, then reads the server's idle memory.
pub(super) async fn connect(
    shared: &Arc<RunState>,
    progress: &Progress,
    server: &mut ServerUse,
) -> Connected {
    let cfg = &shared.cfg;
    let n = cfg.listeners;
    let slow_every = if cfg.slow_fraction > 0.0 {
        (1.0 / cfg.slow_fraction.min(1.0)).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    progress.phase("connect");
    let started = Instant::now();
    let nch = shared.channels.len();
    let listeners: Vec<_> = (0..n)
        .map(|i| {
            let slow = i % slow_every == slow_every - 1;
            tokio::spawn(listener::listener(shared.clone(), i, i % nch, slow))
        })
        .collect();
    while (shared.counters.connected.load(Ordering::Relaxed) as usize) < n {
        tokio::time::sleep(POLL).await;
        if started.elapsed() > CONNECT_PHASE_LIMIT {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    progress.phase("idle");
    tokio::time::sleep(Duration::from_secs_f64(cfg.settle_secs)).await;
    let pids = &cfg.server_pid[..];
    if !pids.is_empty() {
        server.rss_idle_bytes = stats::rss_sum(pids).unwrap_or(0);
        server.rss_per_idle_listener_bytes =
            (server.rss_idle_bytes as f64 - server.rss_before_bytes as f64) / n.max(1) as f64;
    }
    if let Some(path) = &cfg.ready_file {
        handoff::mark_ready(path);
    }
    Connected { listeners, secs }
}

/// Phase 2: publishes (or, listening only, waits for whoever publishes to say where it ended).
pub(super) async fn publish(shared: &Arc<RunState>, progress: &Progress) -> Published {
    let cfg = &shared.cfg;
    let nch = shared.channels.len();
    progress.phase(if cfg.listen_only { "listen" } else { "publish" });
    shared.live.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let publishing = if cfg.listen_only { 0 } else { cfg.publishers };
    let tasks: Vec<_> = (0..nch)
        .flat_map(|c| (0..publishing).map(move |p| (c, p)))
        .map(|(c, p)| tokio::spawn(publisher::publisher(shared.clone(), c * 1000 + p, c)))
        .collect();
    let feeds: Vec<_> = (0..nch)
        .filter(|_| cfg.audio_listeners > 0)
        .map(|c| tokio::spawn(audio::feed(shared.clone(), c)))
        .collect();
    if let Some(at) = cfg.drop_at {
        let shared = shared.clone();
        let at = cfg.on_air_secs.max(0.0) + at;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(at)).await;
            shared.drop_all.send_modify(|v| *v += 1);
        });
    }
    let mut publishers = Vec::new();
    for p in tasks {
        publishers.push(p.await.unwrap_or_default());
    }
    for f in feeds {
        let _ = f.await;
    }
    let mut target_missing = false;
    if let (true, Some(path)) = (cfg.listen_only, &cfg.target_file) {
        let wait = Duration::from_secs_f64(cfg.on_air_secs.max(0.0) + cfg.duration_secs)
            + Duration::from_secs(cfg.drain_secs);
        match handoff::wait_target(path, nch, wait, &shared.stop).await {
            Some(seqs) => {
                for (c, seq) in shared.channels.iter().zip(seqs) {
                    c.last_acked.store(seq, Ordering::Relaxed);
                }
            }
            None => target_missing = true,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    shared.live.store(false, Ordering::Relaxed);
    Published {
        publishers,
        target_missing,
        secs,
    }
}

/// Phase 3: waits (at most `--drain-secs`) until every listener has every seq up to its channel's
/// last acked one.
pub(super) async fn drain(shared: &RunState, progress: &Progress) -> Drained {
    progress.phase("drain");
    let started = Instant::now();
    for c in shared.channels.iter() {
        let last = c.last_acked.load(Ordering::Relaxed);
        c.target
            .store(last.max(c.base.load(Ordering::Relaxed)), Ordering::Relaxed);
    }
    let nch = shared.channels.len();
    let target_of = |i: usize| shared.channels[i % nch].target.load(Ordering::Relaxed);
    let incomplete = || {
        (0..shared.cfg.listeners)
            .filter(|&i| shared.progress[i].load(Ordering::Relaxed) < target_of(i))
            .count()
    };
    let limit = Duration::from_secs(shared.cfg.drain_secs);
    while incomplete() > 0 && started.elapsed() < limit {
        tokio::time::sleep(POLL).await;
    }
    Drained {
        secs: started.elapsed().as_secs_f64(),
        incomplete: incomplete() as u64,
    }
}

/// The server's and the load generator's CPU, and the frames received, from the start of
/// publishing to the end of the drain.
pub(super) struct Meter {
    server_cpu: Option<u64>,
    own_cpu: Option<u64>,
    frames: u64,
}

impl Meter {
    pub(super) fn start(shared: &RunState) -> Meter {
        Meter {
            server_cpu: stats::cpu_sum(&shared.cfg.server_pid),
            own_cpu: stats::cpu_ns(std::process::id()),
            frames: shared.frames(),
        }
    }

    /// Fills in the server's CPU per delivery and final memory; returns the load
    /// generator's own CPU in ms.
    pub(super) fn finish(self, shared: &RunState, server: &mut ServerUse) -> f64 {
        let frames = shared.frames();
        let pids = &shared.cfg.server_pid[..];
        let own_ms = match (self.own_cpu, stats::cpu_ns(std::process::id())) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e6,
            _ => 0.0,
        };
        if let Some(c0) = self.server_cpu {
            if let Some(c1) = stats::cpu_sum(pids) {
                server.cpu_ms = (c1 - c0) as f64 / 1e6;
                server.cpu_per_delivery_us =
                    server.cpu_ms * 1000.0 / (frames - self.frames).max(1) as f64;
            }
            server.rss_end_bytes = stats::rss_sum(pids).unwrap_or(0);
        }
        own_ms
    }
}
