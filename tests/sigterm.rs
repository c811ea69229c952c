//! Graceful shutdown of the real binary: SIGTERM closes every socket with 1001, stores and acks
//! what was already received, and exits 0 within the grace period.
mod common;
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bin = BinServer::start(tmp.path()).await;
    let mut listener = bin.listen("en", None).await;
    let mut idle = bin.listen("floor", Some(0)).await;
    let mut p = bin.publish("en").await;
    assert_eq!(
        p.final_line("Before the shutdown.", Some("s0")).await["seq"],
        1
    );
    assert_eq!(listener.recv_type("line").await["seq"], 1);

    // A burst is in flight when the signal arrives.
    for n in 1..=200 {
        p.send_json(
            json!({"type": "final", "text": format!("In flight {n}."), "id": format!("s{n}")}),
        )
        .await;
    }
    bin.sigterm();

    // The publisher gets acks (or refusals) for what the server took, then 1001.
    let mut acked = vec![(1u64, "Before the shutdown.".to_string())];
    let frame = loop {
        match p.next_incoming().await {
            Incoming::Msg(v) if v["type"] == "ack" => {
                let n: u64 = v["id"].as_str().unwrap()[1..].parse().unwrap();
                acked.push((v["seq"].as_u64().unwrap(), format!("In flight {n}.")));
            }
            Incoming::Msg(v) if v["type"] == "error" => {
                assert_eq!(v["code"], "shutting_down", "{v}")
            }
            Incoming::Msg(v) => assert!(is_meta(&v), "publisher: {v}"),
            Incoming::Closed(f) => break f,
        }
    };
    let frame = frame.expect("publisher: no Close frame");
    assert_eq!(u16::from(frame.code), 1001, "publisher: {frame:?}");

    for (who, c) in [("listener", &mut listener), ("idle listener", &mut idle)] {
        let frame = loop {
            match c.next_incoming().await {
                Incoming::Msg(v) => assert!(is_meta(&v) || v["type"] == "line", "{who}: {v}"),
                Incoming::Closed(f) => break f,
            }
        };
        let frame = frame.unwrap_or_else(|| panic!("{who}: no Close frame"));
        assert_eq!(u16::from(frame.code), 1001, "{who}: {frame:?}");
    }
    // The test config's grace period is 5 s; allow for a slow machine on top.
    let status = bin.exit_status(Duration::from_secs(5 + 5)).await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        bin.stderr.lock().unwrap()
    );

    // Everything acked is there after the restart, and seq continues.
    let bin = BinServer::start(tmp.path()).await;
    let mut l = bin.listen("en", Some(0)).await;
    let last = l.hello["seq"].as_u64().unwrap();
    let mut stored = std::collections::HashMap::new();
    for n in 1..=last {
        let v = l.recv_type("line").await;
        assert_eq!(v["seq"], n);
        stored.insert(n, v["text"].as_str().unwrap().to_string());
    }
    for (seq, text) in &acked {
        assert_eq!(stored.get(seq), Some(text), "acked seq {seq} lost");
    }
    let mut p = bin.publish("en").await;
    assert_eq!(
        p.final_line("After the restart.", None).await["seq"],
        last + 1
    );
}
