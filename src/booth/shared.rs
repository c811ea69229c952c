//! Cluster mode: the part of a booth every node shares.
//!
//! With `[cluster]` the on-air publisher and the pending handover request are decided
//! cluster-wide (a key-value bucket, see `crate::cluster`): each node keeps its local
//! [`Booth`] (its own publishers, the rules, feedback and alerts) and mirrors the
//! [`SharedBooth`] into it, so a publisher connected to another node can be on air or ask for
//! a handover here. Without a cluster nothing of this runs.

use std::sync::atomic::Ordering;
use tokio::time::Instant;

use super::{Booth, Member, OnAir};
use crate::protocol::{ErrorCode, Refusal};

/// How a booth publisher may come on air, as far as this node can tell (the cluster decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// Nobody is on air.
    Free,
    /// The publisher is on air already.
    Already,
    /// Someone else is on air, but the publisher may take over from them (the silence rule):
    /// their booth id.
    From(u64),
}

/// Cluster mode: the part of a booth every node shares — `(publisher id, name)` of the
/// on-air publisher and of the requester, and who was last on air (see `crate::cluster`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedBooth {
    pub on_air: Option<(u64, String)>,
    pub request: Option<(u64, String)>,
    pub last_on_air: Option<String>,
}

/// Cluster mode: the booth is decided cluster-wide; these keep the local copy in step.
impl Booth {
    /// Makes publisher ids start at `first`, so ids are unique across the nodes of a cluster,
    /// and leaves the air to the cluster: joining and leaving no longer change it here.
    pub fn start_ids_at(&self, first: u64) {
        self.next_id.store(first, Ordering::Relaxed);
        self.shared.store(true, Ordering::Relaxed);
    }

    /// Whether the air is decided by the cluster.
    pub fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    /// Sets whether this node is cut off from the cluster (shown in the status frames).
    pub fn set_interrupted(&self, cut: bool) {
        self.state().interrupted = cut;
    }

    /// Whether this node is cut off from the cluster.
    pub fn interrupted(&self) -> bool {
        self.state().interrupted
    }

    /// Whether `take` from publisher `id` may succeed, as this booth sees the air: the booth
    /// rules of [`Booth::take`], without changing anything (the cluster decides).
    pub fn may_take(&self, id: u64) -> Result<Takeover, Refusal> {
        let st = self.state();
        match &st.on_air {
            None => Ok(Takeover::Free),
            Some(o) if o.id == id => Ok(Takeover::Already),
            Some(o) => match self.takeover_after {
                Some(after) if o.last_active.elapsed() >= after => Ok(Takeover::From(o.id)),
                Some(after) => Err(Refusal::new(
                    ErrorCode::HandoverRefused,
                    format!(
                        "{} is on air and spoke {}s ago; take over is allowed after {}s of silence, or ask with handover_request",
                        o.name,
                        o.last_active.elapsed().as_secs(),
                        after.as_secs()
                    ),
                )),
                None => Err(Refusal::new(
                    ErrorCode::HandoverRefused,
                    format!("{} is on air; ask with handover_request", o.name),
                )),
            },
        }
    }

    /// Whether publisher `id` is connected to this node.
    pub fn is_member(&self, id: u64) -> bool {
        self.state().members.iter().any(|m| m.id == id)
    }

    /// The shared part of this booth.
    pub fn shared(&self) -> SharedBooth {
        let st = self.state();
        let name_of = |id: u64| {
            st.members
                .iter()
                .chain(&st.remote)
                .find(|m| m.id == id)
                .map(|m| (id, m.name.clone()))
        };
        SharedBooth {
            on_air: st.on_air.as_ref().map(|o| (o.id, o.name.clone())),
            request: st.request.and_then(name_of),
            last_on_air: st.last_on_air.clone(),
        }
    }

    /// Sets the shared part as the cluster decided it (publishers on other nodes included).
    /// Not a handover: the node that decided the change stores it.
    pub fn mirror(&self, shared: &SharedBooth, listeners: u64) {
        let mut st = self.state();
        let remote: Vec<Member> = [&shared.on_air, &shared.request]
            .into_iter()
            .flatten()
            .filter(|(id, _)| !st.members.iter().any(|m| m.id == *id))
            .map(|(id, name)| Member {
                id: *id,
                name: name.clone(),
            })
            .collect();
        st.remote = remote;
        let keep = st.on_air.as_ref().map(|o| (o.id, o.last_active));
        st.on_air = shared.on_air.as_ref().map(|(id, name)| OnAir {
            id: *id,
            name: name.clone(),
            last_active: match keep {
                Some((kept, at)) if kept == *id => at,
                _ => Instant::now(),
            },
        });
        st.request = shared.request.as_ref().map(|(id, _)| *id);
        if shared.last_on_air.is_some() {
            st.last_on_air = shared.last_on_air.clone();
        }
        self.publish_frame(&st, listeners);
    }

    /// The on-air publisher, connected to another node, was just heard (the silence rule).
    pub fn mark_active(&self) {
        if let Some(o) = &mut self.state().on_air {
            o.last_active = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_puts_a_remote_publisher_on_air_and_shared_reads_it_back() {
        let b = Booth::new(None);
        b.start_ids_at(100);
        let (anna, _) = b.join("Anna", 0);
        assert_eq!(anna, 100);
        assert!(b.is_member(anna) && !b.is_member(7));
        let remote = SharedBooth {
            on_air: Some((7, "Ben".into())),
            request: Some((anna, "Anna".into())),
            last_on_air: Some("Anna".into()),
        };
        b.mirror(&remote, 0);
        assert!(b.any_on_air() && !b.is_on_air(anna));
        assert_eq!(b.on_air_name().as_deref(), Some("Ben"));
        assert_eq!(b.shared(), remote);
        assert_eq!(
            b.view().publishers,
            1,
            "only local partners count as members"
        );
        // The remote partner is named in the booth message.
        let frame = b.subscribe().borrow().clone();
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["on_air"]["name"], "Ben");
        assert_eq!(v["request"]["id"], anna);
        assert_eq!(v["publishers"].as_array().unwrap().len(), 2);
        // Back off air, cluster-wide.
        b.mirror(&SharedBooth::default(), 0);
        assert!(!b.any_on_air());
        assert_eq!(b.shared().last_on_air.as_deref(), Some("Anna"));
    }

    #[test]
    fn a_shared_booth_leaves_the_air_to_the_cluster_and_says_who_may_take_it() {
        let b = Booth::new(None);
        b.start_ids_at(10);
        let (anna, handover) = b.join("Anna", 0);
        assert!(
            handover.is_none() && !b.any_on_air(),
            "joining does not take the air"
        );
        assert_eq!(b.may_take(anna), Ok(Takeover::Free));
        let on_air = |id: u64, name: &str| SharedBooth {
            on_air: Some((id, name.into())),
            ..SharedBooth::default()
        };
        b.mirror(&on_air(anna, "Anna"), 0);
        assert_eq!(b.may_take(anna), Ok(Takeover::Already));
        let (ben, _) = b.join("Ben", 0);
        assert_eq!(
            b.may_take(ben).unwrap_err().code,
            ErrorCode::HandoverRefused,
            "no silence rule: only by request"
        );
        b.leave(anna, 0);
        assert!(b.is_on_air(anna), "leaving does not free the air either");
        // With the silence rule, a silent partner's air may be taken over.
        let quiet = Booth::new(Some(std::time::Duration::ZERO));
        quiet.start_ids_at(10);
        let (ben, _) = quiet.join("Ben", 0);
        quiet.mirror(&on_air(7, "Cara"), 0);
        assert_eq!(quiet.may_take(ben), Ok(Takeover::From(7)));
        quiet.set_interrupted(true);
        assert!(quiet.interrupted());
    }
}
