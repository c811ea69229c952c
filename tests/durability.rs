//! Durability: an ack means the line is in the SQLite store; a restart (graceful, or `kill -9`
//! of the real binary mid-burst) keeps every acked line and continues seq without reuse.
mod common;
use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

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
    let ack = p.final_line("The first stored line.", Some("a0")).await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(
        stored_text(&db, "en", 1).as_deref(),
        Some("The first stored line.")
    );
    for n in 2..=60u64 {
        p.send_json(
            json!({"type": "final", "text": format!("Burst line {n}."), "id": format!("b{n}")}),
        )
        .await;
    }
    for n in 2..=60u64 {
        let ack = p.recv_event().await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let seq = ack["seq"].as_u64().unwrap();
        assert_eq!(seq, n);
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
            .final_line(&format!("第{n}句话，欢迎各位来宾。"), None)
            .await;
        assert_eq!(ack["seq"], n);
    }
    p.send_json(json!({"type": "edit", "of": 1, "text": "第1句话，欢迎各位嘉宾。"}))
        .await;
    assert_eq!(p.recv_event().await["seq"], 6);
    drop(p);
    s.restart().await;

    let mut l = s.listen("zh", None).await;
    assert_eq!(l.hello["seq"], 6);
    for n in 1..=5u64 {
        let line = l.recv_type("line").await;
        assert_eq!(line["seq"], n);
        assert_eq!(line["text"], format!("第{n}句话，欢迎各位来宾。"));
        assert_eq!(line["lang"], "zh");
    }
    let edit = l.recv_event().await;
    assert_eq!(
        (edit["type"].as_str(), edit["of"].as_u64()),
        (Some("edit"), Some(1))
    );
    let mut p = s.publish("zh").await;
    assert_eq!(p.hello["seq"], 6);
    assert_eq!(p.final_line("重启之后的第一句话。", None).await["seq"], 7);
    assert_eq!(l.recv_type("line").await["seq"], 7);
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
            let m = json!({"type": "final", "text": format!("Burst line {n}, to survive a crash."), "id": format!("k{n}")});
            if sink
                .send(Message::Text(m.to_string().into()))
                .await
                .is_err()
            {
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
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ack" {
                    acked.insert(
                        v["id"].as_str().unwrap().to_string(),
                        v["seq"].as_u64().unwrap(),
                    );
                } else {
                    assert!(is_meta(&v), "{v}");
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
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ack" {
                    acked.insert(
                        v["id"].as_str().unwrap().to_string(),
                        v["seq"].as_u64().unwrap(),
                    );
                }
            }
        }
    }
    assert!(acked.len() as u64 >= kill_after);

    let bin = BinServer::start_with(tmp.path(), unlimited).await;
    let mut l = bin.listen("en", Some(0)).await;
    let last = l.hello["seq"].as_u64().unwrap();
    assert!(
        last < BURST,
        "the burst was meant to be cut short by the kill (last seq {last})"
    );
    eprintln!("acked {} of {BURST}, stored {last}", acked.len());
    let mut stored: HashMap<u64, String> = HashMap::new();
    for n in 1..=last {
        let line = l.recv_type("line").await;
        assert_eq!(line["seq"], n, "stored seqs must be contiguous");
        stored.insert(n, line["text"].as_str().unwrap().to_string());
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
        .final_line("The first line after the crash.", Some("after"))
        .await;
    assert_eq!(
        ack["seq"],
        last + 1,
        "seq must continue after the crash, not reuse"
    );
    assert_eq!(l.recv_type("line").await["seq"], last + 1);
    // A retry of a line acked before the crash is recognised, not stored again.
    let (id, seq) = acked.iter().next().unwrap();
    let again = p
        .final_line(
            &format!("Burst line {}, to survive a crash.", &id[1..]),
            Some(id),
        )
        .await;
    assert_eq!(
        (again["seq"].as_u64(), again["duplicate"].as_bool()),
        (Some(*seq), Some(true))
    );
}
