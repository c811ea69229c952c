//! What a channel is ([`ChannelInfo`]: event, id, language, label, source, and the `hello` it
//! starts every connection with) and what it counts ([`ChannelStats`], for the dashboard and
//! `/metrics`).

use std::sync::atomic::{AtomicI64, AtomicU64};

use super::LineRate;
use crate::protocol::{Frame, ServerMsg};

/// Static description of a channel, from config.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    pub event: String,
    pub id: String,
    /// Declared language tag, or `auto`.
    pub lang: String,
    pub label: String,
    pub source: Option<String>,
}

impl ChannelInfo {
    /// The `hello` frame a connection to this channel starts with.
    pub fn hello(&self, role: &str, seq: u64, reset: bool, publisher_id: Option<u64>) -> Frame {
        ServerMsg::Hello {
            event: self.event.as_str().into(),
            channel: self.id.as_str().into(),
            lang: self.lang.as_str().into(),
            label: self.label.as_str().into(),
            role: role.into(),
            seq,
            reset,
            publisher_id,
            source: self.source.as_deref().map(Into::into),
        }
        .to_frame()
    }
}

/// Counters kept per channel for the dashboard and `/metrics`.
#[derive(Debug, Default)]
pub struct ChannelStats {
    pub lines: AtomicU64,
    pub edits: AtomicU64,
    pub lang_mismatches: AtomicU64,
    pub partials: AtomicU64,
    /// Frames sent to listeners (shared with the direct fan-out task).
    pub frames_out: std::sync::Arc<AtomicU64>,
    pub behind_closes: AtomicU64,
    pub catch_ups: AtomicU64,
    /// Changes of the partial slot (partials and clears), bumped before each change is
    /// visible: a listener compares it with what it sends to count coalesced partials.
    pub partial_updates: std::sync::Arc<AtomicU64>,
    /// Partial updates listeners never received because a newer one replaced them first.
    pub partials_coalesced: std::sync::Arc<AtomicU64>,
    /// Unix ms of the last committed line (0 = never).
    pub last_line_ts: AtomicI64,
    /// Lines committed over the last minute (dashboard "lines per minute").
    pub line_rate: LineRate,
    /// Unix ms of the last line detected as another language (0 = never).
    pub last_mismatch_ts: AtomicI64,
}
