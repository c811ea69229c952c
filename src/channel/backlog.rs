//! What a listener is sent from the channel's in-memory history ring: everything after its
//! `since`, or on a fresh join the last lines (with their edits); when the ring no longer
//! reaches back far enough, the range the store must supply.

use std::collections::VecDeque;

use crate::record::{Committed, Kind};

/// What a joining listener must be sent before live events.
#[derive(Debug)]
pub enum Backlog {
    /// Everything needed is in memory.
    Memory(Vec<Committed>),
    /// Events with `after < seq <= upto` must be read from the store.
    Store { after: u64, upto: u64 },
}

/// The events after `after` (up to `last_seq`) if the ring still holds them all, else the
/// range to read from the store.
pub(super) fn history_after(history: &VecDeque<Committed>, after: u64, last_seq: u64) -> Backlog {
    if after >= last_seq {
        return Backlog::Memory(Vec::new());
    }
    match history.front() {
        Some(first) if first.seq <= after + 1 => Backlog::Memory(
            history
                .iter()
                .skip((after + 1 - first.seq) as usize)
                .cloned()
                .collect(),
        ),
        _ => Backlog::Store {
            after,
            upto: last_seq,
        },
    }
}

/// The last `n` lines in memory and every edit after the first of them.
pub(super) fn last_lines(history: &VecDeque<Committed>, n: usize) -> Backlog {
    let mut lines = 0;
    let mut start = history.len();
    for (i, c) in history.iter().enumerate().rev() {
        if lines == n {
            break;
        }
        if c.kind == Kind::Line {
            lines += 1;
        }
        start = i;
    }
    Backlog::Memory(history.iter().skip(start).cloned().collect())
}
