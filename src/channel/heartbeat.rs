//! The heartbeat of a quiet channel: when nothing was sent to its listeners for a while, the
//! status frame goes out again, so a listener can tell a quiet channel from a dead connection
//! (a phone whose Wi-Fi dropped sees no close and no error, only silence).
//!
//! It costs one watch-slot update per quiet channel every few seconds: a copy of the frame
//! already serialised (a new frame, so the fan-out does not take it for one it wrote),
//! fanned out like any status, coalesced for a listener that is behind.

use std::sync::atomic::Ordering;

use super::Channel;
use crate::protocol::{Frame, Status};

/// Status ticks with nothing sent after which the status is sent again. With the ticker's
/// 2 s ([`crate::hub::STATUS_INTERVAL`]) a quiet channel beats every 4 s, and a listener
/// never waits more than 6 s for a frame (docs/protocol.md#heartbeat).
pub const QUIET_TICKS: u32 = 2;

/// What a channel last sent, as seen at the last tick, and for how many ticks it stayed so.
#[derive(Debug, Default)]
pub(super) struct Beat {
    mark: Option<Mark>,
    quiet: u32,
}

/// Everything that changes when the channel sends a frame (other than a heartbeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    last_seq: u64,
    partial_updates: u64,
    status: Status,
}

impl Channel {
    /// Sends the status frame again if nothing was sent for [`QUIET_TICKS`] ticks. Called by
    /// the status ticker after [`refresh_status`](Channel::refresh_status).
    pub fn beat_if_quiet(&self) {
        let partial_updates = self.stats.partial_updates.load(Ordering::Acquire);
        let mut st = self.state();
        let mark = Mark {
            last_seq: st.last_seq,
            partial_updates,
            status: st.last_status,
        };
        if st.beat.mark != Some(mark) {
            st.beat = Beat {
                mark: Some(mark),
                quiet: 0,
            };
            return;
        }
        st.beat.quiet += 1;
        if st.beat.quiet < QUIET_TICKS {
            return;
        }
        st.beat.quiet = 0;
        // A new frame with the same text: the fan-out skips a socket that has this very
        // frame (a pass that stopped for a line), not one that has the same words.
        let frame = Frame::from(self.status.borrow().as_str().to_owned());
        self.status.send_replace(frame);
    }
}

#[cfg(test)]
mod tests {
    use crate::channel::{Channel, ChannelInfo};

    #[test]
    fn only_a_quiet_channel_beats() {
        let ch = Channel::new(
            ChannelInfo {
                event: "e".into(),
                id: "en".into(),
                lang: "en".into(),
                label: "English".into(),
                source: None,
            },
            0,
            0,
            Vec::new(),
            4,
            8,
        );
        let mut rx = ch.status_receiver();
        rx.borrow_and_update();
        let mut beats = Vec::new();
        for tick in 0..9 {
            if tick == 4 {
                // A partial is activity: the count starts over.
                ch.set_partial("Good morning");
            }
            ch.beat_if_quiet();
            if rx.has_changed().unwrap() {
                assert!(rx.borrow_and_update().starts_with(r#"{"type":"status""#));
                beats.push(tick);
            }
        }
        // Tick 0 notes the mark; every second quiet tick beats; the partial before tick 4
        // starts the count over.
        assert_eq!(beats, [2, 6, 8]);
    }
}
