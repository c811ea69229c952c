//! Who is on air, decided in the stream's order: the rules a node's sequencer applies to the
//! air as of the channel's last stream message, for a change of the air ([`Claim`]) or for a
//! line, partial or edit ([`may_publish`]).
//!
//! The node that publishes a message decides against the message before it, and JetStream
//! stores the message only if that is still the channel's last one (compare-and-set on the
//! subject). A node that lost the race numbers and decides again from the winner's message.
//! So every change of the air and every line has one place in one order, the same on every
//! node: a line is stored only if its author holds the air at that point of the stream.

use super::wire::{Air, Holder};
use crate::booth::Handover;
use crate::protocol::{ErrorCode, Refusal};

/// Why a publisher takes the air from nobody or from someone (the handover's `reason`).
pub const TAKE: &str = "take";
/// The on-air partner was silent for `takeover_after_secs`.
pub const TIMEOUT: &str = "timeout";
/// The same person (name and token) on a new connection, say after their node died.
pub const RESUME: &str = "resume";
/// The on-air partner accepted a handover request.
pub const REQUEST: &str = "request";

/// A change of the air a node asks the stream to order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// `who` comes on air. Allowed when nobody is on air, or when the holder is `over`: the
    /// holder the claiming node saw and may take over from (silent too long, its node gone,
    /// or the same person).
    Take {
        who: Holder,
        over: Option<u64>,
        reason: &'static str,
    },
    /// The on-air publisher `by` hands the air to `to` (`handover_accept`).
    Accept { by: u64, to: Holder },
    /// Publisher `id` leaves the air (release, disconnect, its node gone); nothing when `id`
    /// is not on air any more.
    Release { id: u64 },
}

/// What a claim did: whether the air changed, and the handover to store (a change between two
/// people).
pub type Change = Result<(bool, Option<Handover>), Refusal>;

/// Applies `claim` to `air`.
pub fn apply(air: &mut Air, claim: &Claim) -> Change {
    match claim {
        Claim::Take { who, over, reason } => match &air.on {
            Some(h) if h.id == who.id => Ok((false, None)),
            Some(h) if Some(h.id) != *over => Err(Refusal::new(
                ErrorCode::HandoverRefused,
                format!("{} is on air; ask with handover_request", h.name),
            )),
            _ => Ok((true, put_on(air, who.clone(), reason))),
        },
        Claim::Accept { by, to } => match &air.on {
            Some(h) if h.id == *by => Ok((true, put_on(air, to.clone(), REQUEST))),
            _ => Err(Refusal::new(
                ErrorCode::NotOnAir,
                "only the on-air publisher can accept a handover",
            )),
        },
        Claim::Release { id } => match &air.on {
            Some(h) if h.id == *id => {
                air.last = Some(h.name.clone());
                air.on = None;
                Ok((true, None))
            }
            _ => Ok((false, None)),
        },
    }
}

/// Puts `who` on air; the handover, unless nobody was on air before or it is the same person.
fn put_on(air: &mut Air, who: Holder, reason: &str) -> Option<Handover> {
    let from = air.on.take().map(|h| h.name).or_else(|| air.last.clone());
    air.last = Some(who.name.clone());
    let to = who.name.clone();
    air.on = Some(who);
    match from {
        Some(from) if from != to => Some(Handover {
            from: Some(from),
            to: Some(to),
            reason: reason.to_string(),
        }),
        _ => None,
    }
}

/// Whether a line or partial from `by` (`None`: an anonymous publisher, HTTP or a caption
/// format) may be stored at this point. A booth publisher takes a free channel by speaking:
/// the returned change is that take.
pub fn may_publish(air: &mut Air, by: Option<&Holder>) -> Change {
    match (by, &air.on) {
        (Some(p), Some(h)) if h.id == p.id => Ok((false, None)),
        (Some(p), None) => Ok((true, put_on(air, p.clone(), TAKE))),
        (Some(_), Some(h)) => Err(standby(&h.name)),
        (None, None) => Ok((false, None)),
        (None, Some(_)) => Err(Refusal::new(
            ErrorCode::NotOnAir,
            "a booth publisher is on air on this channel; publish from the booth",
        )),
    }
}

/// The refusal of a standby partner's line.
pub fn standby(on_air: &str) -> Refusal {
    Refusal::new(
        ErrorCode::NotOnAir,
        format!(
            "{on_air} is on air; you are on standby (send handover_request, or take when the channel is free)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(id: u64, name: &str) -> Holder {
        Holder {
            node: format!("n{id}"),
            id,
            name: name.into(),
            cred: Some(0),
        }
    }

    #[test]
    fn one_take_wins_and_the_other_is_refused() {
        let mut air = Air::default();
        let take = |w| Claim::Take {
            who: w,
            over: None,
            reason: TAKE,
        };
        assert_eq!(apply(&mut air, &take(who(1, "Ana"))), Ok((true, None)));
        let lost = apply(&mut air, &take(who(2, "Bo"))).unwrap_err();
        assert_eq!(lost.code, ErrorCode::HandoverRefused);
        assert_eq!(apply(&mut air, &take(who(1, "Ana"))), Ok((false, None)));
        // Bo's lines are refused, Ana's stored.
        assert!(may_publish(&mut air, Some(&who(2, "Bo"))).is_err());
        assert!(may_publish(&mut air, Some(&who(1, "Ana"))).is_ok());
        assert!(may_publish(&mut air, None).is_err());
    }

    #[test]
    fn release_then_speaking_takes_the_air_with_a_handover() {
        let mut air = Air::default();
        may_publish(&mut air, Some(&who(1, "Ana"))).unwrap();
        assert_eq!(apply(&mut air, &Claim::Release { id: 1 }), Ok((true, None)));
        assert_eq!(
            apply(&mut air, &Claim::Release { id: 1 }),
            Ok((false, None))
        );
        let (_, h) = may_publish(&mut air, Some(&who(2, "Bo"))).unwrap();
        let h = h.expect("a handover");
        assert_eq!(
            (h.from.as_deref(), h.to.as_deref(), h.reason.as_str()),
            (Some("Ana"), Some("Bo"), TAKE)
        );
    }

    #[test]
    fn take_over_needs_the_holder_the_claim_was_made_against() {
        let mut air = Air::default();
        may_publish(&mut air, Some(&who(1, "Ana"))).unwrap();
        let over = |o| Claim::Take {
            who: who(3, "Ana"),
            over: Some(o),
            reason: RESUME,
        };
        assert!(apply(&mut air, &over(2)).is_err(), "a stale claim");
        // The same person resuming: no handover.
        assert_eq!(apply(&mut air, &over(1)), Ok((true, None)));
        assert_eq!(air.on.as_ref().map(|h| h.id), Some(3));
    }

    #[test]
    fn accept_hands_over_only_from_the_holder() {
        let mut air = Air::default();
        may_publish(&mut air, Some(&who(1, "Ana"))).unwrap();
        let accept = |by| Claim::Accept {
            by,
            to: who(2, "Bo"),
        };
        assert!(apply(&mut air, &accept(2)).is_err());
        let (_, h) = apply(&mut air, &accept(1)).unwrap();
        assert_eq!(h.unwrap().reason, REQUEST);
        assert_eq!(air.last.as_deref(), Some("Bo"));
    }
}
