//! Faults: a full disk and a wall-clock jump. In each, nothing acked is lost, no seq is skipped
//! or reused, and the relay recovers by itself. (`kill -9` mid-burst is in tests/durability.rs,
//! SIGTERM mid-burst in tests/sigterm.rs.)
mod common;

use babelcast::store::Append;
use common::raw::metric;
use common::*;
use serde_json::{json, Value};

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
        let ack = p.final_line(&long_line(n), Some(&format!("ok{n}"))).await;
        assert_eq!(ack["seq"], n);
        assert_eq!(live.recv_type("line").await["seq"], n);
    }

    // The disk fills up: SQLite now fails every write with a real SQLITE_FULL.
    s.server().hub().store.set_page_limit(Some(1));
    for n in 4..=6 {
        let v = p.final_line(&long_line(n), Some(&format!("full{n}"))).await;
        assert_eq!(
            v["type"], "error",
            "nothing may be acked while the disk is full: {v}"
        );
        assert_eq!(v["code"], "storage_unavailable");
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
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "storage_unavailable");
    assert!(metric(s.addr, "babelcast_store_failures_total").await >= 4.0);

    // Meanwhile everything already stored keeps flowing: history to a new listener, the
    // transcript, and live partials.
    let mut late = s.listen("en", Some(0)).await;
    assert_eq!(late.hello["seq"], 3);
    for n in 1..=3 {
        assert_eq!(late.recv_type("line").await["text"], long_line(n));
    }
    let t = reqwest::get(s.http(&format!(
        "{}?format=json",
        TestServer::channel_path("en", "transcript")
    )))
    .await
    .unwrap();
    assert_eq!(t.status(), 200);
    p.send_json(json!({"type": "partial", "text": "still typing"}))
        .await;
    assert_eq!(live.recv_type("partial").await["text"], "still typing");

    // Space comes back: the very next write succeeds, with the next seq (the failures took
    // none), and the refused line was never stored (its id is new to the store).
    s.server().hub().store.set_page_limit(None);
    let ack = p.final_line(&long_line(4), Some("full4")).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["seq"], 4);
    assert_eq!(ack.get("duplicate"), None);
    assert_eq!(live.recv_type("line").await["seq"], 4);
    // (`late` was sent the partial too, and then the clear that the line brought.)
    loop {
        let v = late.recv_event().await;
        if v["type"] == "line" {
            assert_eq!(v["seq"], 4);
            break;
        }
        assert_eq!(v["type"], "partial", "{v}");
    }

    // After a restart the store holds exactly what was acked.
    s.restart().await;
    let mut again = s.listen("en", Some(0)).await;
    assert_eq!(again.hello["seq"], 4);
    for n in 1..=4 {
        let line = again.recv_type("line").await;
        assert_eq!(line["seq"], n);
        assert_eq!(line["text"], long_line(n as u32));
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
        let line = l.recv_type("line").await;
        assert_eq!(line["seq"], seq);
        let ts = line["ts"].as_i64().unwrap();
        assert!(ts >= last_ts, "ts went backwards: {ts} after {last_ts}");
        last_ts = ts;
    }
    assert_eq!(last_ts, now + hour);
    // Real publishing now (the real clock is an hour behind the last ts) keeps both.
    let mut p = s.publish("en").await;
    assert_eq!(p.final_line("Line 5.", None).await["seq"], 5);
    assert_eq!(l.recv_type("line").await["ts"], now + hour);
    // So does a restart: the clamp is restored from the store.
    s.restart().await;
    let mut p = s.publish("en").await;
    assert_eq!(p.final_line("Line 6.", None).await["seq"], 6);
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
