//! Who is connected to a channel: listener and publisher counts, held by a [`CountGuard`]
//! for as long as the connection lives (a publisher's also joins and leaves the booth), and
//! the status frame derived from them.

use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::Channel;
use crate::protocol::{Frame, ServerMsg, Status};

impl Channel {
    /// Listener joined; returns a guard that counts it until dropped.
    pub fn listener_guard(self: &std::sync::Arc<Self>) -> CountGuard {
        self.listeners.fetch_add(1, Ordering::Relaxed);
        CountGuard {
            channel: self.clone(),
            publisher: None,
        }
    }

    /// Publisher joined; returns a guard that counts it until dropped. Publishing changes the
    /// on-air state at once.
    pub fn publisher_guard(self: &std::sync::Arc<Self>) -> CountGuard {
        self.publisher_join("publisher").0
    }

    /// A booth publisher named `name` joined: counted until the guard drops, on air if the
    /// channel was idle. The handover (if any) must be stored by the caller.
    pub fn publisher_join(
        self: &std::sync::Arc<Self>,
        name: &str,
    ) -> (CountGuard, Option<crate::booth::Handover>) {
        self.publishers.fetch_add(1, Ordering::Relaxed);
        let (id, handover) = self.booth.join(name, self.audience());
        self.refresh_status();
        (
            CountGuard {
                channel: self.clone(),
                publisher: Some(id),
            },
            handover,
        )
    }

    /// Listeners connected to this node.
    pub fn listeners(&self) -> u64 {
        self.listeners.load(Ordering::Relaxed)
    }

    /// Listeners of the channel on every node: this node's plus, in cluster mode, what the
    /// other nodes last reported. What status frames, booths and the dashboard show.
    pub fn audience(&self) -> u64 {
        self.listeners()
            .saturating_add(self.remote_listeners.load(Ordering::Relaxed))
    }

    /// Cluster mode: sets the other nodes' listener count; whether it changed.
    pub fn set_remote_listeners(&self, n: u64) -> bool {
        self.remote_listeners.swap(n, Ordering::Relaxed) != n
    }

    pub fn publishers(&self) -> u64 {
        self.publishers.load(Ordering::Relaxed)
    }

    /// The current status.
    pub fn status(&self) -> Status {
        Status {
            listeners: self.audience(),
            publishers: self.publishers(),
            on_air: self.booth.any_on_air(),
            interrupted: self.booth.interrupted(),
            state: self.life.state(),
            rev: self.life.event().rev(),
            audio: self.audio().live(),
        }
    }

    /// Publishes a status frame if it changed since the last one. Called on on-air changes
    /// and by the periodic status ticker, so a thousand joins make one message, not a thousand.
    pub fn refresh_status(&self) {
        self.booth.refresh(self.audience());
        let now = self.status();
        let mut st = self.state();
        if st.last_status != now {
            st.last_status = now;
            self.status.send_replace(ServerMsg::Status(now).to_frame());
        }
    }

    /// A receiver of status frames (publishers watch it without subscribing to events).
    pub fn status_receiver(&self) -> watch::Receiver<Frame> {
        self.status.subscribe()
    }
}

/// Counts a connection on a channel for as long as it lives.
#[derive(Debug)]
pub struct CountGuard {
    channel: std::sync::Arc<Channel>,
    /// The booth id of a publisher; `None` for a listener.
    publisher: Option<u64>,
}

impl CountGuard {
    /// The publisher's booth id (0 for a listener).
    pub fn id(&self) -> u64 {
        self.publisher.unwrap_or(0)
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        if let Some(id) = self.publisher {
            self.channel.publishers.fetch_sub(1, Ordering::Relaxed);
            self.channel.booth.leave(id, self.channel.audience());
            self.channel.refresh_status();
        } else {
            self.channel.listeners.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
