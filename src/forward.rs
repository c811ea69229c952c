//! Egress forwarders: every committed line of a channel pushed, in order, to an outside caption
//! service (a Zoom closed-caption URL or a YouTube Live caption ingestion URL), one task per
//! forwarder configured in `[[events.channels.forward]]`.
//!
//! A forwarder follows the channel by seq, not by copying events: the channel's broadcast only
//! wakes it, and it reads the lines after its cursor from the store, page by page. So an outage
//! of the remote never blocks the channel (the broadcast ring is bounded and simply laps a
//! forwarder that is behind) and, once the remote is back, the forwarder catches up from the
//! store in order. A post is retried with the same remote seq on timeouts, connection errors,
//! 408, 429 and 5xx, with exponential backoff, so lines are never reordered; another answer
//! drops that one line (counted). The cursor and remote seq are saved beside the transcripts,
//! keyed by the URL, so a restart resumes where it stopped and a new URL starts from now.
//! URLs may be `https://` (Zoom's and YouTube's are): certificates are verified against the
//! Mozilla roots plus `server.forward_ca_file` (see [`HttpClient`]).
//!
//! **Invariant:** a forwarder never holds a channel lock or map guard across an `.await`; it
//! only owns a broadcast receiver.
//!
//! A post in flight when the process dies is settled at the next start (`recover`): Zoom's seq
//! URL tells whether it was delivered, so no meeting shows a caption twice.
//!
//! `task` runs a forwarder, `service` builds what Zoom and YouTube expect, `position` saves
//! where a forwarder is, `recover` decides where a restarted forwarder starts, `client` is the
//! HTTP(S) client and `metrics` renders the series.

mod client;
mod metrics;
mod position;
mod recover;
mod service;
mod task;

pub use client::{Answer, HttpClient, SendError};
pub use metrics::render_metrics;
pub use position::PositionMirror;
pub use task::{retryable, run, spawn_all};

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ForwardKind};

/// Deadline of one post (Zoom: "all HTTP POST requests should be performed with a timeout").
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait before a retry; doubled after every failed attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a forwarder is doing, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Not started yet (or learning the remote seq).
    Starting = 0,
    /// Every committed line has been handled; waiting for the next.
    UpToDate = 1,
    /// Posting lines.
    Sending = 2,
    /// The last attempt failed; waiting to retry the same post.
    Retrying = 3,
    /// Stopped (shutdown, or the channel does not exist).
    Stopped = 4,
}

impl State {
    const ALL: [State; 5] = [
        State::Starting,
        State::UpToDate,
        State::Sending,
        State::Retrying,
        State::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::UpToDate => "up_to_date",
            State::Sending => "sending",
            State::Retrying => "retrying",
            State::Stopped => "stopped",
        }
    }
}

/// Counters of one forwarder.
#[derive(Debug, Default)]
pub struct ForwardStats {
    state: AtomicU8,
    /// Posts the remote accepted.
    pub posts: AtomicU64,
    /// Failed attempts that were retried.
    pub retries: AtomicU64,
    /// Lines given up after an answer that is not worth retrying (e.g. 400, 403).
    pub dropped: AtomicU64,
    /// Unix ms of the last accepted post (0 = never).
    pub last_success_ms: AtomicI64,
    /// The channel seq up to which every event has been handled.
    pub forwarded_seq: AtomicU64,
    /// The last seq the remote accepted.
    pub remote_seq: AtomicU64,
}

/// One configured forwarder.
#[derive(Debug)]
pub struct Forwarder {
    pub event: String,
    pub channel: String,
    /// Position in the channel's `forward` list.
    pub index: usize,
    pub kind: ForwardKind,
    url: String,
    lang: Option<String>,
    /// `server.forward_ca_file`: extra CA certificates trusted for `https://` URLs (the same
    /// for every forwarder).
    ca_file: Option<PathBuf>,
    pub stats: ForwardStats,
}

impl Forwarder {
    pub fn state(&self) -> State {
        let v = self.stats.state.load(Ordering::Relaxed);
        State::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(State::Stopped)
    }

    fn set(&self, s: State) {
        self.stats.state.store(s as u8, Ordering::Relaxed);
    }
}

/// Every forwarder of the config, in config order.
pub fn from_config(config: &Config) -> Vec<Arc<Forwarder>> {
    let mut out = Vec::new();
    for ev in &config.events {
        for ch in &ev.channels {
            for (index, f) in ch.forward.iter().enumerate() {
                out.push(Arc::new(Forwarder {
                    event: ev.id.get_ref().clone(),
                    channel: ch.id.get_ref().clone(),
                    index,
                    kind: f.kind,
                    url: f.url.clone(),
                    lang: f.lang.clone(),
                    ca_file: config
                        .server
                        .forward_ca_file
                        .as_ref()
                        .map(|p| p.get_ref().clone()),
                    stats: ForwardStats::default(),
                }));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn config_is_validated() {
        let toml = |url: &str, extra: &str| {
            format!("[[events]]\nid = \"e\"\n[[events.channels]]\nid = \"ja\"\nlang = \"ja\"\n[[events.channels.forward]]\nkind = \"zoom\"\nurl = \"{url}\"\n{extra}")
        };
        let c =
            Config::parse(&toml("http://127.0.0.1:9/cc?id=1", ""), Path::new("t.toml")).unwrap();
        let fs = from_config(&c);
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].kind, ForwardKind::Zoom);
        // Zoom's and YouTube's caption URLs are HTTPS.
        let c = Config::parse(
            &toml("https://wmcc.zoom.us/closedcaption?id=1", ""),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(from_config(&c).len(), 1);
        let err = Config::parse(&toml("ftp://wmcc.zoom.us/cc", ""), Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("events[0].channels[0].forward[0].url"),
            "{err}"
        );
        assert!(err.contains("https:// or http://"), "{err}");
        let err = Config::parse(&toml("not a url", ""), Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("forward[0].url"), "{err}");
        let err = Config::parse(
            &toml("http://h/cc", "lang = \"japanese\"\n"),
            Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("forward[0].lang"), "{err}");
        let err = Config::parse(
            &toml("http://h/cc", "").replace("\"zoom\"", "\"teams\""),
            Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("teams"), "{err}");
    }
}
