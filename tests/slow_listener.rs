//! The slow-consumer policy: a listener that stops reading while a lot is published is caught
//! up from memory or closed with 4001 (CLOSE_BEHIND); reconnecting with `since=` its last seq
//! then delivers every remaining line without a gap. Other listeners are not affected.
mod common;
use babelcast::protocol::{ClientMsg, ServerMsg};
use common::*;

/// Lines published while the slow listener does not read: ~7.8 MB of caption text, well over
/// what loopback socket buffers absorb (~3 MB here).
const LINES: u64 = 500;
/// Characters per line (`limits.max_caption_chars` is raised to allow it).
const LINE_CHARS: usize = 15_600;
const CLOSE_BEHIND: u16 = 4001;

fn text(n: u64) -> String {
    // Digits and punctuation: language identification has nothing to chew on, which keeps
    // megabytes of captions cheap to publish in a debug build.
    let body = "3.14159, 2.71828, 1.41421, 1.73205; ";
    let mut t = format!("L{n} ");
    while t.len() + body.len() <= LINE_CHARS {
        t.push_str(body);
    }
    t
}

/// The seq of a line, after checking its text is the one published with that seq.
fn seq_and_text(m: &ServerMsg) -> u64 {
    let ServerMsg::Line { seq, text: t, .. } = m else {
        panic!("expected a line, got {m:?}");
    };
    assert_eq!(*t, text(*seq), "text of line {seq}");
    *seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_too_far_behind_is_closed_with_4001_and_resumes_without_gap() {
    let s = TestServer::start_with(|c| {
        c.limits.listener_queue = 16;
        // Enough for a reading listener's scheduling hiccups, far less than the ~300 lines
        // the sleeping one falls behind.
        c.limits.history_in_memory = 100;
        c.limits.publisher_in_flight = 8;
        c.limits.max_caption_chars = LINE_CHARS;
        c.limits.publisher_rate = 0.0;
    })
    .await;
    let mut slow = s.listen_slow("en", None).await;

    // A listener that keeps reading sees every line once, in order, and is never closed.
    let mut fast = s.listen("en", None).await;
    let channel = s.server().hub().channel(EVENT, "en").unwrap();
    let fast = tokio::spawn(async move {
        let mut last = 0;
        while last < LINES {
            match fast.next_or_closed().await {
                Next::Frame(f) if f.is_meta() => {}
                Next::Frame(Received::Msg(m @ ServerMsg::Line { .. })) => {
                    let seq = seq_and_text(&m);
                    assert_eq!(
                        seq,
                        last + 1,
                        "the reading listener lost or repeated a line"
                    );
                    last = seq;
                }
                other => panic!(
                    "the reading listener got {other:?} after line {last} (channel at {})",
                    channel.last_seq()
                ),
            }
        }
    });

    let p = s.publish("en").await;
    let (mut tx, mut rx) = {
        use futures_util::StreamExt;
        p.ws.split()
    };
    let sender = tokio::spawn(async move {
        use futures_util::SinkExt;
        for n in 1..=LINES {
            let m = ClientMsg::Final {
                text: text(n),
                id: None,
            }
            .to_json();
            tx.send(tokio_tungstenite::tungstenite::Message::Text(m.into()))
                .await
                .expect("send final");
        }
        tx
    });
    let mut acks = 0;
    while acks < LINES {
        use futures_util::StreamExt;
        let msg = tokio::time::timeout(RECV_TIMEOUT, rx.next())
            .await
            .expect("acks stopped")
            .expect("publisher closed")
            .expect("publisher error");
        match Received::parse(msg.to_text().unwrap()) {
            Received::Msg(ServerMsg::Ack { seq, .. }) => {
                acks += 1;
                assert_eq!(seq, acks);
            }
            r if r.is_meta() => {}
            r => panic!("publisher got {r:?}"),
        }
    }
    let _tx = sender.await.unwrap();
    fast.await
        .expect("the reading listener was affected by the slow one");

    // The slow listener wakes up: it reads what reached it, then is caught up or told to
    // reconnect. Either way it saw a gap-free prefix.
    let mut last_seen = 0;
    let closed = loop {
        match slow.next_or_closed().await {
            Next::Frame(Received::Msg(m @ ServerMsg::Line { .. })) => {
                let seq = seq_and_text(&m);
                assert_eq!(seq, last_seen + 1, "gap before the close");
                last_seen = seq;
                if seq == LINES {
                    break None;
                }
            }
            Next::Frame(f) => assert!(f.is_meta(), "{f:?}"),
            Next::Closed(frame) => break Some(frame),
        }
    };
    let frame = closed
        .expect("with 100 events of history the slow listener cannot be caught up")
        .expect("the server sent no Close frame");
    assert_eq!(u16::from(frame.code), CLOSE_BEHIND, "{frame:?}");
    assert!(last_seen < LINES);
    let channel = s.server().hub().channel(EVENT, "en").unwrap();
    assert_eq!(
        channel
            .stats
            .behind_closes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // Reconnecting with since = the last seq it saw delivers the rest (from the store).
    let mut again = s.listen("en", Some(last_seen)).await;
    assert_eq!(again.hello_seq(), LINES);
    for n in last_seen + 1..=LINES {
        assert_eq!(seq_and_text(&again.next_msg().await), n);
    }
}

/// With enough history in memory, a listener that fell behind the broadcast ring is caught up
/// from memory instead: it stays connected and gets every line once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_behind_the_ring_is_caught_up_from_memory() {
    const N: u64 = 400; // ~6 MB
    let s = TestServer::start_with(|c| {
        c.limits.listener_queue = 4;
        c.limits.history_in_memory = 1000;
        c.limits.max_caption_chars = LINE_CHARS;
        c.limits.publisher_rate = 0.0;
    })
    .await;
    let mut slow = s.listen_slow("en", None).await;
    let mut p = s.publish("en").await;
    for n in 1..=N {
        p.send_final(&text(n)).await;
    }
    for n in 1..=N {
        assert_eq!(p.next_msg().await, acked(n));
    }
    let mut last = 0;
    while last < N {
        match slow.next_or_closed().await {
            Next::Frame(Received::Msg(m @ ServerMsg::Line { .. })) => {
                assert_eq!(seq_and_text(&m), last + 1);
                last += 1;
            }
            Next::Frame(f) if f.is_meta() => {}
            other => panic!("expected line {}, got {other:?}", last + 1),
        }
    }
    let channel = s.server().hub().channel(EVENT, "en").unwrap();
    assert!(
        channel
            .stats
            .catch_ups
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert_eq!(
        channel
            .stats
            .behind_closes
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// A listener that never reads (a frozen tab in a pocket) is let go once a write has been
/// blocked for `limits.write_timeout_secs`, wherever the session was writing: here in the
/// middle of a long resume backlog, where frames are fed back to back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_never_reads_is_dropped_after_the_write_timeout() {
    // ~8 MB of history, far more than loopback socket buffers absorb.
    const N: u64 = 250;
    let big = |n: u64| format!("B{n} {}", "0123456789, ".repeat(2700));
    let s = TestServer::start_with(|c| {
        c.limits.write_timeout_secs = 1;
        c.limits.max_caption_chars = 40_000;
        c.limits.publisher_rate = 0.0;
    })
    .await;
    let mut p = s.publish("en").await;
    for n in 1..=N {
        p.send_final(&big(n)).await;
    }
    for n in 1..=N {
        assert_eq!(p.next_msg().await, acked(n));
    }
    let channel = s.server().hub().channel(EVENT, "en").unwrap();
    let _frozen = s.listen_slow("en", Some(0)).await;
    poll_until("the frozen listener to be dropped", || {
        let ch = channel.clone();
        async move { (ch.listeners() == 0).then_some(()) }
    })
    .await;
    // A listener that reads gets the whole backlog.
    let mut reader = s.listen("en", Some(0)).await;
    for n in 1..=N {
        assert_eq!(reader.next_line().await, (n, big(n)));
    }
}
