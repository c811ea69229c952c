//! Durability: an ack means the line is in the SQLite store; a restart (graceful, or `kill -9`
//! of the real binary mid-burst) keeps every acked line and continues seq without reuse.
mod common;
use std::collections::HashMap;
use std::time::Duration;

use babelcast::protocol::{ClientMsg, ServerMsg};
use common::*;

fn stored_text(db: &rusqlite::Connection, channel: &str, seq: u64) -> Option<String> {
    db.query_row(
        "SELECT text FROM events WHERE event = ?1 AND channel = ?2 AND seq = ?3",
        rusqlite::params![EVENT, channel, seq as i64],
        |r| r.get(0),
    )
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ack_is_already_in_the_database() {
    let s = TestServer::start().await;
    let mut p = s.publish("en").await;
    let db = s.db();
    // One at a time, then a pipelined burst: each ack, the moment it arrives, is a stored row.
    let ack = p.publish_final("The first stored line.", Some("a0")).await;
    assert_eq!(ack, acked_id(1, "a0"));
    assert_eq!(
        stored_text(&db, "en", 1).as_deref(),
        Some("The first stored line.")
    );
    for n in 2..=60u64 {
        p.send(ClientMsg::Final {
            text: format!("Burst line {n}."),
            id: Some(format!("b{n}")),
        })
        .await;
    }
    for n in 2..=60u64 {
        // Acks come in order: line n is acked with seq n.
        let seq = n;
        assert_eq!(p.next_msg().await, acked_id(seq, &format!("b{n}")));
        assert_eq!(
            stored_text(&db, "en", seq),
            Some(format!("Burst line {n}.")),
            "acked seq {seq} is not in the database"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_brings_back_seq_and_history() {
    let mut s = TestServer::start().await;
    let mut p = s.publish("zh").await;
    for n in 1..=5u64 {
        let ack = p
            .publish_final(&format!("第{n}句话，欢迎各位来宾。"), None)
            .await;
        assert_eq!(ack, acked(n));
    }
    p.send(ClientMsg::Edit {
        of: 1,
        text: "第1句话，欢迎各位嘉宾。".into(),
    })
    .await;
    assert_eq!(p.next_msg().await, acked(6));
    drop(p);
    s.restart().await;

    let mut l = s.listen("zh", None).await;
    assert_eq!(l.hello_seq(), 6);
    for n in 1..=5u64 {
        match l.next_msg().await {
            ServerMsg::Line {
                seq, text, lang, ..
            } => {
                assert_eq!(seq, n);
                assert_eq!(text, format!("第{n}句话，欢迎各位来宾。"));
                assert_eq!(lang, "zh");
            }
            other => panic!("expected a line, got {other:?}"),
        }
    }
    match l.next_msg().await {
        ServerMsg::Edit { of, .. } => assert_eq!(of, 1),
        other => panic!("expected an edit, got {other:?}"),
    }
    let mut p = s.publish("zh").await;
    assert_eq!(p.hello_seq(), 6);
    assert_eq!(
        p.publish_final("重启之后的第一句话。", None).await,
        acked(7)
    );
    assert_eq!(l.next_line().await.0, 7);
}

/// `kill -9` the real binary in the middle of a pipelined burst: every acked line survives
/// with its seq and text, and the next line takes max stored seq + 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_acked_line_and_reuses_no_seq() {
    const BURST: u64 = 3000;
    let tmp = tempfile::tempdir().unwrap();
    // No publisher rate limit: the burst is far beyond any booth's pace, on purpose.
    let unlimited = "[limits]\npublisher_rate = 0.0\n";
    let mut bin = BinServer::start_with(tmp.path(), unlimited).await;
    let p = bin.publish("en").await;

    // Pipeline the whole burst from a separate task; collect acks here.
    let (mut sink, mut stream) = {
        use futures_util::StreamExt;
        p.ws.split()
    };
    let sender = tokio::spawn(async move {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        for n in 1..=BURST {
            let m = ClientMsg::Final {
                text: format!("Burst line {n}, to survive a crash."),
                id: Some(format!("k{n}")),
            };
            if sink.send(Message::Text(m.to_json().into())).await.is_err() {
                break; // the server died under us
            }
        }
    });

    let mut acked: HashMap<String, u64> = HashMap::new();
    let kill_after = BURST / 3;
    {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        while (acked.len() as u64) < kill_after {
            let msg = tokio::time::timeout(RECV_TIMEOUT, stream.next())
                .await
                .expect("acks stopped coming")
                .expect("connection ended")
                .expect("websocket error");
            if let Message::Text(t) = msg {
                match Received::parse(&t) {
                    Received::Msg(ServerMsg::Ack { seq, id, .. }) => {
                        acked.insert(id.expect("an id").into_owned(), seq);
                    }
                    other => assert!(other.is_meta(), "{other:?}"),
                }
            }
        }
    }
    bin.kill9().await;
    let _ = sender.await;
    // Acks that were already in flight may also have arrived; take them too.
    {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_secs(2), stream.next()).await
        {
            if let Message::Text(t) = msg {
                if let Received::Msg(ServerMsg::Ack { seq, id, .. }) = Received::parse(&t) {
                    acked.insert(id.expect("an id").into_owned(), seq);
                }
            }
        }
    }
    assert!(acked.len() as u64 >= kill_after);

    let bin = BinServer::start_with(tmp.path(), unlimited).await;
    let mut l = bin.listen("en", Some(0)).await;
    let last = l.hello_seq();
    assert!(
        last < BURST,
        "the burst was meant to be cut short by the kill (last seq {last})"
    );
    eprintln!("acked {} of {BURST}, stored {last}", acked.len());
    let mut stored: HashMap<u64, String> = HashMap::new();
    for n in 1..=last {
        let (seq, text) = l.next_line().await;
        assert_eq!(seq, n, "stored seqs must be contiguous");
        stored.insert(n, text);
    }
    for (id, seq) in &acked {
        let n: u64 = id[1..].parse().unwrap();
        assert_eq!(
            stored.get(seq).map(String::as_str),
            Some(format!("Burst line {n}, to survive a crash.").as_str()),
            "acked {id} (seq {seq}) is missing after kill -9"
        );
    }
    let mut p = bin.publish("en").await;
    let ack = p
        .publish_final("The first line after the crash.", Some("after"))
        .await;
    assert_eq!(
        ack,
        acked_id(last + 1, "after"),
        "seq must continue after the crash, not reuse"
    );
    assert_eq!(l.next_line().await.0, last + 1);
    // A retry of a line acked before the crash is recognised, not stored again.
    let (id, seq) = acked.iter().next().unwrap();
    let again = p
        .publish_final(
            &format!("Burst line {}, to survive a crash.", &id[1..]),
            Some(id),
        )
        .await;
    assert_eq!(
        again,
        ServerMsg::Ack {
            seq: *seq,
            id: Some(id.clone().into()),
            duplicate: true
        }
    );
}
