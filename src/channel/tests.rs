//! The channel's own tests: joining with `since=`, falling back to the store, partials.

use super::*;

fn channel() -> Channel {
    Channel::new(
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
    )
}

fn line(seq: u64, text: &str) -> Record {
    Record {
        seq,
        kind: Kind::Line,
        ts: seq as i64,
        text: text.into(),
        lang: "en".into(),
        of: None,
        client_id: None,
        expected_lang: None,
        author: None,
    }
}

#[test]
fn subscribe_since_gets_exactly_the_rest() {
    let ch = channel();
    for seq in 1..=3 {
        ch.commit(&line(seq, "x"), None);
    }
    let sub = ch.subscribe(Some(1), 50);
    match sub.backlog {
        Backlog::Memory(v) => assert_eq!(v.iter().map(|c| c.seq).collect::<Vec<_>>(), [2, 3]),
        other => panic!("{other:?}"),
    }
    assert_eq!(sub.last_seq, 3);
    assert!(!sub.reset);
    assert!(ch.subscribe(Some(9), 50).reset);
}

#[test]
fn old_since_falls_back_to_the_store() {
    let ch = channel();
    for seq in 1..=10 {
        ch.commit(&line(seq, "x"), None);
    }
    match ch.subscribe(Some(2), 50).backlog {
        Backlog::Store { after, upto } => assert_eq!((after, upto), (2, 10)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn final_clears_only_its_own_partial() {
    let ch = channel();
    let mut sub = ch.subscribe(None, 10);
    ch.set_partial("Hello wor");
    let gen = ch.partial_gen();
    ch.set_partial("And the");
    ch.commit(&line(1, "Hello world."), Some(gen));
    assert!(sub.partial.borrow_and_update().contains("And the"));
    let gen = ch.partial_gen();
    ch.commit(&line(2, "And the rest."), Some(gen));
    assert_eq!(sub.partial.borrow_and_update().as_str(), EMPTY_PARTIAL);
}
