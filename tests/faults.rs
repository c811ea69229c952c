//! Faults: a full disk and a wall-clock jump. In each, nothing acked is lost, no seq is skipped
//! or reused, and the relay recovers by itself. (`kill -9` mid-burst is in tests/durability.rs,
//! SIGTERM mid-burst in tests/sigterm.rs.)
mod common;

use babelcast::protocol::{ErrorCode, ServerMsg};
use babelcast::store::Append;
use common::raw::metric;
use common::*;
use serde_json::Value;

/// The seq and receive time of the next line (status frames skipped, anything else fails).
async fn next_line_ts(c: &mut WsClient) -> (u64, i64) {
    match c.next_msg().await {
        ServerMsg::Line { seq, ts, .. } => (seq, ts),
        other => panic!("expected a line, got {other:?}"),
    }
}

/// A line long enough to need pages of its own (so a capped database cannot absorb it in
/// free space left on existing pages).
fn long_line(n: u32) -> String {
    format!(
        "Line {n}: {}",
        "a long interpretation of the speaker's point. ".repeat(80)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_serving_and_recovers_by_itself() {
    let mut s = TestServer::start().await;
    let mut live = s.listen("en", None).await;
    let mut p = s.publish("en").await;
    for n in 1..=3 {
        let id = format!("ok{n}");
        let ack = p.publish_final(&long_line(n), Some(&id)).await;
        assert_eq!(ack, acked_id(n.into(), &id));
        assert_eq!(live.next_line().await.0, u64::from(n));
    }

    // The disk fills up: SQLite now fails every write with a real SQLITE_FULL.
    s.server().hub().store.set_page_limit(Some(1));
    for n in 4..=6 {
        match p
            .publish_final(&long_line(n), Some(&format!("full{n}")))
            .await
        {
            ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::StorageUnavailable),
            other => panic!("nothing may be acked while the disk is full: {other:?}"),
        }
    }
    // HTTP publishing (another channel: this one has a booth publisher on air) too.
    let r = reqwest::Client::new()
        .post(s.http(&TestServer::channel_path("zh", "captions")))
        .bearer_auth(token("zh"))
        .body(long_line(7))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert_eq!(
        refusal_code(&body),
        Some(ErrorCode::StorageUnavailable),
        "{body}"
    );
    assert!(metric(s.addr, "babelcast_store_failures_total").await >= 4.0);

    // Meanwhile everything already stored keeps flowing: history to a new listener, the
    // transcript, and live partials.
    let mut late = s.listen("en", Some(0)).await;
    assert_eq!(late.hello_seq(), 3);
    for n in 1..=3 {
        assert_eq!(late.next_line().await.1, long_line(n));
    }
    let t = reqwest::get(s.http(&format!(
        "{}?format=json",
        TestServer::channel_path("en", "transcript")
    )))
    .await
    .unwrap();
    assert_eq!(t.status(), 200);
    p.send_partial("still typing").await;
    assert_eq!(
        live.next_msg().await,
        ServerMsg::Partial {
            text: "still typing".into()
        }
    );

    // Space comes back: the very next write succeeds, with the next seq (the failures took
    // none), and the refused line was never stored (its id is new to the store).
    s.server().hub().store.set_page_limit(None);
    // An ack, not a duplicate.
    let ack = p.publish_final(&long_line(4), Some("full4")).await;
    assert_eq!(ack, acked_id(4, "full4"));
    assert_eq!(live.next_line().await.0, 4);
    // (`late` was sent the partial too, and then the clear that the line brought.)
    loop {
        match late.next_msg().await {
            ServerMsg::Line { seq, .. } => {
                assert_eq!(seq, 4);
                break;
            }
            ServerMsg::Partial { .. } => {}
            other => panic!("expected a partial or line 4, got {other:?}"),
        }
    }

    // After a restart the store holds exactly what was acked.
    s.restart().await;
    let mut again = s.listen("en", Some(0)).await;
    assert_eq!(again.hello_seq(), 4);
    for n in 1..=4 {
        assert_eq!(again.next_line().await, (n, long_line(n as u32)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_jump_breaks_neither_seq_nor_order() {
    let mut s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let ch = s.server().hub().channel(EVENT, "en").unwrap();
    let hour = 3_600_000;
    let now = babelcast::clock::now_ms();
    // The receive times the store is handed as the clock jumps back an hour, then forward
    // two, then back to normal.
    for (i, ts) in [now, now - hour, now + hour, now].into_iter().enumerate() {
        let append = Append::Line {
            text: format!("Line {}.", i + 1),
            lang: "en".into(),
            expected_lang: None,
            client_id: None,
            author: None,
        };
        let ack = s
            .server()
            .hub()
            .store
            .append(ch.clone(), append, ts, None)
            .await
            .unwrap();
        assert_eq!(ack.seq, i as u64 + 1);
    }
    let mut last_ts = 0;
    for seq in 1..=4 {
        let (line_seq, ts) = next_line_ts(&mut l).await;
        assert_eq!(line_seq, seq);
        assert!(ts >= last_ts, "ts went backwards: {ts} after {last_ts}");
        last_ts = ts;
    }
    assert_eq!(last_ts, now + hour);
    // Real publishing now (the real clock is an hour behind the last ts) keeps both.
    let mut p = s.publish("en").await;
    assert_eq!(p.publish_final("Line 5.", None).await, acked(5));
    assert_eq!(next_line_ts(&mut l).await.1, now + hour);
    // So does a restart: the clamp is restored from the store.
    s.restart().await;
    let mut p = s.publish("en").await;
    assert_eq!(p.publish_final("Line 6.", None).await, acked(6));
    let t: Value = reqwest::get(s.http(&format!(
        "{}?format=json",
        TestServer::channel_path("en", "transcript")
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let text = t.to_string();
    let order: Vec<usize> = (1..=6)
        .map(|i| text.find(&format!("Line {i}.")).expect("every line"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}
