//! History on join and resume with `since=`: exactly the events after N, then live, with no
//! gap and no duplicate, whether the backlog is in memory or must come from the store.
mod common;
use babelcast::protocol::{ClientMsg, ServerMsg};
use common::*;

fn text(n: u64) -> String {
    format!("Resume test line {n}.")
}

fn line(n: u64) -> ClientMsg {
    ClientMsg::Final {
        text: text(n),
        id: None,
    }
}

/// Publishes finals `from..=to` (pipelined) and waits for every ack.
async fn publish_lines(p: &mut WsClient, from: u64, to: u64) {
    for n in from..=to {
        p.send(line(n)).await;
    }
    for n in from..=to {
        match p.next_msg().await {
            ServerMsg::Ack { seq, .. } => assert_eq!(seq, n),
            other => panic!("expected the ack of line {n}, got {other:?}"),
        }
    }
}

/// Reads committed events until seq `upto`, asserting they are exactly `from..=upto`.
async fn expect_lines(l: &mut WsClient, from: u64, upto: u64) {
    for n in from..=upto {
        assert_eq!(l.next_line().await, (n, text(n)));
    }
}

/// The last seq and the reset flag of a listener's hello.
fn hello(l: &WsClient) -> (u64, bool) {
    match l.hello_msg() {
        ServerMsg::Hello { seq, reset, .. } => (seq, reset),
        other => panic!("expected hello, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_join_gets_the_last_history_on_join_lines_then_live() {
    let s = TestServer::start_with(|c| c.limits.history_on_join = 3).await;
    let mut p = s.publish("en").await;
    publish_lines(&mut p, 1, 10).await;
    let mut l = s.listen("en", None).await;
    assert_eq!(hello(&l), (10, false));
    expect_lines(&mut l, 8, 10).await;
    publish_lines(&mut p, 11, 12).await;
    expect_lines(&mut l, 11, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_from_memory_gets_exactly_the_rest_then_live() {
    let s = TestServer::start().await;
    let mut p = s.publish("en").await;
    publish_lines(&mut p, 1, 10).await;
    // An edit takes a seq too and is part of what a resume must deliver.
    p.send(ClientMsg::Edit {
        of: 2,
        text: "Resume test line 2, corrected.".into(),
    })
    .await;
    assert!(matches!(p.next_msg().await, ServerMsg::Ack { seq: 11, .. }));

    let mut l = s.listen("en", Some(4)).await;
    assert_eq!(hello(&l).0, 11);
    expect_lines(&mut l, 5, 10).await;
    let edit = l.next_msg().await;
    assert!(
        matches!(edit, ServerMsg::Edit { seq: 11, of: 2, .. }),
        "{edit:?}"
    );
    publish_lines(&mut p, 12, 13).await;
    expect_lines(&mut l, 12, 13).await;

    // since = the last seq: nothing old, then live.
    let mut l = s.listen("en", Some(13)).await;
    publish_lines(&mut p, 14, 14).await;
    expect_lines(&mut l, 14, 14).await;

    // since = 0: everything.
    let mut l = s.listen("en", Some(0)).await;
    expect_lines(&mut l, 1, 10).await;
    assert!(matches!(l.next_msg().await, ServerMsg::Edit { .. }));
    expect_lines(&mut l, 12, 14).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_beyond_memory_comes_from_the_store() {
    let mut s = TestServer::start_with(|c| c.limits.history_in_memory = 5).await;
    let mut p = s.publish("en").await;
    publish_lines(&mut p, 1, 40).await;
    let mut l = s.listen("en", Some(3)).await;
    assert_eq!(hello(&l).0, 40);
    expect_lines(&mut l, 4, 40).await;
    publish_lines(&mut p, 41, 42).await;
    expect_lines(&mut l, 41, 42).await;
    drop((p, l));

    // After a restart only the last few events are loaded into memory.
    s.restart_with(|c| c.limits.history_in_memory = 5).await;
    let mut l = s.listen("en", Some(2)).await;
    assert_eq!(hello(&l).0, 42);
    expect_lines(&mut l, 3, 42).await;
    let mut p = s.publish("en").await;
    publish_lines(&mut p, 43, 43).await;
    expect_lines(&mut l, 43, 43).await;
}

/// Listeners resume at many points while a publisher keeps committing: each one sees every
/// seq after its `since` exactly once, across the backlog/live boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_while_publishing_has_no_gap_and_no_duplicate() {
    const TOTAL: u64 = 400;
    let s = TestServer::start_with(|c| c.limits.history_in_memory = 50).await;
    let mut p = s.publish("en").await;
    publish_lines(&mut p, 1, 20).await;

    let publisher = tokio::spawn(async move {
        for n in 21..=TOTAL {
            p.send(line(n)).await;
            if n % 10 == 0 {
                // Keep a few acks outstanding so commits interleave with the joins below.
                for _ in 0..10 {
                    assert!(matches!(p.next_msg().await, ServerMsg::Ack { .. }));
                }
            }
        }
        p
    });

    let mut readers = tokio::task::JoinSet::new();
    for since in [0u64, 1, 5, 17, 19, 20] {
        let mut l = s.listen("en", Some(since)).await;
        readers.spawn(async move {
            let mut seen = Vec::new();
            while seen.last() != Some(&TOTAL) {
                seen.push(l.next_line().await.0);
            }
            (since, seen)
        });
    }
    // More joins while the publisher is well underway (the backlog may be in memory or not).
    for _ in 0..8 {
        let probe = s.server().hub().channel(EVENT, "en").unwrap().last_seq();
        for since in [probe.saturating_sub(60), probe.saturating_sub(3), probe] {
            if since >= TOTAL {
                continue;
            }
            let mut l = s.listen("en", Some(since)).await;
            readers.spawn(async move {
                let mut seen = Vec::new();
                while seen.last() != Some(&TOTAL) {
                    seen.push(l.next_line().await.0);
                }
                (since, seen)
            });
        }
        tokio::task::yield_now().await;
    }
    let _p = publisher.await.expect("publisher");
    while let Some(r) = readers.join_next().await {
        let (since, seen) = r.expect("reader");
        let expected: Vec<u64> = (since + 1..=TOTAL).collect();
        assert_eq!(seen, expected, "listener with since={since}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_beyond_the_last_seq_is_a_reset() {
    let s = TestServer::start_with(|c| c.limits.history_on_join = 2).await;
    let mut p = s.publish("en").await;
    publish_lines(&mut p, 1, 5).await;
    let mut l = s.listen("en", Some(99)).await;
    assert_eq!(hello(&l), (5, true));
    // A reset client starts over: the fresh-join history, then live.
    expect_lines(&mut l, 4, 5).await;
    publish_lines(&mut p, 6, 6).await;
    expect_lines(&mut l, 6, 6).await;
}
