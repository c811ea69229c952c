//! The end of a load run: every listener's outcome, the publishers' and the phases' figures
//! and the counters summed into the [`Report`]; a run is `ok` when nothing was lost.

use std::sync::atomic::Ordering;

use super::phases::{Drained, Published};
use super::stats::{Histogram, Quantiles};
use super::{ListenerOutcome, Report, RunState, ServerUse};

/// What the phases measured, for the report.
pub(super) struct Measured {
    pub(super) outcomes: Vec<ListenerOutcome>,
    pub(super) connect_phase_secs: f64,
    pub(super) published: Published,
    pub(super) drained: Drained,
    pub(super) server: ServerUse,
    pub(super) loadgen_cpu_ms: f64,
}

/// The run's report.
pub(super) fn report(shared: &RunState, m: Measured) -> Report {
    let cfg = &shared.cfg;
    let n = cfg.listeners;
    let nch = shared.channels.len();
    let c = &shared.counters;
    let (outcomes, pubs) = (&m.outcomes, &m.published.publishers);
    let expected_deliveries = (0..n)
        .map(|i| {
            let ch = &shared.channels[i % nch];
            ch.target.load(Ordering::Relaxed) - ch.base.load(Ordering::Relaxed)
        })
        .sum();
    let first = shared.first_disconnect.load(Ordering::Relaxed);
    let last = shared.last_resume.load(Ordering::Relaxed);
    let mut report = Report {
        config: Some(cfg.clone()),
        listeners: n,
        slow_listeners: outcomes.iter().filter(|o| o.slow).count(),
        connected: outcomes.iter().filter(|o| o.connected).count() as u64,
        connect_errors: c.connect_errors.load(Ordering::Relaxed),
        connect_phase_secs: m.connect_phase_secs,
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
        incomplete_listeners: m.drained.incomplete,
        resets: outcomes.iter().map(|o| o.resets).sum(),
        latency: merged(&shared.latency_fast, &shared.latency_slow),
        latency_fast: shared.latency_fast.summary(),
        latency_slow: shared.latency_slow.summary(),
        partial_latency: shared.partial_latency.summary(),
        ack_latency: shared.ack_latency.summary(),
        close_going_away: c.close_going_away.load(Ordering::Relaxed),
        close_behind: c.close_behind.load(Ordering::Relaxed),
        close_other: c.close_other.load(Ordering::Relaxed),
        reconnects: outcomes.iter().map(|o| o.reconnects).sum(),
        resume_time: shared.resume_time.summary(),
        storm_recovery_secs: (first != u64::MAX && last > first)
            .then(|| (last - first) as f64 / 1e6),
        publish_secs: m.published.secs,
        drain_secs: m.drained.secs,
        server: (!cfg.server_pid.is_empty()).then_some(m.server),
        loadgen_cpu_ms: m.loadgen_cpu_ms,
        audio: (cfg.audio_listeners > 0).then(|| shared.audio.report(cfg.audio_listeners.min(n))),
        last_seqs: shared
            .channels
            .iter()
            .map(|c| c.target.load(Ordering::Relaxed))
            .collect(),
        target_missing: m.published.target_missing,
        ok: false,
    };
    report.ok = !report.lost();
    report
}

fn merged(a: &Histogram, b: &Histogram) -> Quantiles {
    let m = Histogram::default();
    m.merge(a);
    m.merge(b);
    m.summary()
}
