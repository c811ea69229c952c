//! The forwarders' Prometheus series, appended to `/metrics` by the server.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::{Forwarder, State};
use crate::hub::Hub;

/// Appends the Prometheus series of the forwarders `fs` (of `hub`'s channels) to `out`.
pub fn render_metrics(hub: &Hub, fs: &[std::sync::Arc<Forwarder>], out: &mut String) {
    if fs.is_empty() {
        return;
    }
    let labels = |f: &Forwarder| {
        format!(
            "event=\"{}\",channel=\"{}\",kind=\"{}\",index=\"{}\"",
            f.event,
            f.channel,
            f.kind.as_str(),
            f.index
        )
    };
    let _ = writeln!(
        out,
        "# HELP babelcast_forward_state Forwarder state (1 for the current one).\n# TYPE babelcast_forward_state gauge"
    );
    for f in fs {
        let now = f.state();
        for s in State::ALL {
            let _ = writeln!(
                out,
                "babelcast_forward_state{{{},state=\"{}\"}} {}",
                labels(f),
                s.as_str(),
                u8::from(s == now)
            );
        }
    }
    type Get = fn(&Hub, &Forwarder) -> f64;
    let series: [(&str, &str, &str, Get); 6] = [
        (
            "babelcast_forward_posts_total",
            "counter",
            "Posts the remote accepted.",
            |_, f| f.stats.posts.load(Ordering::Relaxed) as f64,
        ),
        (
            "babelcast_forward_retries_total",
            "counter",
            "Failed posts retried (timeouts, connection errors, 408, 429, 5xx).",
            |_, f| f.stats.retries.load(Ordering::Relaxed) as f64,
        ),
        (
            "babelcast_forward_dropped_total",
            "counter",
            "Lines dropped after an answer not worth retrying (e.g. 400, 403).",
            |_, f| f.stats.dropped.load(Ordering::Relaxed) as f64,
        ),
        (
            "babelcast_forward_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last accepted post (0 = never).",
            |_, f| f.stats.last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        ),
        (
            "babelcast_forward_remote_seq",
            "gauge",
            "The last seq the remote accepted.",
            |_, f| f.stats.remote_seq.load(Ordering::Relaxed) as f64,
        ),
        (
            "babelcast_forward_behind",
            "gauge",
            "Channel events not yet handled by the forwarder.",
            |hub, f| {
                let last = hub
                    .channel(&f.event, &f.channel)
                    .map(|c| c.last_seq())
                    .unwrap_or(0);
                last.saturating_sub(f.stats.forwarded_seq.load(Ordering::Relaxed)) as f64
            },
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for f in fs {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(f), get(hub, f));
        }
    }
}
