//! The `seq` rules of the HTTP caption formats, as real caption software uses `seq`: a retry
//! repeats the last post exactly; some senders post every caption under the same seq, some
//! count up even when a post failed, some start at 0, and a restarted sender starts over at a
//! low seq or at one it saved long ago. No behaviour of a sender stops the channel taking its
//! captions, and nothing a sender sends is dropped unless it is the same post again.
//!
//! | the post | is |
//! | --- | --- |
//! | the first of a stream (or the first after a restart of babelcast with no saved state) | new text |
//! | seq = last + 1 | new text |
//! | seq = last, same body | a retry: the first answer again, nothing applied |
//! | seq = last, another body | new text (senders that always post the same seq) |
//! | seq > last + 1 | new text; the seqs skipped are counted as a gap |
//! | seq < last | new text starting a new run of the sender (restarted at 0, 1 or an old seq); the old run's line in progress is committed first |

/// What a post's seq (and body) means, given the stream's last accepted post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// New caption data, the next seq or the first post of the stream.
    New,
    /// New caption data after `skipped` seqs never received (a sender counting up on
    /// failures, or resending under a later seq).
    Gap { skipped: u64 },
    /// New caption data under the last accepted seq (a sender that always posts one seq).
    Changed,
    /// New caption data under a seq below the last: the sender started a new run.
    Restart,
    /// The last accepted post again (same seq, same body): answered as before, applied once.
    Retry,
}

/// The last accepted post of a stream: its seq and a hash of its body
/// ([`super::text_hash`]). A hash of [`UNKNOWN_BODY`] (a state saved by an older version)
/// makes any post under the same seq a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastPost {
    pub seq: u64,
    pub body: u32,
}

/// The body hash of a post whose body is not known.
pub const UNKNOWN_BODY: u32 = 0;

/// The hash of a post's body kept to tell a retry from new text (never [`UNKNOWN_BODY`]).
pub fn body_hash(body: &str) -> u32 {
    super::text_hash(body).max(1)
}

/// Classifies a post with `seq` and body hash `body` against the stream's last accepted post
/// (`None`: nothing accepted yet).
pub fn check_seq(last: Option<LastPost>, seq: u64, body: u32) -> SeqCheck {
    let Some(last) = last else {
        return SeqCheck::New;
    };
    if seq == last.seq {
        if last.body == body || last.body == UNKNOWN_BODY {
            SeqCheck::Retry
        } else {
            SeqCheck::Changed
        }
    } else if seq < last.seq {
        SeqCheck::Restart
    } else {
        // checked: `last.seq` may be u64::MAX (found by fuzzing, when the rule was +1 only).
        match seq - last.seq - 1 {
            0 => SeqCheck::New,
            skipped => SeqCheck::Gap { skipped },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(seq: u64, body: &str) -> Option<LastPost> {
        Some(LastPost {
            seq,
            body: body_hash(body),
        })
    }

    #[test]
    fn each_rule() {
        let h = body_hash;
        assert_eq!(check_seq(None, 17, h("x")), SeqCheck::New);
        assert_eq!(check_seq(None, 0, h("x")), SeqCheck::New);
        assert_eq!(check_seq(last(4, "a"), 5, h("b")), SeqCheck::New);
        assert_eq!(check_seq(last(4, "a"), 4, h("a")), SeqCheck::Retry);
        assert_eq!(check_seq(last(4, "a"), 4, h("b")), SeqCheck::Changed);
        assert_eq!(
            check_seq(last(4, "a"), 7, h("b")),
            SeqCheck::Gap { skipped: 2 }
        );
        assert_eq!(check_seq(last(4, "a"), 1, h("a")), SeqCheck::Restart);
        assert_eq!(check_seq(last(4, "a"), 0, h("b")), SeqCheck::Restart);
        assert_eq!(check_seq(last(0, "a"), 1, h("b")), SeqCheck::New);
        let legacy = Some(LastPost {
            seq: 4,
            body: UNKNOWN_BODY,
        });
        assert_eq!(check_seq(legacy, 4, h("b")), SeqCheck::Retry);
    }

    #[test]
    fn extreme_seqs_do_not_overflow() {
        let h = body_hash;
        assert_eq!(
            check_seq(last(u64::MAX, "a"), 42, h("a")),
            SeqCheck::Restart
        );
        assert_eq!(
            check_seq(last(u64::MAX, "a"), u64::MAX, h("a")),
            SeqCheck::Retry
        );
        assert_eq!(
            check_seq(last(0, "a"), u64::MAX, h("a")),
            SeqCheck::Gap {
                skipped: u64::MAX - 1
            }
        );
    }
}
