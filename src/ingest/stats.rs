//! Counters of how caption streams behave (`/metrics`): the seq rules applied to the HTTP
//! formats' posts and the lines babelcast committed itself because a stream left a line in
//! progress.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::formats::Format;

/// A kind of caption stream, as labelled in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Format(Format),
    Ebutt,
}

impl Stream {
    const ALL: [Stream; 4] = [
        Stream::Format(Format::Zoom),
        Stream::Format(Format::YouTube),
        Stream::Format(Format::StreamText),
        Stream::Ebutt,
    ];

    fn index(self) -> usize {
        match self {
            Stream::Format(Format::Zoom) => 0,
            Stream::Format(Format::YouTube) => 1,
            Stream::Format(Format::StreamText) => 2,
            Stream::Ebutt => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Stream::Format(f) => f.as_str(),
            Stream::Ebutt => "ebutt",
        }
    }
}

/// Why babelcast committed a stream's line in progress itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// `ingest.idle_commit_ms` passed with no news from the stream.
    Idle,
    /// The EBU-TT Live document's `end` or `dur` passed.
    Timing,
    /// The producer's connection ended.
    Disconnect,
    /// Another EBU-TT Live sequence started publishing on the channel.
    Replaced,
    /// The server shut down gracefully.
    Shutdown,
    /// The organiser (or the schedule) ended the event.
    EventEnd,
}

impl Commit {
    const ALL: [Commit; 6] = [
        Commit::Idle,
        Commit::Timing,
        Commit::Disconnect,
        Commit::Replaced,
        Commit::Shutdown,
        Commit::EventEnd,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Commit::Idle => "idle",
            Commit::Timing => "timing",
            Commit::Disconnect => "disconnect",
            Commit::Replaced => "replaced",
            Commit::Shutdown => "shutdown",
            Commit::EventEnd => "event_end",
        }
    }
}

/// What the seq rules made of a post (see `crate::formats::seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqEvent {
    Retry,
    Gap { skipped: u64 },
    Changed,
    Restart,
}

/// The counters, per stream kind.
#[derive(Debug, Default)]
pub struct IngestStats {
    retries: [AtomicU64; 4],
    gaps: [AtomicU64; 4],
    skipped: [AtomicU64; 4],
    changed: [AtomicU64; 4],
    restarts: [AtomicU64; 4],
    commits: [[AtomicU64; 6]; 4],
    dropped: [AtomicU64; 4],
}

impl IngestStats {
    /// Counts what the seq rules made of a post.
    pub fn seq(&self, stream: Stream, event: SeqEvent) {
        let i = stream.index();
        match event {
            SeqEvent::Retry => self.retries[i].fetch_add(1, Ordering::Relaxed),
            SeqEvent::Gap { skipped } => {
                self.skipped[i].fetch_add(skipped, Ordering::Relaxed);
                self.gaps[i].fetch_add(1, Ordering::Relaxed)
            }
            SeqEvent::Changed => self.changed[i].fetch_add(1, Ordering::Relaxed),
            SeqEvent::Restart => self.restarts[i].fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Counts a line in progress babelcast committed itself.
    pub fn committed(&self, stream: Stream, why: Commit) {
        let w = Commit::ALL.iter().position(|c| *c == why).unwrap_or(0);
        self.commits[stream.index()][w].fetch_add(1, Ordering::Relaxed);
    }

    /// Lines committed for `why` on streams of `stream` so far.
    pub fn commits(&self, stream: Stream, why: Commit) -> u64 {
        let w = Commit::ALL.iter().position(|c| *c == why).unwrap_or(0);
        self.commits[stream.index()][w].load(Ordering::Relaxed)
    }

    /// Counts a line in progress dropped because its commit was refused for good (the event
    /// is over, the channel is gone).
    pub fn dropped(&self, stream: Stream) {
        self.dropped[stream.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Lines in progress of streams of `stream` dropped so far.
    pub fn drops(&self, stream: Stream) -> u64 {
        self.dropped[stream.index()].load(Ordering::Relaxed)
    }

    /// Prometheus text.
    pub fn render(&self, out: &mut String) {
        let series: [(&str, &str, &[AtomicU64; 4]); 6] = [
            (
                "babelcast_ingest_retries_total",
                "Posts that repeated the last post (same seq, same body): answered again, nothing stored.",
                &self.retries,
            ),
            (
                "babelcast_ingest_seq_gaps_total",
                "Posts whose seq skipped seqs never received (accepted).",
                &self.gaps,
            ),
            (
                "babelcast_ingest_seqs_skipped_total",
                "Seqs skipped by those posts.",
                &self.skipped,
            ),
            (
                "babelcast_ingest_same_seq_new_text_total",
                "Posts repeating the last seq with another body (taken as new text).",
                &self.changed,
            ),
            (
                "babelcast_ingest_seq_restarts_total",
                "Posts (or EBU-TT Live documents) numbered below the last: a new run of the sender.",
                &self.restarts,
            ),
            (
                "babelcast_ingest_lines_dropped_total",
                "Lines in progress dropped because they could never be committed (the event ended or the channel was deleted first).",
                &self.dropped,
            ),
        ];
        for (name, help, counts) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for s in Stream::ALL {
                let n = counts[s.index()].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{format=\"{}\"}} {n}", s.label());
            }
        }
        let name = "babelcast_ingest_auto_commits_total";
        let _ = writeln!(
            out,
            "# HELP {name} Lines in progress committed by babelcast (silence, timing, disconnect, replaced sequence, shutdown, event end).\n# TYPE {name} counter"
        );
        for s in Stream::ALL {
            for why in Commit::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{format=\"{}\",reason=\"{}\"}} {}",
                    s.label(),
                    why.label(),
                    self.commits(s, why)
                );
            }
        }
    }
}
