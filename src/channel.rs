//! Per-language channel state, independent of the WebSocket transport: seq, recent history,
//! the partial in progress, status and the fan-out of committed events.
//!
//! Fan-out is a bounded `tokio::sync::broadcast` ring of pre-serialised frames: one ring per
//! channel, one cursor per listener, so a slow listener costs no memory of its own and never
//! slows the others. Partials and status go through `watch` slots, so a listener that is
//! behind only ever sees the newest one (coalescing for free). Listeners that are caught up
//! are parked, not tasks: the channel's one fan-out task ([`Fanout`]) writes each frame to
//! their sockets directly and pings them, its reader takes their pongs, and a listener goes
//! back to a session ([`Resume`]) only when it needs one, e.g. when its socket is full.
//!
//! **Invariant:** only the store writer calls [`Channel::commit`], in seq order, after the
//! event is durable. The state mutex is never held across an `.await`.
//!
//! `backlog`: what a joining or lagging listener is sent from the history ring; `presence`:
//! the listener and publisher counts, their guards and the status frame; `heartbeat`: the
//! status sent again on a quiet channel.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};

mod audio;
mod backlog;
mod fanout;
mod heartbeat;
mod inbound;
mod info;
mod lifecycle;
mod park;
mod presence;
mod rate;
mod records;
mod socket;
mod tls;
pub use audio::{
    render_metrics as render_audio_metrics, AudioSlot, AudioStats, ChannelAudio, Packet, Source,
};
pub use backlog::Backlog;
use backlog::{history_after, last_lines};
pub use fanout::{encode, Fanout, Feeds};
pub use heartbeat::QUIET_TICKS;
pub use info::{ChannelInfo, ChannelStats};
pub use lifecycle::{EventSignal, Lifecycle, Stop};
pub use park::{Handback, Parked, Parking, Resume};
pub use presence::CountGuard;
pub use rate::LineRate;
pub use socket::{DirectSocket, Keep, Takeover};
pub use tls::TLS_SEND_BUFFER;

use crate::booth::Booth;
pub use crate::protocol::EMPTY_PARTIAL;
use crate::protocol::{Frame, ServerMsg, Status};
use crate::record::{Committed, Kind, Record};

/// One language stream.
#[derive(Debug)]
pub struct Channel {
    pub info: ChannelInfo,
    pub stats: ChannelStats,
    /// Who is on air, handover, feedback and the language alert.
    pub booth: Booth,
    /// The event's state and whether the channel was deleted (organisers' decisions).
    pub life: Lifecycle,
    state: Mutex<State>,
    events: broadcast::Sender<Committed>,
    partial: watch::Sender<Frame>,
    status: watch::Sender<Frame>,
    listeners: AtomicU64,
    /// Cluster mode: this channel's listeners on the other nodes (see `cluster::audience`).
    remote_listeners: AtomicU64,
    publishers: AtomicU64,
    history_cap: usize,
    /// Caught-up listeners the fan-out task writes to directly (see [`fanout`]).
    fanout: std::sync::Arc<Fanout>,
    /// The channel's sound (see [`audio`]).
    audio: ChannelAudio,
}

#[derive(Debug)]
struct State {
    last_seq: u64,
    last_ts: i64,
    /// The language of the last line (carried over on `auto` channels).
    last_lang: Option<String>,
    history: VecDeque<Committed>,
    /// Bumped on every partial; a final clears the partial only if none came after it.
    partial_gen: u64,
    partial_empty: bool,
    last_status: Status,
    /// What the heartbeat saw at the last status tick.
    beat: heartbeat::Beat,
}

/// A listener's view of the channel at the moment it joined.
#[derive(Debug)]
pub struct Subscription {
    pub events: broadcast::Receiver<Committed>,
    pub partial: watch::Receiver<Frame>,
    pub status: watch::Receiver<Frame>,
    /// The channel's last seq when the listener joined; live events have larger seqs.
    pub last_seq: u64,
    pub backlog: Backlog,
    /// `since` was beyond the channel's last seq: the client must start over.
    pub reset: bool,
}

impl Channel {
    /// A channel whose store holds `recent` (oldest first) and whose last seq is `last_seq`.
    pub fn new(
        info: ChannelInfo,
        last_seq: u64,
        last_ts: i64,
        recent: Vec<Record>,
        history_cap: usize,
        queue: usize,
    ) -> Channel {
        let (events, _) = broadcast::channel(queue.max(1));
        let (partial, _) = watch::channel(Frame::from_static(EMPTY_PARTIAL));
        let status0 = Status {
            listeners: 0,
            publishers: 0,
            on_air: false,
            interrupted: false,
            state: Default::default(),
            rev: 0,
            audio: false,
        };
        let (status, _) = watch::channel(ServerMsg::Status(status0).to_frame());
        let last_lang = recent
            .iter()
            .rev()
            .find(|r| r.kind == Kind::Line)
            .map(|r| r.lang.clone());
        let stats = ChannelStats::default();
        if let Some(r) = recent.iter().rev().find(|r| r.kind == Kind::Line) {
            stats.last_line_ts.store(r.ts, Ordering::Relaxed);
        }
        let mut history: VecDeque<Committed> = recent.iter().map(Record::committed).collect();
        while history.len() > history_cap {
            history.pop_front();
        }
        Channel {
            info,
            stats,
            booth: Booth::new(None),
            life: Lifecycle::default(),
            state: Mutex::new(State {
                last_seq,
                last_ts,
                last_lang,
                history,
                partial_gen: 0,
                partial_empty: true,
                last_status: status0,
                beat: Default::default(),
            }),
            events,
            partial,
            status,
            listeners: AtomicU64::new(0),
            remote_listeners: AtomicU64::new(0),
            publishers: AtomicU64::new(0),
            history_cap,
            fanout: Default::default(),
            audio: Default::default(),
        }
    }

    /// Sets the booth's silence rule: a standby partner may take over after the on-air
    /// partner has been silent this long (`None`: only by request).
    pub fn with_takeover_after(mut self, after: Option<std::time::Duration>) -> Channel {
        self.booth = Booth::new(after);
        self
    }

    /// Makes the channel one of the event whose state and revision `event` carries.
    pub fn with_event(mut self, event: std::sync::Arc<EventSignal>) -> Channel {
        self.life = Lifecycle::new(event);
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug; the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last committed seq.
    pub fn last_seq(&self) -> u64 {
        self.state().last_seq
    }

    /// The last committed timestamp (Unix ms).
    pub fn last_ts(&self) -> i64 {
        self.state().last_ts
    }

    /// The language of the last committed line, if any.
    pub fn last_lang(&self) -> Option<String> {
        self.state().last_lang.clone()
    }

    /// The current partial generation, noted when a final arrives.
    pub fn partial_gen(&self) -> u64 {
        self.state().partial_gen
    }

    /// Replaces the line in progress. Empty text clears it.
    pub fn set_partial(&self, text: &str) {
        let frame = if text.is_empty() {
            Frame::from_static(EMPTY_PARTIAL)
        } else {
            ServerMsg::Partial { text: text.into() }.to_frame()
        };
        let mut st = self.state();
        st.partial_gen += 1;
        st.partial_empty = text.is_empty();
        self.stats.partial_updates.fetch_add(1, Ordering::Release);
        self.partial.send_replace(frame);
        drop(st);
        self.stats.partials.fetch_add(1, Ordering::Relaxed);
    }

    /// Clears the line in progress if it is still the one of partial generation `gen` (its
    /// publisher left); whether it was cleared.
    pub fn clear_partial_if(&self, gen: u64) -> bool {
        let mut st = self.state();
        if st.partial_gen != gen || st.partial_empty {
            return false;
        }
        st.partial_gen += 1;
        st.partial_empty = true;
        self.stats.partial_updates.fetch_add(1, Ordering::Release);
        self.partial.send_replace(Frame::from_static(EMPTY_PARTIAL));
        true
    }

    /// Makes a durable event visible: history, then fan-out. Called by the store writer only,
    /// in seq order. `partial_gen` is the partial generation seen when a final arrived: if no
    /// partial came since, the partial it completes is cleared.
    pub fn commit(&self, record: &Record, partial_gen: Option<u64>) {
        let committed = record.committed();
        let mut st = self.state();
        debug_assert_eq!(record.seq, st.last_seq + 1, "commits must be in seq order");
        st.last_seq = record.seq;
        st.last_ts = st.last_ts.max(record.ts);
        if record.kind == Kind::Line {
            st.last_lang = Some(record.lang.clone());
            self.stats.lines.fetch_add(1, Ordering::Relaxed);
            self.stats.last_line_ts.store(record.ts, Ordering::Relaxed);
            self.stats.line_rate.record(record.ts);
            if record.expected_lang.is_some() {
                self.stats.lang_mismatches.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .last_mismatch_ts
                    .store(record.ts, Ordering::Relaxed);
            }
            if self.info.lang != "auto" {
                self.booth.observe_line(
                    &record.lang,
                    record.expected_lang.is_some(),
                    self.audience(),
                );
            }
        } else if record.kind == Kind::Edit {
            self.stats.edits.fetch_add(1, Ordering::Relaxed);
        }
        if st.history.len() == self.history_cap {
            st.history.pop_front();
        }
        st.history.push_back(committed.clone());
        // No receivers is fine: nobody is listening.
        let _ = self.events.send(committed);
        // After the send: a partial or status pass in progress stops for it.
        self.fanout.line_committed(record.seq);
        if partial_gen == Some(st.partial_gen) && !st.partial_empty {
            // Cleared after the line is sent, so a listener never sees the partial vanish
            // before the line that completes it appears (sessions drain ready events before
            // sending a partial).
            st.partial_empty = true;
            self.stats.partial_updates.fetch_add(1, Ordering::Release);
            self.partial.send_replace(Frame::from_static(EMPTY_PARTIAL));
        }
    }

    /// Joins the channel: a receiver positioned right after `last_seq`, and what to send
    /// first: every event after `since`, or without `since` the last `history_on_join` lines.
    /// A `since` beyond the last seq (the store was wiped) is a reset: the listener gets the
    /// fresh-join history and `reset` tells it to drop what it shows.
    pub fn subscribe(&self, since: Option<u64>, history_on_join: usize) -> Subscription {
        let st = self.state();
        let events = self.events.subscribe();
        let partial = self.partial.subscribe();
        let status = self.status.subscribe();
        let last_seq = st.last_seq;
        let reset = since.is_some_and(|n| n > last_seq);
        let backlog = match since {
            Some(n) if !reset => history_after(&st.history, n, last_seq),
            _ => last_lines(&st.history, history_on_join),
        };
        drop(st);
        Subscription {
            events,
            partial,
            status,
            last_seq,
            backlog,
            reset,
        }
    }

    /// The direct fan-out of this channel.
    pub fn fanout(&self) -> &std::sync::Arc<Fanout> {
        &self.fanout
    }

    /// Fresh receivers of events, partials and status for the fan-out task.
    pub fn fanout_feeds(&self) -> Feeds {
        // Subscribed under the state lock, which `commit` holds while it sends: every seq up
        // to `start_seq` was sent before this receiver existed, every later one reaches it.
        let st = self.state();
        let events = self.events.subscribe();
        let start_seq = st.last_seq;
        drop(st);
        Feeds {
            start_seq,
            events,
            partial: self.partial.subscribe(),
            status: self.status.subscribe(),
            frames_out: self.stats.frames_out.clone(),
            partial_updates: self.stats.partial_updates.clone(),
            partials_coalesced: self.stats.partials_coalesced.clone(),
            metrics: None,
            parking: None,
            stop: Some(Box::pin(self.life.listeners_stopped())),
        }
    }

    /// Events after `seq` from memory, if memory still holds all of them (for a lagged listener).
    pub fn recent_after(&self, seq: u64) -> Option<Vec<Committed>> {
        let st = self.state();
        match history_after(&st.history, seq, st.last_seq) {
            Backlog::Memory(v) => Some(v),
            Backlog::Store { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
