//! Unit tests of the booth rules: on air, handover, take-over, feedback and the language alert.

use super::*;
use crate::protocol::FeedbackKind;

#[test]
fn first_publisher_is_on_air_and_the_second_waits() {
    let b = Booth::new(None);
    let (anna, h) = b.join("Anna", 0);
    assert!(h.is_none());
    let (ben, _) = b.join("Ben", 0);
    assert!(b.is_on_air(anna) && !b.is_on_air(ben));
    assert_eq!(b.claim_air(ben, 0).unwrap_err().code, ErrorCode::NotOnAir);
    b.request(ben, 0).unwrap();
    let h = b.accept(anna, 0).unwrap().unwrap();
    assert_eq!(
        (h.from.as_deref(), h.to.as_deref(), h.reason.as_str()),
        (Some("Anna"), Some("Ben"), "request")
    );
    assert!(b.is_on_air(ben));
}

#[test]
fn disconnect_frees_the_channel_and_the_next_take_is_a_handover() {
    let b = Booth::new(None);
    let (anna, _) = b.join("Anna", 0);
    let (ben, _) = b.join("Ben", 0);
    b.leave(anna, 0);
    assert!(!b.any_on_air());
    let h = b.take(ben, 0).unwrap().unwrap();
    assert_eq!(h.from.as_deref(), Some("Anna"));
}

#[tokio::test(start_paused = true)]
async fn silence_rule_allows_take_over() {
    let b = Booth::new(Some(Duration::from_secs(30)));
    let (anna, _) = b.join("Anna", 0);
    let (ben, _) = b.join("Ben", 0);
    assert!(b.is_on_air(anna));
    // Anna speaks; Ben may not take the air while she is not silent for 30 s.
    tokio::time::advance(Duration::from_secs(20)).await;
    b.claim_air(anna, 0).unwrap();
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(b.take(ben, 0).unwrap_err().code, ErrorCode::HandoverRefused);
    tokio::time::advance(Duration::from_secs(11)).await;
    let h = b.take(ben, 0).unwrap().unwrap();
    assert_eq!(h.reason, "timeout");
    assert!(b.is_on_air(ben));
}

#[test]
fn language_alert_needs_a_streak_and_clears() {
    let b = Booth::new(None);
    assert!(!b.observe_line("fr", true, 0));
    assert!(!b.observe_line("fr", true, 0));
    assert!(b.observe_line("fr", true, 0));
    assert_eq!(b.language_alert().as_deref(), Some("fr"));
    assert!(b.observe_line("en", false, 0));
    assert_eq!(b.language_alert(), None);
}

#[test]
fn feedback_is_counted_per_kind() {
    let b = Booth::new(None);
    b.feedback(FeedbackKind::Slower);
    b.feedback(FeedbackKind::Slower);
    b.feedback(FeedbackKind::Lost);
    assert_eq!(
        b.feedback_counts(),
        FeedbackCounts {
            slower: 2,
            unclear: 0,
            lost: 1
        }
    );
}
