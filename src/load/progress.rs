//! The progress line on stderr while a run goes on (off with `--quiet`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::RunState;

/// The progress line on stderr.
pub(super) struct Progress {
    phase: Arc<std::sync::Mutex<&'static str>>,
    task: Option<tokio::task::JoinHandle<()>>,
    quiet: bool,
}

impl Progress {
    pub(super) fn start(shared: Arc<RunState>) -> Progress {
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

    pub(super) fn phase(&self, p: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    pub(super) fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if !self.quiet {
            eprintln!();
        }
    }
}
