//! Graceful shutdown of the real binary: SIGTERM closes every socket with 1001, stores and acks
//! what was already received, and exits 0 within the grace period.
mod common;
use std::time::Duration;

use babelcast::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bin = BinServer::start(tmp.path()).await;
    let mut listener = bin.listen("en", None).await;
    let mut idle = bin.listen("floor", Some(0)).await;
    let mut p = bin.publish("en").await;
    assert_eq!(
        p.publish_final("Before the shutdown.", Some("s0")).await,
        acked_id(1, "s0")
    );
    assert_eq!(listener.next_line().await.0, 1);

    // A burst is in flight when the signal arrives.
    for n in 1..=200 {
        p.send(ClientMsg::Final {
            text: format!("In flight {n}."),
            id: Some(format!("s{n}")),
        })
        .await;
    }
    bin.sigterm();

    // The publisher gets acks (or refusals) for what the server took, then 1001.
    let mut acked = vec![(1u64, "Before the shutdown.".to_string())];
    let frame = loop {
        match p.next_or_closed().await {
            Next::Frame(Received::Msg(ServerMsg::Ack { seq, id, .. })) => {
                let n: u64 = id.expect("an id")[1..].parse().unwrap();
                acked.push((seq, format!("In flight {n}.")));
            }
            Next::Frame(Received::Msg(ServerMsg::Error { code, .. })) => {
                assert_eq!(code, ErrorCode::ShuttingDown)
            }
            Next::Frame(f) => assert!(f.is_meta(), "publisher: {f:?}"),
            Next::Closed(f) => break f,
        }
    };
    let frame = frame.expect("publisher: no Close frame");
    assert_eq!(u16::from(frame.code), 1001, "publisher: {frame:?}");

    for (who, c) in [("listener", &mut listener), ("idle listener", &mut idle)] {
        let frame = loop {
            match c.next_or_closed().await {
                Next::Frame(f) => assert!(
                    f.is_meta() || matches!(f, Received::Msg(ServerMsg::Line { .. })),
                    "{who}: {f:?}"
                ),
                Next::Closed(f) => break f,
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
    let last = l.hello_seq();
    let mut stored = std::collections::HashMap::new();
    for n in 1..=last {
        let (seq, text) = l.next_line().await;
        assert_eq!(seq, n);
        stored.insert(n, text);
    }
    for (seq, text) in &acked {
        assert_eq!(stored.get(seq), Some(text), "acked seq {seq} lost");
    }
    let mut p = bin.publish("en").await;
    assert_eq!(
        p.publish_final("After the restart.", None).await,
        common::acked(last + 1)
    );
}
