//! What a run measured: the `Report` (and the server's resource use), the loss verdict and
//! the table printed for people.

use serde::Serialize;

use super::stats::Quantiles;
use super::LoadConfig;

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
    /// Sound, with `--audio-listeners`.
    pub audio: Option<super::audio::AudioReport>,
    /// Each channel's last seq at the end (what every listener had to get up to): the target
    /// file of listen-only runs on the other processes.
    pub last_seqs: Vec<u64>,
    /// A listen-only run never got its target file.
    pub target_missing: bool,
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
            || self.target_missing
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
    if let Some(a) = &r.audio {
        let _ = writeln!(
            s,
            "sound            {} listeners: {} packets sent, {} received, {} skipped, {} later than {} ms; {}",
            a.listeners,
            a.sent,
            a.received,
            a.skipped,
            a.late,
            super::audio::LATE_MS,
            q(&a.latency)
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
