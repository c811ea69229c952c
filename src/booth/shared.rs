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
    /// Makes publisher ids start at `first`, so ids are unique across the nodes of a cluster.
    pub fn start_ids_at(&self, first: u64) {
        self.next_id.store(first, Ordering::Relaxed);
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
}
