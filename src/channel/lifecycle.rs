//! What organisers decide about a channel while people are connected: its event's state and
//! definition revision (one [`EventSignal`] shared by the event's channels), and whether the
//! channel itself was deleted. Sessions wait on [`Lifecycle::publisher_stop`] or
//! [`Lifecycle::listener_stop`] beside their socket and close with the [`Stop`]'s code.
//!
//! Nothing here is on the per-line path: a publisher's admission reads the state once per
//! message (a `watch` borrow), and sessions only wake when an organiser acts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::protocol::{
    EventState, Refusal, CLOSE_CHANNEL_CHANGED, CLOSE_CHANNEL_DELETED, CLOSE_EVENT_OVER,
    CLOSE_REVOKED,
};

/// An event's state and definition revision, shared by all its channels.
#[derive(Debug)]
pub struct EventSignal {
    state: watch::Sender<EventState>,
    rev: AtomicU64,
}

impl EventSignal {
    pub fn new(state: EventState, rev: u64) -> Arc<EventSignal> {
        Arc::new(EventSignal {
            state: watch::Sender::new(state),
            rev: AtomicU64::new(rev),
        })
    }

    /// The event's state now.
    pub fn state(&self) -> EventState {
        *self.state.borrow()
    }

    /// Sets the state; whether it changed.
    pub fn set_state(&self, s: EventState) -> bool {
        self.state.send_if_modified(|cur| {
            let changed = *cur != s;
            *cur = s;
            changed
        })
    }

    /// The revision of the event's definition (0: declared in the config file).
    pub fn rev(&self) -> u64 {
        self.rev.load(Ordering::Relaxed)
    }

    /// Sets the revision; whether it changed.
    pub fn set_rev(&self, rev: u64) -> bool {
        self.rev.swap(rev, Ordering::Relaxed) != rev
    }
}

/// Why an organiser's decision ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The publisher's credential was revoked.
    Revoked,
    /// The channel was deleted.
    ChannelDeleted,
    /// The channel was changed (a new one took its place): reconnect.
    ChannelChanged,
    /// The event ended (publishers), or was archived or deleted (everyone).
    EventOver,
}

impl Stop {
    /// The close code and the reason people read (docs/protocol.md#close-codes).
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Stop::Revoked => (
                CLOSE_REVOKED,
                "your publish credential was revoked by the organiser",
            ),
            Stop::ChannelDeleted => (
                CLOSE_CHANNEL_DELETED,
                "this channel was deleted by the organiser",
            ),
            Stop::EventOver => (CLOSE_EVENT_OVER, "this event is over"),
            Stop::ChannelChanged => (
                CLOSE_CHANNEL_CHANGED,
                "the organiser changed this channel; reconnect",
            ),
        }
    }
}

/// A channel's part in its event's life.
#[derive(Debug)]
pub struct Lifecycle {
    event: Arc<EventSignal>,
    gone: CancellationToken,
    /// Set before `gone` is cancelled when a changed channel replaced this one.
    replaced: AtomicBool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new(EventSignal::new(EventState::Live, 0))
    }
}

impl Lifecycle {
    pub fn new(event: Arc<EventSignal>) -> Lifecycle {
        Lifecycle {
            event,
            gone: CancellationToken::new(),
            replaced: AtomicBool::new(false),
        }
    }

    /// The event's signal (shared with the event's other channels).
    pub fn event(&self) -> &Arc<EventSignal> {
        &self.event
    }

    /// The event's state now.
    pub fn state(&self) -> EventState {
        self.event.state()
    }

    /// Why a line is refused now (`None`: the event is live).
    pub fn refusal(&self) -> Option<Refusal> {
        self.state().refusal()
    }

    /// Marks the channel deleted: every session on it ends.
    pub fn delete(&self) {
        self.gone.cancel();
    }

    /// Marks the channel replaced by a changed one: every session on it ends (and may
    /// reconnect to the new one).
    pub fn replace(&self) {
        self.replaced.store(true, Ordering::Relaxed);
        self.gone.cancel();
    }

    /// The refusal of a line for a channel that left the registry (the writer and the
    /// cluster's sequencer store nothing for it: its replacement numbers the lines now).
    pub fn gone_refusal() -> Refusal {
        Refusal::new(
            crate::protocol::ErrorCode::ChannelChanged,
            "the organiser changed or deleted this channel: nothing was stored; send it again",
        )
    }

    /// Whether the channel left the registry (deleted or replaced).
    pub fn is_deleted(&self) -> bool {
        self.gone.is_cancelled()
    }

    fn gone_why(&self) -> Stop {
        if self.replaced.load(Ordering::Relaxed) {
            Stop::ChannelChanged
        } else {
            Stop::ChannelDeleted
        }
    }

    /// Resolves when a publisher must stop: its credential (`revoked`, if it has one) is
    /// revoked, the channel is deleted, or the event is no longer live.
    pub async fn publisher_stop(&self, revoked: Option<CancellationToken>) -> Stop {
        let mut state = self.event.state.subscribe();
        let revoked = async {
            match revoked {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = revoked => Stop::Revoked,
            _ = self.gone.cancelled() => self.gone_why(),
            // Moved back to scheduled (a later start), lines are refused one by one; the
            // socket stays for when it starts.
            _ = state.wait_for(|s| s.is_over()) => Stop::EventOver,
        }
    }

    /// Resolves when a listener must stop: the channel is deleted or the event archived.
    pub async fn listener_stop(&self) -> Stop {
        let mut state = self.event.state.subscribe();
        tokio::select! {
            _ = self.gone.cancelled() => self.gone_why(),
            _ = state.wait_for(|s| *s == EventState::Archived) => Stop::EventOver,
        }
    }
}

impl Lifecycle {
    /// Resolves when every listener must stop, as [`Self::listener_stop`], owning what it
    /// waits on (for the fan-out task, which hands its parked listeners back then).
    pub fn listeners_stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (event, gone) = (self.event.clone(), self.gone.clone());
        async move {
            let mut state = event.state.subscribe();
            tokio::select! {
                _ = gone.cancelled() => {}
                _ = state.wait_for(|s| *s == EventState::Archived) => {}
            }
        }
    }
}

impl super::Channel {
    /// Drops the history kept in memory from before `before` (Unix ms; all of it when
    /// `None`): that part of the transcript was deleted from the store.
    pub fn forget(&self, before: Option<i64>) {
        self.state()
            .history
            .retain(|c| before.is_some_and(|b| c.ts >= b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publishers_stop_for_each_reason() {
        let life = Lifecycle::default();
        let token = CancellationToken::new();
        token.cancel();
        assert_eq!(life.publisher_stop(Some(token)).await, Stop::Revoked);
        life.event().set_state(EventState::Ended);
        assert_eq!(life.publisher_stop(None).await, Stop::EventOver);
        let life = Lifecycle::default();
        life.delete();
        assert_eq!(life.publisher_stop(None).await, Stop::ChannelDeleted);
        assert_eq!(life.listener_stop().await, Stop::ChannelDeleted);
    }
}
