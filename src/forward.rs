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

mod client;
mod metrics;
mod position;

pub use client::{load_ca_file, Answer, HttpClient, SendError};
pub use metrics::render_metrics;

use position::{load_position, save_position, state_path, Position};

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{Config, ForwardKind};
use crate::event::{Kind, Record};
use crate::formats::{parse_lang, youtube, zoom};
use crate::hub::Hub;
use crate::ingest::now_ms;

/// Deadline of one post (Zoom: "all HTTP POST requests should be performed with a timeout").
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait before a retry; doubled after every failed attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Lines read from the store at a time when catching up.
const PAGE: u64 = 100;

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
    /// The forwarder as the dashboard shows it (the URL is left out: it holds secrets).
    pub fn status_json(&self) -> serde_json::Value {
        let s = &self.stats;
        let last = s.last_success_ms.load(Ordering::Relaxed);
        serde_json::json!({
            "kind": self.kind.as_str(),
            "index": self.index,
            "state": self.state().as_str(),
            "posts": s.posts.load(Ordering::Relaxed),
            "retries": s.retries.load(Ordering::Relaxed),
            "dropped": s.dropped.load(Ordering::Relaxed),
            "last_success_ts": (last > 0).then_some(last),
            "forwarded_seq": s.forwarded_seq.load(Ordering::Relaxed),
            "remote_seq": s.remote_seq.load(Ordering::Relaxed),
        })
    }

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

    /// Zoom's `lang` for a line: the configured one, else the channel's (or on an `auto`
    /// channel the line's) language in Zoom's codes.
    fn zoom_lang(&self, channel_lang: &str, record: &Record) -> String {
        if let Some(l) = &self.lang {
            return l.clone();
        }
        let tag = if channel_lang == "auto" {
            record.lang.as_str()
        } else {
            channel_lang
        };
        match parse_lang(Some(tag)) {
            Ok(Some(primary)) if primary != "und" => zoom::lang_code(&primary),
            _ => "en-US".to_string(),
        }
    }

    /// The URL and body of the post carrying `record` as remote seq `seq`.
    fn request(&self, channel_lang: &str, record: &Record, seq: u64) -> (String, String) {
        match self.kind {
            ForwardKind::Zoom => (
                zoom::post_url(&self.url, seq, &self.zoom_lang(channel_lang, record)),
                // A line break ends the caption line (Zoom's own example ends with "\n").
                format!("{}\n", record.text),
            ),
            ForwardKind::Youtube => (
                youtube::post_url(&self.url, seq),
                youtube::body(record.ts, None, &record.text),
            ),
        }
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

/// Starts one task per forwarder of the hub; they stop when `shutdown` is cancelled.
pub fn spawn_all(hub: &Arc<Hub>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    if hub.forwarders.is_empty() {
        return;
    }
    let ca_file = hub.forwarders[0].ca_file.as_deref();
    let client = HttpClient::with_ca_file(ca_file).unwrap_or_else(|e| {
        // Checked when the config was loaded; gone or changed since. Public CAs still work.
        tracing::error!(
            error = %e,
            path = %ca_file.unwrap_or(std::path::Path::new("")).display(),
            "server.forward_ca_file cannot be used; forwarders trust the Mozilla roots only"
        );
        HttpClient::new()
    });
    for f in &hub.forwarders {
        tracker.spawn(run(
            hub.clone(),
            f.clone(),
            client.clone(),
            shutdown.clone(),
        ));
    }
}

/// Asks a Zoom caption URL for its last accepted seq (one attempt).
async fn zoom_remote_seq(client: &HttpClient, url: &str) -> Option<u64> {
    match client
        .send(Method::GET, &zoom::seq_url(url), None, POST_TIMEOUT)
        .await
    {
        Ok(a) if a.status == 200 => zoom::parse_seq_answer(&a.body),
        Ok(a) => {
            tracing::warn!(
                status = a.status,
                "the Zoom seq URL refused; starting at seq 1"
            );
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the Zoom seq URL did not answer; starting at seq 1");
            None
        }
    }
}

/// How one delivery ended.
enum Delivery {
    Accepted,
    Dropped,
    Shutdown,
}

/// Whether an answer status is worth retrying with the same seq.
pub fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Runs one forwarder until shutdown.
pub async fn run(
    hub: Arc<Hub>,
    f: Arc<Forwarder>,
    client: HttpClient,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("forward", event = %f.event, channel = %f.channel, kind = f.kind.as_str(), index = f.index);
    forward(hub, f.clone(), client, shutdown)
        .instrument(span)
        .await;
    f.set(State::Stopped);
}

async fn forward(
    hub: Arc<Hub>,
    f: Arc<Forwarder>,
    client: HttpClient,
    shutdown: CancellationToken,
) {
    let Some(ch) = hub.channel(&f.event, &f.channel) else {
        tracing::error!("no such channel; forwarder not started");
        return;
    };
    f.set(State::Starting);
    // Subscribe before reading the position: every commit after this wakes us.
    let sub = ch.subscribe(None, 0);
    let mut wake = sub.events;
    let path = state_path(&hub, &f);
    let saved = load_position(&path).await;
    let mut pos = match saved {
        // A saved cursor beyond the channel means the transcripts were wiped: start over.
        Some(p) if p.cursor <= sub.last_seq => p,
        _ => Position {
            cursor: sub.last_seq,
            remote_seq: 0,
        },
    };
    if f.kind == ForwardKind::Zoom {
        let remote = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = zoom_remote_seq(&client, &f.url) => r,
        };
        if let Some(n) = remote {
            pos.remote_seq = pos.remote_seq.max(n);
        }
    }
    if saved != Some(pos) {
        // Saved before the first post: lines committed from now on survive a restart even if
        // the remote is down until then.
        save_position(&path, pos).await;
    }
    f.stats.forwarded_seq.store(pos.cursor, Ordering::Relaxed);
    f.stats.remote_seq.store(pos.remote_seq, Ordering::Relaxed);
    tracing::info!(
        cursor = pos.cursor,
        remote_seq = pos.remote_seq,
        "forwarder started"
    );
    let mut read_backoff = FIRST_BACKOFF;
    loop {
        let last = ch.last_seq();
        if last > pos.cursor {
            f.set(State::Sending);
            let (after, upto) = (pos.cursor, last.min(pos.cursor + PAGE));
            let (h, ev, id) = (hub.clone(), f.event.clone(), f.channel.clone());
            let slot = hub.store.read_slot().await;
            let page = tokio::task::spawn_blocking(move || h.store.range(&ev, &id, after, upto))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            drop(slot);
            let records = match page {
                Ok(r) => {
                    read_backoff = FIRST_BACKOFF;
                    r
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read lines to forward; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(read_backoff) => {}
                    }
                    read_backoff = (read_backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if records.is_empty() {
                // Nothing stored in that range (cannot happen with gapless seqs): move on.
                pos.cursor = upto;
            }
            for record in records {
                if record.kind == Kind::Line {
                    let seq = pos.remote_seq + 1;
                    match deliver(&f, &client, &ch.info.lang, &record, seq, &shutdown).await {
                        Delivery::Accepted => pos.remote_seq = seq,
                        Delivery::Dropped => {}
                        Delivery::Shutdown => return,
                    }
                    f.stats.remote_seq.store(pos.remote_seq, Ordering::Relaxed);
                }
                pos.cursor = record.seq;
                f.stats.forwarded_seq.store(pos.cursor, Ordering::Relaxed);
                save_position(&path, pos).await;
            }
            continue;
        }
        f.set(State::UpToDate);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = wake.recv() => {
                // A new event, or many (lagged): either way, read from the cursor.
                if let Err(RecvError::Closed) = r {
                    return;
                }
            }
        }
    }
}

/// Posts one line as remote seq `seq` until the remote accepts it, gives a final refusal, or
/// the server shuts down.
async fn deliver(
    f: &Forwarder,
    client: &HttpClient,
    channel_lang: &str,
    record: &Record,
    seq: u64,
    shutdown: &CancellationToken,
) -> Delivery {
    let (url, body) = f.request(channel_lang, record, seq);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let why = match client
            .send(Method::POST, &url, Some(body.clone()), POST_TIMEOUT)
            .await
        {
            Ok(a) if (200..300).contains(&a.status) => {
                f.stats.posts.fetch_add(1, Ordering::Relaxed);
                f.stats.last_success_ms.store(now_ms(), Ordering::Relaxed);
                f.set(State::Sending);
                return Delivery::Accepted;
            }
            Ok(a) if retryable(a.status) => format!("HTTP {}", a.status),
            Ok(a) => {
                f.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    status = a.status,
                    answer = %a.body.chars().take(200).collect::<String>(),
                    line = record.seq,
                    "the remote refused a line; it is dropped"
                );
                return Delivery::Dropped;
            }
            Err(e) => e.to_string(),
        };
        f.stats.retries.fetch_add(1, Ordering::Relaxed);
        f.set(State::Retrying);
        tracing::warn!(error = %why, seq, retry_in_ms = backoff.as_millis() as u64, "post failed; retrying");
        tokio::select! {
            _ = shutdown.cancelled() => return Delivery::Shutdown,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn forwarder(kind: ForwardKind, lang: Option<&str>) -> Forwarder {
        Forwarder {
            event: "e".into(),
            channel: "c".into(),
            index: 0,
            kind,
            url: "http://127.0.0.1:9/cc?id=1".into(),
            lang: lang.map(Into::into),
            ca_file: None,
            stats: ForwardStats::default(),
        }
    }

    fn line(text: &str, lang: &str) -> Record {
        Record {
            seq: 4,
            kind: Kind::Line,
            ts: 1_356_307_206_873,
            text: text.into(),
            lang: lang.into(),
            of: None,
            client_id: None,
            expected_lang: None,
            author: None,
        }
    }

    #[test]
    fn zoom_requests() {
        let f = forwarder(ForwardKind::Zoom, None);
        let (url, body) = f.request("ja", &line("こんにちは", "ja"), 3);
        assert_eq!(url, "http://127.0.0.1:9/cc?id=1&seq=3&lang=jp-JP");
        assert_eq!(body, "こんにちは\n");
        // An auto channel uses each line's language; an override wins.
        assert!(f
            .request("auto", &line("Bonjour", "fr"), 1)
            .0
            .ends_with("lang=fr-FR"));
        let f = forwarder(ForwardKind::Zoom, Some("en-GB"));
        assert!(f
            .request("en", &line("Hi", "en"), 1)
            .0
            .ends_with("lang=en-GB"));
    }

    #[test]
    fn youtube_requests() {
        let f = forwarder(ForwardKind::Youtube, None);
        let (url, body) = f.request("en", &line("Hello\nworld", "en"), 9);
        assert_eq!(url, "http://127.0.0.1:9/cc?id=1&seq=9");
        assert_eq!(body, "2012-12-24T00:00:06.873\nHello<br>world\n");
    }

    #[test]
    fn retry_policy() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 413] {
            assert!(!retryable(s), "{s}");
        }
    }

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
