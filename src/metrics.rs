//! Process-wide counters and histograms, rendered in the Prometheus text format at `/metrics`.
//!
//! Counters are plain atomics updated off the per-recipient path (sessions add their frame
//! counts once per flush), so observability costs no contention on the hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds in seconds for latency histograms.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// One listener in this many reports publish-to-send latency.
pub const LATENCY_SAMPLE: u64 = 16;

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Why a connection or message was refused, for `babelcast_refusals_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    Unauthorized,
    BadMessage,
    TooBig,
    Storage,
    /// The node is at `limits.max_connections` (HTTP 503).
    NodeFull,
    /// Too many open connections from one address (HTTP 429).
    IpConnections,
    /// Too many new connections per second from one address (HTTP 429).
    IpRate,
    /// A publisher over `limits.publisher_rate` (`rate_limited`).
    RateLimited,
    /// A request head, TLS handshake or upgrade slower than `limits.handshake_timeout_secs`,
    /// or a request slower than `limits.request_timeout_secs`.
    Timeout,
    /// A browser `Origin` not in `server.allowed_origins`.
    Origin,
    /// A missing or wrong attendee access code.
    AccessCode,
}

impl Refused {
    const ALL: [Refused; 12] = [
        Refused::NotFound,
        Refused::Unauthorized,
        Refused::BadMessage,
        Refused::TooBig,
        Refused::Storage,
        Refused::NodeFull,
        Refused::IpConnections,
        Refused::IpRate,
        Refused::RateLimited,
        Refused::Timeout,
        Refused::Origin,
        Refused::AccessCode,
    ];
    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::NotFound => "not_found",
            Refused::Unauthorized => "unauthorized",
            Refused::BadMessage => "bad_message",
            Refused::TooBig => "too_big",
            Refused::Storage => "storage",
            Refused::NodeFull => "node_full",
            Refused::IpConnections => "ip_connections",
            Refused::IpRate => "ip_rate",
            Refused::RateLimited => "rate_limited",
            Refused::Timeout => "timeout",
            Refused::Origin => "origin",
            Refused::AccessCode => "access_code",
        }
    }
}

/// Process-wide metrics; channel-level ones live in [`crate::channel::ChannelStats`].
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub store_commit: Histogram,
    pub store_failures: AtomicU64,
    /// Open TCP (or TLS) connections, HTTP and WebSocket alike.
    pub http_connections: AtomicU64,
    /// The connection limit in force (`limits.max_connections`, resolved).
    pub max_connections: AtomicU64,
    /// Sockets closed with 4002 because the client stopped answering pings.
    pub idle_closes: AtomicU64,
    /// Hands out "sample this listener's latency" to one listener in [`LATENCY_SAMPLE`].
    latency_sampler: AtomicU64,
    /// From a publisher's final reaching the server to its line being written: once per
    /// event by the channel's direct fan-out (after every caught-up socket), and by one
    /// listener session in [`LATENCY_SAMPLE`] otherwise. Includes the durable commit.
    pub publish_to_send: Histogram,
    refusals: [AtomicU64; Refused::ALL.len()],
}

impl Metrics {
    /// A WebSocket session started.
    pub fn opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A WebSocket session ended.
    pub fn closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn refuse(&self, why: Refused) {
        self.refusals[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused publisher message by its error code (booth rules such as `not_on_air`
    /// are answers, not refusals, and are not counted).
    pub fn refuse_message(&self, code: crate::protocol::ErrorCode) {
        use crate::protocol::ErrorCode as E;
        let why = match code {
            E::TextTooLong | E::IdTooLong => Refused::TooBig,
            E::StorageUnavailable | E::ClusterUnavailable => Refused::Storage,
            E::RateLimited | E::TooManyInFlight => Refused::RateLimited,
            E::NotOnAir | E::HandoverRefused | E::ShuttingDown | E::NoSource => return,
            _ => Refused::BadMessage,
        };
        self.refuse(why);
    }

    /// Refusals so far for one reason.
    pub fn refusals(&self, why: Refused) -> u64 {
        self.refusals[why as usize].load(Ordering::Relaxed)
    }

    /// A TCP connection was admitted.
    pub fn http_connection_opened(&self) {
        self.http_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// An admitted TCP connection ended.
    pub fn http_connection_closed(&self) {
        self.http_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether a joining listener should report publish-to-send latency (the first listener
    /// and then one in [`LATENCY_SAMPLE`]: sampling keeps the histogram off the fan-out path).
    pub fn sample_latency(&self) -> bool {
        self.latency_sampler.fetch_add(1, Ordering::Relaxed) % LATENCY_SAMPLE == 0
    }

    pub fn set_max_connections(&self, n: u64) {
        self.max_connections.store(n, Ordering::Relaxed);
    }

    /// Renders process-wide metrics (the hub adds per-channel ones).
    pub fn render(&self, out: &mut String) {
        counter(
            out,
            "babelcast_connections",
            "gauge",
            "Open WebSocket connections.",
            self.connections.load(Ordering::Relaxed),
        );
        counter(
            out,
            "babelcast_connections_total",
            "counter",
            "WebSocket connections accepted.",
            self.connections_total.load(Ordering::Relaxed),
        );
        counter(
            out,
            "babelcast_http_connections",
            "gauge",
            "Open TCP/TLS connections (HTTP and WebSocket).",
            self.http_connections.load(Ordering::Relaxed),
        );
        counter(
            out,
            "babelcast_max_connections",
            "gauge",
            "Connection limit of this node (limits.max_connections).",
            self.max_connections.load(Ordering::Relaxed),
        );
        counter(
            out,
            "babelcast_idle_closes_total",
            "counter",
            "Sockets closed (4002) because the client stopped answering pings.",
            self.idle_closes.load(Ordering::Relaxed),
        );
        counter(
            out,
            "babelcast_store_failures_total",
            "counter",
            "Transcript commits that failed (nothing acked).",
            self.store_failures.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP babelcast_refusals_total Refused connections and messages by reason.\n# TYPE babelcast_refusals_total counter"
        );
        for r in Refused::ALL {
            let _ = writeln!(
                out,
                "babelcast_refusals_total{{reason=\"{}\"}} {}",
                r.label(),
                self.refusals[r as usize].load(Ordering::Relaxed)
            );
        }
        self.store_commit.render(
            out,
            "babelcast_store_commit_seconds",
            "Time to write and commit one batch of transcript events.",
        );
        self.publish_to_send.render(
            out,
            "babelcast_publish_to_send_seconds",
            "From a final reaching the server to its line being written to listeners (includes the durable commit).",
        );
    }
}

fn counter(out: &mut String, name: &str, kind: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
    );
}
