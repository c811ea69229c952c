//! The interpreters' booth on one channel: which publisher is on air, handover between booth
//! partners, and (in `booth/audience.rs`) audience feedback and the language alert.
//!
//! Rules (documented for users in docs/interpreting.md):
//! - Several publishers may connect; exactly one is on air. The first to connect to an idle
//!   channel comes on air; the others are on standby and their partials, finals and edits of
//!   others' lines are refused with `not_on_air`.
//! - A standby partner sends `handover_request`; the on-air partner sends `handover_accept`
//!   and the requester is on air. A standby may also `take` the channel when it is off air, or
//!   when the on-air partner has been silent for `takeover_after_secs`.
//! - When the on-air publisher disconnects (or sends `release`) the channel goes off air; the
//!   next publisher to `take` it (or simply to publish) comes on air.
//! - Each change of on-air publisher between two people is a [`Handover`] that the caller
//!   stores as a channel event with its own seq.
//!
//! The booth mutex is never held across an `.await`; state changes publish one shared frame
//! (a [`BoothMsg`]). In cluster mode the on-air state is decided cluster-wide and mirrored
//! here: see [`SharedBooth`] (`booth/shared.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
// The runtime's clock (paused and advanced in tests of the silence rule).
use tokio::time::Instant;

pub use crate::protocol::FeedbackCounts;
use crate::protocol::{BoothMember, BoothMsg, ErrorCode, Frame, MsgType, Refusal, MAX_NAME_CHARS};

mod audience;
mod shared;
use audience::total;
pub use audience::{FEEDBACK_WINDOW_SECS, MISMATCH_STREAK_ALERT};
pub use shared::{SharedBooth, Takeover};

/// A change of on-air publisher, stored as a channel event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Handover {
    /// Who was on air (None: the channel was idle).
    pub from: Option<String>,
    /// Who is on air now.
    pub to: Option<String>,
    /// `request`, `timeout`, `take` (after the previous publisher left or released).
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Member {
    id: u64,
    name: String,
}

#[derive(Debug)]
struct OnAir {
    id: u64,
    name: String,
    last_active: Instant,
}

#[derive(Debug, Default)]
struct State {
    members: Vec<Member>,
    on_air: Option<OnAir>,
    /// A standby partner asking to take over.
    request: Option<u64>,
    /// Who was last on air (for recording a handover after a disconnect).
    last_on_air: Option<String>,
    /// Per-second buckets `(second, counts by kind)`, indexed by second modulo the window.
    feedback: Vec<(u64, [u32; 3])>,
    mismatch_streak: u32,
    /// Detected language while the language alert is raised.
    language_alert: Option<String>,
    /// Cluster mode: the on-air publisher and the requester when they are connected to
    /// another node (see [`Booth::mirror`]).
    remote: Vec<Member>,
    /// Cluster mode: the feedback the other nodes' listeners gave over the last minute.
    remote_feedback: FeedbackCounts,
    /// Cluster mode: this node is cut off from the cluster (nobody is on air through it).
    interrupted: bool,
}

/// The booth of one channel.
#[derive(Debug)]
pub struct Booth {
    state: Mutex<State>,
    takeover_after: Option<Duration>,
    frame: watch::Sender<Frame>,
    next_id: AtomicU64,
    epoch: Instant,
    /// Cluster mode: the air is decided by the cluster and mirrored here (see [`SharedBooth`]);
    /// joining and leaving never change it locally.
    shared: std::sync::atomic::AtomicBool,
}

/// What the booth looks like, as publishers and the dashboard see it.
#[derive(Debug, Clone, Serialize)]
pub struct BoothView {
    pub on_air: Option<(u64, String)>,
    pub publishers: usize,
    pub request: Option<u64>,
    pub feedback: FeedbackCounts,
    pub language_alert: Option<String>,
}

impl Booth {
    pub fn new(takeover_after: Option<Duration>) -> Booth {
        let state = State {
            feedback: vec![(0, [0; 3]); FEEDBACK_WINDOW_SECS as usize],
            ..State::default()
        };
        let (frame, _) = watch::channel(booth_frame(&state, 0, 0));
        Booth {
            state: Mutex::new(state),
            takeover_after,
            frame,
            next_id: AtomicU64::new(1),
            epoch: Instant::now(),
            shared: Default::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_sec(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Publisher-facing booth frames (on air, partners, request, feedback, alert).
    pub fn subscribe(&self) -> watch::Receiver<Frame> {
        self.frame.subscribe()
    }

    /// A publisher connects. It comes on air if the channel is idle; the returned handover
    /// (if any) must be stored.
    pub fn join(&self, name: &str, listeners: u64) -> (u64, Option<Handover>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state();
        st.members.push(Member {
            id,
            name: name.to_string(),
        });
        let handover = if st.on_air.is_none() && !self.is_shared() {
            self.put_on_air(&mut st, id, "take")
        } else {
            None
        };
        self.publish_frame(&st, listeners);
        (id, handover)
    }

    /// A publisher disconnects; if it was on air the channel goes off air.
    pub fn leave(&self, id: u64, listeners: u64) {
        let mut st = self.state();
        st.members.retain(|m| m.id != id);
        if st.request == Some(id) {
            st.request = None;
        }
        if st.on_air.as_ref().is_some_and(|o| o.id == id) && !self.is_shared() {
            st.on_air = None;
        }
        self.publish_frame(&st, listeners);
    }

    /// Whether publisher `id` is on air.
    pub fn is_on_air(&self, id: u64) -> bool {
        self.state().on_air.as_ref().is_some_and(|o| o.id == id)
    }

    /// Whether any publisher is on air.
    pub fn any_on_air(&self) -> bool {
        self.state().on_air.is_some()
    }

    /// The on-air publisher's name.
    pub fn on_air_name(&self) -> Option<String> {
        self.state().on_air.as_ref().map(|o| o.name.clone())
    }

    /// Lets `id` speak (a partial, final, or edit as on air): on air already, or the channel
    /// is idle (it then takes the air). Marks activity for the silence rule.
    pub fn claim_air(&self, id: u64, listeners: u64) -> Result<Option<Handover>, Refusal> {
        let mut st = self.state();
        match &mut st.on_air {
            Some(o) if o.id == id => {
                o.last_active = Instant::now();
                Ok(None)
            }
            Some(o) => Err(Refusal::new(
                ErrorCode::NotOnAir,
                format!(
                    "{} is on air; you are on standby (send handover_request, or take when the channel is free)",
                    o.name
                ),
            )),
            None => {
                let h = self.put_on_air(&mut st, id, "take");
                self.publish_frame(&st, listeners);
                Ok(h)
            }
        }
    }

    /// `take`: come on air if the channel is idle or its on-air publisher has been silent
    /// for `takeover_after`.
    pub fn take(&self, id: u64, listeners: u64) -> Result<Option<Handover>, Refusal> {
        let mut st = self.state();
        let reason = match &st.on_air {
            None => "take",
            Some(o) if o.id == id => return Ok(None),
            Some(o) => match self.takeover_after {
                Some(after) if o.last_active.elapsed() >= after => "timeout",
                Some(after) => {
                    return Err(Refusal::new(
                        ErrorCode::HandoverRefused,
                        format!(
                            "{} is on air and spoke {}s ago; take over is allowed after {}s of silence, or ask with handover_request",
                            o.name,
                            o.last_active.elapsed().as_secs(),
                            after.as_secs()
                        ),
                    ))
                }
                None => {
                    return Err(Refusal::new(
                        ErrorCode::HandoverRefused,
                        format!("{} is on air; ask with handover_request", o.name),
                    ))
                }
            },
        };
        let h = self.put_on_air(&mut st, id, reason);
        self.publish_frame(&st, listeners);
        Ok(h)
    }

    /// `handover_request` from a standby partner.
    pub fn request(&self, id: u64, listeners: u64) -> Result<(), Refusal> {
        let mut st = self.state();
        match &st.on_air {
            Some(o) if o.id == id => Err(Refusal::new(
                ErrorCode::HandoverRefused,
                "you are already on air",
            )),
            Some(_) => {
                st.request = Some(id);
                self.publish_frame(&st, listeners);
                Ok(())
            }
            None => Err(Refusal::new(
                ErrorCode::HandoverRefused,
                "nobody is on air: send take",
            )),
        }
    }

    /// `handover_accept` from the on-air publisher: the requester is on air.
    pub fn accept(&self, id: u64, listeners: u64) -> Result<Option<Handover>, Refusal> {
        let mut st = self.state();
        if st.on_air.as_ref().is_none_or(|o| o.id != id) {
            return Err(Refusal::new(
                ErrorCode::NotOnAir,
                "only the on-air publisher can accept a handover",
            ));
        }
        let Some(to) = st.request.take() else {
            return Err(Refusal::new(
                ErrorCode::HandoverRefused,
                "no handover was requested",
            ));
        };
        let h = self.put_on_air(&mut st, to, "request");
        self.publish_frame(&st, listeners);
        Ok(h)
    }

    /// `release` from the on-air publisher: the channel goes off air.
    pub fn release(&self, id: u64, listeners: u64) -> Result<(), Refusal> {
        let mut st = self.state();
        if st.on_air.as_ref().is_none_or(|o| o.id != id) {
            return Err(Refusal::new(ErrorCode::NotOnAir, "you are not on air"));
        }
        st.on_air = None;
        self.publish_frame(&st, listeners);
        Ok(())
    }

    fn put_on_air(&self, st: &mut State, id: u64, reason: &str) -> Option<Handover> {
        let name = st
            .members
            .iter()
            .chain(&st.remote)
            .find(|m| m.id == id)?
            .name
            .clone();
        let from = st
            .on_air
            .as_ref()
            .map(|o| o.name.clone())
            .or_else(|| st.last_on_air.clone());
        st.on_air = Some(OnAir {
            id,
            name: name.clone(),
            last_active: Instant::now(),
        });
        if st.request == Some(id) {
            st.request = None;
        }
        st.last_on_air = Some(name.clone());
        // The first publisher ever, or the same person coming back, is not a handover.
        match from {
            Some(from) if from != name => Some(Handover {
                from: Some(from),
                to: Some(name),
                reason: reason.to_string(),
            }),
            _ => None,
        }
    }

    /// A snapshot for the dashboard.
    pub fn view(&self) -> BoothView {
        let st = self.state();
        BoothView {
            on_air: st.on_air.as_ref().map(|o| (o.id, o.name.clone())),
            publishers: st.members.len(),
            request: st.request,
            feedback: total(&st, self.now_sec()),
            language_alert: st.language_alert.clone(),
        }
    }

    /// Re-publishes the booth frame if anything changed (called by the status ticker for
    /// listener counts and the feedback window).
    pub fn refresh(&self, listeners: u64) {
        self.publish_frame(&self.state(), listeners);
    }

    /// Publishes the booth frame to the publishers if it changed.
    fn publish_frame(&self, st: &State, listeners: u64) {
        let frame = booth_frame(st, self.now_sec(), listeners);
        self.frame.send_if_modified(|current| {
            let changed = current.as_str() != frame.as_str();
            if changed {
                *current = frame;
            }
            changed
        });
    }
}

/// The `booth` message for the state at second `now` of the feedback window.
fn booth_frame(st: &State, now: u64, listeners: u64) -> Frame {
    fn member(m: &Member) -> BoothMember<'_> {
        BoothMember {
            id: m.id,
            name: m.name.as_str().into(),
        }
    }
    let partners = || st.members.iter().chain(&st.remote);
    BoothMsg {
        feedback: total(st, now),
        language_alert: st.language_alert.as_deref().map(Into::into),
        listeners,
        on_air: st.on_air.as_ref().map(|o| BoothMember {
            id: o.id,
            name: o.name.as_str().into(),
        }),
        publishers: partners().map(member).collect(),
        request: st
            .request
            .and_then(|id| partners().find(|m| m.id == id).map(member)),
        kind: MsgType::Booth,
    }
    .to_frame()
}

/// Validates a publisher display name (`?name=`).
pub fn check_name(name: &str) -> Result<(), Refusal> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Refusal::new(
            ErrorCode::BadMessage,
            format!("name must be 1-{MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
