//! Safe retries: a final whose client `id` the channel already stored is acked again with its
//! original seq and `duplicate: true`, and stored once, also across a restart.
mod common;
use babelcast::protocol::{parse_server, ClientMsg, ServerMsg};
use common::*;

/// An ack: `(seq, id, duplicate)`.
fn ack(seq: u64, id: Option<&str>, duplicate: bool) -> ServerMsg<'static> {
    ServerMsg::Ack {
        seq,
        id: id.map(|i| i.to_string().into()),
        duplicate,
    }
}

fn final_msg(text: &str, id: &str) -> String {
    ClientMsg::Final {
        text: text.into(),
        id: Some(id.into()),
    }
    .to_json()
}

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

    let welcome = "Welcome to the plenary session.";
    let first = p.publish_final(welcome, Some("line-1")).await;
    assert_eq!(first, ack(1, Some("line-1"), false));
    let other = p
        .publish_final("Please take your seats.", Some("line-2"))
        .await;
    assert_eq!(other, ack(2, Some("line-2"), false));

    // The retry (as after a lost ack) is acknowledged with the original seq.
    let again = p.publish_final(welcome, Some("line-1")).await;
    assert_eq!(again, ack(1, Some("line-1"), true));
    assert_eq!(rows_with_id(&s, "en", "line-1"), 1);

    // Pipelined duplicates (likely in one group commit) are recognised too.
    for _ in 0..3 {
        p.send_text(&final_msg("Thank you.", "line-3")).await;
    }
    let acks = [p.next_msg().await, p.next_msg().await, p.next_msg().await];
    assert_eq!(
        acks,
        [
            ack(3, Some("line-3"), false),
            ack(3, Some("line-3"), true),
            ack(3, Some("line-3"), true)
        ]
    );
    assert_eq!(rows_with_id(&s, "en", "line-3"), 1);

    // The same id on another channel is another line.
    let mut pz = s.publish("zh").await;
    assert_eq!(
        pz.publish_final("欢迎参加全体会议。", Some("line-1")).await,
        ack(1, Some("line-1"), false)
    );

    // Listeners saw each line once.
    for n in 1..=3u64 {
        assert_eq!(l.next_line().await.0, n);
    }
    assert_eq!(p.publish_final("Next.", None).await, ack(4, None, false));
    assert_eq!(l.next_line().await.0, 4, "a duplicate reached listeners");

    // After a restart the store still knows the id.
    drop((p, pz, l));
    s.restart().await;
    let mut p = s.publish("en").await;
    let again = p
        .publish_final("Welcome to the plenary session.", Some("line-1"))
        .await;
    assert_eq!(again, ack(1, Some("line-1"), true));
    assert_eq!(
        p.publish_final("After the restart.", Some("line-5")).await,
        ack(5, Some("line-5"), false)
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
            .body(final_msg("Good morning, everyone.", id))
            .send()
    };
    let answer = |text: String| parse_server(&text).expect("an answer in the protocol");
    let a = answer(post("h1").await.unwrap().text().await.unwrap());
    let b = answer(post("h1").await.unwrap().text().await.unwrap());
    assert_eq!(a, ack(1, Some("h1"), false));
    assert_eq!(b, ack(1, Some("h1"), true));
    // text/plain with ?id= as well.
    let plain = |url: String| {
        client
            .post(url)
            .bearer_auth(token("en"))
            .header("content-type", "text/plain")
            .body("Second line.\n")
            .send()
    };
    let c = answer(
        plain(format!("{url}?id=h2"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let d = answer(
        plain(format!("{url}?id=h2"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(c, ack(2, Some("h2"), false));
    assert_eq!(d, ack(2, Some("h2"), true));
    assert_eq!(rows_with_id(&s, "en", "h2"), 1);
}
