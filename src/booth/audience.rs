//! What the audience tells the booth: listener feedback over a sliding minute (this node's
//! and, in a cluster, the others'), and the language alert raised when lines keep arriving in
//! another language than the channel's.

use super::{Booth, State};
use crate::protocol::{FeedbackCounts, FeedbackKind};

/// Length of the audience feedback window.
pub const FEEDBACK_WINDOW_SECS: u64 = 60;
/// Consecutive confidently-mismatched lines that raise the language alert.
pub const MISMATCH_STREAK_ALERT: u32 = 3;

impl Booth {
    /// Records listener feedback.
    pub fn feedback(&self, kind: FeedbackKind) {
        let now = self.now_sec();
        let mut st = self.state();
        let slot = &mut st.feedback[(now % FEEDBACK_WINDOW_SECS) as usize];
        if slot.0 != now {
            *slot = (now, [0; 3]);
        }
        slot.1[kind as usize] += 1;
    }

    /// Feedback counts over the last minute, from every node.
    pub fn feedback_counts(&self) -> FeedbackCounts {
        total(&self.state(), self.now_sec())
    }

    /// Feedback counts over the last minute from this node's listeners only (what a cluster
    /// node reports to the others).
    pub fn local_feedback_counts(&self) -> FeedbackCounts {
        counts(&self.state(), self.now_sec())
    }

    /// Cluster mode: sets the other nodes' feedback over the last minute; whether it changed.
    pub fn set_remote_feedback(&self, c: FeedbackCounts) -> bool {
        let mut st = self.state();
        let changed = st.remote_feedback != c;
        st.remote_feedback = c;
        changed
    }

    /// Updates the mismatch streak with a committed line; returns true if the alert changed.
    pub fn observe_line(&self, detected: &str, mismatched: bool, listeners: u64) -> bool {
        let mut st = self.state();
        let before = st.language_alert.clone();
        if mismatched {
            st.mismatch_streak += 1;
            if st.mismatch_streak >= MISMATCH_STREAK_ALERT {
                st.language_alert = Some(detected.to_string());
            }
        } else {
            st.mismatch_streak = 0;
            st.language_alert = None;
        }
        let changed = before != st.language_alert;
        if changed {
            if let Some(lang) = &st.language_alert {
                tracing::warn!(detected = %lang, "language alert raised: lines keep arriving in another language");
            }
            self.publish_frame(&st, listeners);
        }
        changed
    }

    /// The raised language alert (the detected language), if any.
    pub fn language_alert(&self) -> Option<String> {
        self.state().language_alert.clone()
    }
}

/// This node's feedback plus the other nodes'.
pub(super) fn total(st: &State, now: u64) -> FeedbackCounts {
    let local = counts(st, now);
    let remote = st.remote_feedback;
    FeedbackCounts {
        slower: local.slower.saturating_add(remote.slower),
        unclear: local.unclear.saturating_add(remote.unclear),
        lost: local.lost.saturating_add(remote.lost),
    }
}

fn counts(st: &State, now: u64) -> FeedbackCounts {
    let mut c = [0u32; 3];
    for (sec, n) in &st.feedback {
        if *sec + FEEDBACK_WINDOW_SECS > now && *sec <= now {
            for i in 0..3 {
                c[i] += n[i];
            }
        }
    }
    FeedbackCounts {
        slower: c[0],
        unclear: c[1],
        lost: c[2],
    }
}
