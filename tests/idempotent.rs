//! Safe retries: a final whose client `id` the channel already stored is acked again with its
//! original seq and `duplicate: true`, and stored once, also across a restart.
mod common;
use common::*;
use serde_json::json;

fn rows_with_id(s: &TestServer, channel: &str, id: &str) -> i64 {
    s.db()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE event = ?1 AND channel = ?2 AND client_id = ?3",
            rusqlite::params![EVENT, channel, id],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_final_is_acked_with_its_original_seq_and_stored_once() {
    let mut s = TestServer::start().await;
    let mut l = s.listen("en", None).await;
    let mut p = s.publish("en").await;

    let first = p
        .final_line("Welcome to the plenary session.", Some("line-1"))
        .await;
    assert_eq!(first["type"], "ack");
    assert_eq!(first["seq"], 1);
    assert!(first.get("duplicate").is_none(), "{first}");
    let other = p
        .final_line("Please take your seats.", Some("line-2"))
        .await;
    assert_eq!(other["seq"], 2);

    // The retry (as after a lost ack) is acknowledged with the original seq.
    let again = p
        .final_line("Welcome to the plenary session.", Some("line-1"))
        .await;
    assert_eq!(again["type"], "ack");
    assert_eq!(again["seq"], 1);
    assert_eq!(again["id"], "line-1");
    assert_eq!(again["duplicate"], true);
    assert_eq!(rows_with_id(&s, "en", "line-1"), 1);

    // Pipelined duplicates (likely in one group commit) are recognised too.
    for _ in 0..3 {
        p.send_json(json!({"type": "final", "text": "Thank you.", "id": "line-3"}))
            .await;
    }
    let acks: Vec<_> = [
        p.recv_event().await,
        p.recv_event().await,
        p.recv_event().await,
    ]
    .into_iter()
    .map(|a| (a["seq"].as_u64().unwrap(), a["duplicate"] == true))
    .collect();
    assert_eq!(acks, [(3, false), (3, true), (3, true)]);
    assert_eq!(rows_with_id(&s, "en", "line-3"), 1);

    // The same id on another channel is another line.
    let mut pz = s.publish("zh").await;
    assert_eq!(
        pz.final_line("欢迎参加全体会议。", Some("line-1")).await["seq"],
        1
    );

    // Listeners saw each line once.
    for n in 1..=3u64 {
        assert_eq!(l.recv_type("line").await["seq"], n);
    }
    assert_eq!(p.final_line("Next.", None).await["seq"], 4);
    assert_eq!(
        l.recv_type("line").await["seq"],
        4,
        "a duplicate reached listeners"
    );

    // After a restart the store still knows the id.
    drop((p, pz, l));
    s.restart().await;
    let mut p = s.publish("en").await;
    let again = p
        .final_line("Welcome to the plenary session.", Some("line-1"))
        .await;
    assert_eq!(
        (again["seq"].as_u64(), again["duplicate"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(
        p.final_line("After the restart.", Some("line-5")).await["seq"],
        5
    );
    assert_eq!(rows_with_id(&s, "en", "line-1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_retries_are_idempotent_too() {
    let s = TestServer::start().await;
    let client = reqwest::Client::new();
    let url = s.http(&TestServer::channel_path("en", "captions"));
    let post = |id: &'static str| {
        client
            .post(&url)
            .bearer_auth(token("en"))
            .header("content-type", "application/json")
            .body(json!({"type": "final", "text": "Good morning, everyone.", "id": id}).to_string())
            .send()
    };
    let a: serde_json::Value = post("h1").await.unwrap().json().await.unwrap();
    let b: serde_json::Value = post("h1").await.unwrap().json().await.unwrap();
    assert_eq!(
        (a["seq"].as_u64(), a.get("duplicate")),
        (Some(1), None),
        "{a}"
    );
    assert_eq!(
        (b["seq"].as_u64(), b["duplicate"].as_bool()),
        (Some(1), Some(true)),
        "{b}"
    );
    // text/plain with ?id= as well.
    let plain = |url: String| {
        client
            .post(url)
            .bearer_auth(token("en"))
            .header("content-type", "text/plain")
            .body("Second line.\n")
            .send()
    };
    let c: serde_json::Value = plain(format!("{url}?id=h2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d: serde_json::Value = plain(format!("{url}?id=h2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["seq"], 2);
    assert_eq!(
        (d["seq"].as_u64(), d["duplicate"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(rows_with_id(&s, "en", "h2"), 1);
}
